package proctree

import (
	"errors"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pyprof/pyprof/procmem"
)

func pids(procs []Proc) []int {
	out := make([]int, len(procs))
	for i, p := range procs {
		out[i] = p.Pid
	}
	return out
}

func TestPgrep(t *testing.T) {
	py := "/usr/bin/python3.11"
	tests := []struct {
		name    string
		tree    []fproc
		pattern string
		self    int

		root    int
		byName  bool
		matched []int
		roots   []int // for an AmbiguousError
		err     error // ErrNoMatch, ErrAmbiguous, or nil
	}{{
		name:    "gunicorn master over its workers",
		tree:    gunicornTree("gunicorn"),
		pattern: "gunicorn", self: pidPyprof,
		root: 400, byName: true, matched: []int{400, 401, 402, 403},
	}, {
		name:    "executable name",
		tree:    gunicornTree("python3"),
		pattern: `^python3\.11$`, self: pidPyprof,
		root: 400, byName: true, matched: []int{400, 401, 402, 403},
	}, {
		// Names win over command lines, so neither the tail of the log
		// nor sudo makes gunicorn ambiguous, even with no self.
		name:    "names before command lines without self",
		tree:    gunicornTree("gunicorn"),
		pattern: "gunicorn", self: 0,
		root: 400, byName: true, matched: []int{400, 401, 402, 403},
	}, {
		name:    "self never matches by name",
		tree:    gunicornTree("pyprof"),
		pattern: "pyprof", self: pidPyprof,
		err: ErrNoMatch,
	}, {
		name:    "ancestors never match by command line",
		tree:    gunicornTree("gunicorn"),
		pattern: "pgrep gunicorn", self: pidPyprof,
		err: ErrNoMatch,
	}, {
		// The same tree without self: sudo tops the matches, which is
		// what the exclusion prevents.
		name:    "ancestors match when self is unknown",
		tree:    gunicornTree("gunicorn"),
		pattern: "pgrep gunicorn", self: 0,
		root: pidSudo, byName: false, matched: []int{pidSudo, pidPyprof},
	}, {
		name:    "command line only",
		tree:    gunicornTree("gunicorn"),
		pattern: `gunicorn\.log`, self: pidPyprof,
		root: 500, byName: false, matched: []int{500},
	}, {
		name: "command line argument",
		tree: append(host("myapp.wsgi"),
			fproc{pid: 400, ppid: pidInit, comm: "uwsgi", exe: "/usr/bin/uwsgi-core", argv: []string{"uwsgi", "--module", "myapp.wsgi:application", "--master"}},
			fproc{pid: 401, ppid: 400, comm: "uwsgi", exe: "/usr/bin/uwsgi-core", argv: []string{"uwsgi", "--module", "myapp.wsgi:application", "--master"}},
		),
		pattern: "myapp.wsgi", self: pidPyprof,
		root: 400, byName: false, matched: []int{400, 401},
	}, {
		name: "unrelated roots",
		tree: append(host("app.py"),
			fproc{pid: 400, ppid: pidInit, comm: "python", exe: py, argv: []string{"python", "app.py"}},
			fproc{pid: 500, ppid: pidBash, comm: "python", exe: py, argv: []string{"python", "app.py"}},
			fproc{pid: 501, ppid: 500, comm: "python", exe: py, argv: []string{"python", "app.py"}},
		),
		pattern: `app\.py`, self: pidPyprof,
		roots: []int{400, 500}, err: ErrAmbiguous,
	}, {
		// A non-matching process between two matches does not split
		// them into two trees.
		name: "match below a non-matching parent",
		tree: append(host("app.py"),
			fproc{pid: 400, ppid: pidInit, comm: "python", exe: py, argv: []string{"python", "app.py"}},
			fproc{pid: 410, ppid: 400, comm: "sh", exe: "/usr/bin/dash", argv: []string{"/bin/sh", "-c", "python app.py --child"}},
			fproc{pid: 420, ppid: 410, comm: "python", exe: py, argv: []string{"python", "app.py", "--child"}},
		),
		pattern: `app\.py`, self: pidPyprof,
		root: 400, byName: true, matched: []int{400, 420},
	}, {
		name: "python -m gunicorn",
		tree: append(host("gunicorn"),
			fproc{pid: 400, ppid: pidInit, comm: "python3", exe: py, argv: []string{"python3", "-u", "-m", "gunicorn", "app:app"}},
			fproc{pid: 401, ppid: 400, comm: "python3", exe: py, argv: []string{"python3", "-u", "-m", "gunicorn", "app:app"}},
		),
		pattern: "^gunicorn$", self: pidPyprof,
		root: 400, byName: true, matched: []int{400, 401},
	}, {
		name: "setproctitle",
		tree: append(host("gunicorn"),
			fproc{pid: 400, ppid: pidInit, comm: "gunicorn: maste", exe: py, argv: []string{"gunicorn: master [app:app]"}},
			fproc{pid: 401, ppid: 400, comm: "gunicorn: worke", exe: py, argv: []string{"gunicorn: worker [app:app]"}},
			fproc{pid: 402, ppid: 400, comm: "gunicorn: worke", exe: py, argv: []string{"gunicorn: worker [app:app]"}},
		),
		pattern: "^gunicorn$", self: pidPyprof,
		root: 400, byName: true, matched: []int{400, 401, 402},
	}, {
		name: "setproctitle worker by command line",
		tree: append(host("worker"),
			fproc{pid: 400, ppid: pidInit, comm: "gunicorn: maste", exe: py, argv: []string{"gunicorn: master [app:app]"}},
			fproc{pid: 401, ppid: 400, comm: "gunicorn: worke", exe: py, argv: []string{"gunicorn: worker [app:app]"}},
		),
		pattern: "gunicorn: worker", self: pidPyprof,
		root: 401, byName: false, matched: []int{401},
	}, {
		name: "zombies and kernel threads skipped",
		tree: append(host("defunct"),
			fproc{pid: 400, ppid: pidInit, comm: "defunct", state: 'Z'},
			fproc{pid: 5, ppid: 2, comm: "defunct"},
		),
		pattern: "defunct", self: pidPyprof,
		err: ErrNoMatch,
	}, {
		name:    "no match",
		tree:    gunicornTree("nosuchprogram"),
		pattern: "nosuchprogram", self: pidPyprof,
		err: ErrNoMatch,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := writeTree(t, tt.tree)
			m, err := Pgrep(fsys, tt.pattern, tt.self)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Pgrep(%q) = %+v, %v; want %v", tt.pattern, m, err, tt.err)
				}
				checkPgrepError(t, tt.pattern, err, tt.roots)
				return
			}
			if err != nil {
				t.Fatalf("Pgrep(%q): %v", tt.pattern, err)
			}
			if m.Root.Pid != tt.root || m.ByName != tt.byName || !slices.Equal(pids(m.Matched), tt.matched) {
				t.Errorf("Pgrep(%q) = root %d, byName %v, matched %v; want root %d, byName %v, matched %v",
					tt.pattern, m.Root.Pid, m.ByName, pids(m.Matched), tt.root, tt.byName, tt.matched)
			}
			want, err := Get(fsys, tt.root)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Root.Cmdline, want.Cmdline) || m.Root.Comm != want.Comm || m.Root.StartTime != want.StartTime {
				t.Errorf("Root = %+v, want %+v", m.Root, want)
			}
		})
	}
}

