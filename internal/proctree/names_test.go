package proctree

import (
	"slices"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	py := "/usr/bin/python3.11"
	tests := []struct {
		name string
		p    Proc
		want []string
	}{
		{"console script", Proc{Comm: "gunicorn", Exe: py, Cmdline: []string{py, "/srv/venv/bin/gunicorn", "app:app"}},
			[]string{"gunicorn", "python3.11"}},
		{"plain script", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "app.py"}},
			[]string{"python3", "python3.11", "app.py"}},
		{"venv interpreter", Proc{Comm: "python", Exe: py, Cmdline: []string{"/srv/venv/bin/python", "/srv/app/manage.py", "runserver"}},
			[]string{"python", "python3.11", "manage.py"}},
		{"options", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-u", "-X", "dev", "-W", "ignore", "-E", "app.py", "-v"}},
			[]string{"python3", "python3.11", "app.py"}},
		{"combined and attached options", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-uOB", "-Wignore", "-Xfrozen_modules=off", "-OO", "s.py"}},
			[]string{"python3", "python3.11", "s.py"}},
		{"flags then attached -X", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-uXdev", "s.py"}},
			[]string{"python3", "python3.11", "s.py"}},
		{"flags then separate -W", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-uW", "error", "s.py"}},
			[]string{"python3", "python3.11", "s.py"}},
		{"check-hash-based-pycs", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "--check-hash-based-pycs", "always", "s.py"}},
			[]string{"python3", "python3.11", "s.py"}},
		{"long option", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "--no-site-ish", "s.py"}},
			[]string{"python3", "python3.11", "s.py"}},
		{"-m module", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-m", "gunicorn", "app:app"}},
			[]string{"python3", "python3.11", "gunicorn"}},
		{"-m attached", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-Bmhttp.server", "8000"}},
			[]string{"python3", "python3.11", "http.server"}},
		{"-m last", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-m"}},
			[]string{"python3", "python3.11"}},
		{"-c", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-c", "import app", "app.py"}},
			[]string{"python3", "python3.11"}},
		{"-c attached", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-Ic1", "app.py"}},
			[]string{"python3", "python3.11"}},
		{"stdin", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-", "app.py"}},
			[]string{"python3", "python3.11"}},
		{"--", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "-u", "--", "-odd.py"}},
			[]string{"python3", "python3.11", "-odd.py"}},
		{"-- last", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3", "--"}},
			[]string{"python3", "python3.11"}},
		{"repl", Proc{Comm: "python3", Exe: py, Cmdline: []string{"python3"}},
			[]string{"python3", "python3.11"}},
		{"shebang options", Proc{Comm: "celery", Exe: py, Cmdline: []string{py, "-s", "/usr/bin/celery", "worker"}},
			[]string{"celery", "python3.11"}},
		{"pypy", Proc{Comm: "pypy3.10-c", Exe: "/opt/pypy/bin/pypy3.10-c", Cmdline: []string{"pypy3", "-O", "x.py"}},
			[]string{"pypy3.10-c", "pypy3", "x.py"}},
		{"interpreter known only by argv0", Proc{Comm: "python3", Cmdline: []string{"python3.6m", "x.py"}},
			[]string{"python3", "python3.6m", "x.py"}},
		{"exec -a", Proc{Comm: "python3.11", Exe: py, Cmdline: []string{"myworker", "-u", "app.py"}},
			[]string{"python3.11", "myworker", "app.py"}},
		{"deleted executable", Proc{Comm: "python3", Exe: py + " (deleted)", Cmdline: []string{"python3", "app.py"}},
			[]string{"python3", "python3.11", "app.py"}},
		{"not an interpreter", Proc{Comm: "gunicorn", Exe: "/usr/bin/gunicorn", Cmdline: []string{"/usr/bin/gunicorn", "app.py"}},
			[]string{"gunicorn"}},
		{"pythonic but not python", Proc{Comm: "python-config", Exe: "/usr/bin/python-config", Cmdline: []string{"python-config", "x.py"}},
			[]string{"python-config"}},
		{"setproctitle", Proc{Comm: "gunicorn: maste", Exe: py, Cmdline: []string{"gunicorn: master [app:app]"}},
			[]string{"gunicorn: maste", "python3.11", "gunicorn"}},
		{"title with a path", Proc{Comm: "nginx", Exe: "/usr/sbin/nginx", Cmdline: []string{"nginx: master process /usr/sbin/nginx"}},
			[]string{"nginx"}},
		{"blank title", Proc{Comm: "x", Exe: "/usr/bin/x", Cmdline: []string{"  "}},
			[]string{"x"}},
		{"one argument with spaces is not a title if others follow", Proc{Comm: "sh", Exe: "/usr/bin/dash", Cmdline: []string{"/bin/sh", "-c", "a b"}},
			[]string{"sh", "dash"}},
		{"no cmdline", Proc{Comm: "kworker/0:1"},
			[]string{"kworker/0:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Names(); !slices.Equal(got, tt.want) {
				t.Errorf("Names() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsInterpreter(t *testing.T) {
	for name, want := range map[string]bool{
		"python": true, "python3": true, "python3.11": true, "python3.6m": true,
		"python3.13t": true, "python3.11d": true, "python3.12-dbg": true, "python2.7": true,
		"pypy": true, "pypy3": true, "pypy3.10": true, "pypy3.10-c": true,
		"python-config": false, "python3.11-config": false, "pythonista": false,
		"ipython": false, "gunicorn": false, "": false,
	} {
		if got := isInterpreter(name); got != want {
			t.Errorf("isInterpreter(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	for _, tt := range []struct {
		p    Proc
		want string
	}{
		{Proc{Comm: "python3", Cmdline: []string{"python3", "-c", "print(1)"}}, "python3 -c print(1)"},
		{Proc{Comm: "kthreadd"}, "[kthreadd]"},
	} {
		if got := tt.p.CommandLine(); got != tt.want {
			t.Errorf("CommandLine() = %q, want %q", got, tt.want)
		}
	}
}

func FuzzNames(f *testing.F) {
	f.Add([]byte("python3\x00-uW\x00x\x00-m\x00gunicorn\x00"), "/usr/bin/python3.11")
	f.Add([]byte("gunicorn: master [app:app]\x00\x00\x00"), "/usr/bin/python3")
	f.Add([]byte(" \x00"), "")
	f.Add([]byte("python\x00--\x00"), "")
	f.Fuzz(func(t *testing.T, cmdline []byte, exe string) {
		p := Proc{Comm: "c", Exe: exe, Cmdline: splitArgs(cmdline)}
		names := p.Names()
		if len(names) == 0 || names[0] != "c" {
			t.Errorf("Names() = %q, want comm first", names)
		}
		for i, n := range names {
			if n == "" || slices.Contains(names[:i], n) {
				t.Errorf("Names() = %q: empty or repeated name", names)
			}
		}
		p.CommandLine()
	})
}

// splitArgs splits a command line as procmem.FS.Cmdline does: NUL
// separated, trailing NULs dropped, nil if nothing is left.
func splitArgs(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

func TestName(t *testing.T) {
	for _, tt := range []struct {
		p    Proc
		want string
	}{
		{Proc{Comm: "gunicorn", Exe: "/usr/bin/python3.11", Cmdline: []string{"/usr/bin/python3", "/usr/bin/gunicorn", "-w", "3", "app:app"}}, "gunicorn"},
		{Proc{Comm: "python3", Exe: "/usr/bin/python3.11", Cmdline: []string{"python3", "/srv/app.py"}}, "app.py"},
		{Proc{Comm: "python3.11", Exe: "/usr/bin/python3.11", Cmdline: []string{"python3", "-m", "celery", "worker"}}, "celery"},
		{Proc{Comm: "python3", Exe: "/usr/bin/python3.11", Cmdline: []string{"python3", "-c", "pass"}}, "python3"},
		{Proc{Comm: "python3"}, "python3"},
	} {
		if got := tt.p.Name(); got != tt.want {
			t.Errorf("%q.Name() = %q, want %q", tt.p.Cmdline, got, tt.want)
		}
	}
}