func checkPgrepError(t *testing.T, pattern string, err error, roots []int) {
	t.Helper()
	var noMatch *NoMatchError
	var amb *AmbiguousError
	switch {
	case errors.As(err, &noMatch):
		if want := `no process matches "` + pattern + `"`; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	case errors.As(err, &amb):
		if got := pids(amb.Roots); !slices.Equal(got, roots) {
			t.Errorf("AmbiguousError roots %v, want %v", got, roots)
		}
		msg := err.Error()
		lines := strings.Split(msg, "\n")
		if len(lines) != len(roots)+2 {
			t.Errorf("error has %d lines, want a header, one per root and advice:\n%s", len(lines), msg)
		}
		for _, p := range amb.Roots {
			if !strings.Contains(msg, p.CommandLine()) || !strings.Contains(msg, " "+strconv.Itoa(p.Pid)+" ") {
				t.Errorf("error does not list pid %d and %q:\n%s", p.Pid, p.CommandLine(), msg)
			}
		}
		if !strings.Contains(msg, "-p PID") {
			t.Errorf("error does not suggest -p PID:\n%s", msg)
		}
		t.Logf("message:\n%s", msg)
	default:
		t.Errorf("error %T %v", err, err)
	}
}

func TestPgrepBadPattern(t *testing.T) {
	fsys := writeTree(t, gunicornTree("("))
	_, err := Pgrep(fsys, "(", pidPyprof)
	var perr *PatternError
	if !errors.As(err, &perr) || perr.Pattern != "(" {
		t.Fatalf("Pgrep(%q) error = %v, want a *PatternError", "(", err)
	}
	var serr *syntax.Error
	if !errors.As(err, &serr) {
		t.Errorf("PatternError does not unwrap to the *syntax.Error: %v", err)
	}
}

func TestPgrepListError(t *testing.T) {
	_, err := Pgrep(procmem.NewFS(t.TempDir()+"/missing"), "x", 0)
	if err == nil {
		t.Fatal("Pgrep on a missing /proc succeeded")
	}
}

func TestAmbiguousErrorClipsLongCommandLines(t *testing.T) {
	long := strings.Repeat("é", 300)
	err := &AmbiguousError{Pattern: "x", Roots: []Proc{
		{Pid: 1, Cmdline: []string{"java", long}},
		{Pid: 2, Cmdline: []string{"java"}},
	}}
	line := strings.Split(err.Error(), "\n")[1]
	if len(line) > 250 || !strings.HasSuffix(line, "…") || !utf8.ValidString(line) {
		t.Errorf("long command line not clipped cleanly: %d bytes: %q", len(line), line)
	}
}
