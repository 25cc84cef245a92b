package cli_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pyprof/pyprof/internal/testpython"
)

// noOutputTemps fails if a temporary file of pyprof's output is left in
// any of dirs.
func noOutputTemps(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".pyprof-") {
				t.Errorf("temporary file left: %s", p)
			}
			return nil
		})
	}
}

// ptraceAdvice are words only the advice about reading a process uses.
var ptraceAdvice = []string{"ptrace", "PTRACE", "setcap", "sudo", "reading process"}

// nobodyPyprof copies the binary where uid 65534 can run it.
func nobodyPyprof(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pyprof-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(testpython.BuildPyprof(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pyprof")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// recordResult is one record run's outcome.
type recordResult struct {
	dir, tmp, out  string // the case's directory, TMPDIR, -o
	stdout, stderr string
	code           int
}

func isKind(t *testing.T, path string, kind uint32) bool {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode&syscall.S_IFMT == kind
}

func samples(t *testing.T, collapsed string) int {
	t.Helper()
	n := 0
	if collapsed == "" {
		return 0
	}
	for _, line := range strings.Split(strings.TrimSpace(collapsed), "\n") {
		i := strings.LastIndexByte(line, ' ')
		c, err := strconv.Atoi(line[i+1:])
		if i < 0 || err != nil {
			t.Fatalf("not collapsed stacks: %q", line)
		}
		n += c
	}
	return n
}

// TestRecordOutput writes a real record's profile to each kind of output;
// device, FIFO and symlink cases use private nodes in the test's directory.
func TestRecordOutput(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	tg := testpython.Start(t, py, "busy.py")
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	for _, tc := range []struct {
		name   string
		root   bool // mknod, chown
		nobody bool // pyprof runs as uid 65534
		// setup returns -o's value, and stdout if it matters.
		setup func(t *testing.T, dir string) (string, *os.File)
		check func(t *testing.T, r recordResult)
	}{
		{
			name: "device like /dev/full: the profile goes to a temporary file", root: true,
			setup: func(t *testing.T, dir string) (string, *os.File) {
				p := filepath.Join(dir, "full")
				if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))); err != nil {
					t.Fatal(err)
				}
				return p, nil
			},
			check: func(t *testing.T, r recordResult) {
				m := regexp.MustCompile(`^pyprof: cannot write the output ` + regexp.QuoteMeta(r.out) + `: no space left on device; the profile was saved to (\S+) instead\n$`).FindStringSubmatch(lastLine(r.stderr))
				if r.code != 1 || m == nil {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
				if filepath.Dir(m[1]) != r.tmp {
					t.Errorf("fallback %s not in TMPDIR %s", m[1], r.tmp)
				}
				if b, err := os.ReadFile(m[1]); err != nil || samples(t, string(b)) == 0 {
					t.Errorf("fallback: %v", err)
				}
				if !isKind(t, r.out, syscall.S_IFCHR) {
					t.Error("no longer a character device")
				}
			},
		},
		{
			name: "device like /dev/null", root: true,
			setup: func(t *testing.T, dir string) (string, *os.File) {
				p := filepath.Join(dir, "null")
				if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
					t.Fatal(err)
				}
				return p, nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 0 || !strings.Contains(r.stderr, "wrote "+r.out+":") || !isKind(t, r.out, syscall.S_IFCHR) {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
			},
		},
		{
			name: "FIFO with a reader",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				p := filepath.Join(dir, "fifo")
				if err := unix.Mkfifo(p, 0o644); err != nil {
					t.Fatal(err)
				}
				got := make(chan string, 1)
				go func() {
					f, err := os.Open(p)
					if err != nil {
						got <- ""
						return
					}
					b, _ := io.ReadAll(f)
					f.Close()
					got <- string(b)
				}()
				t.Cleanup(func() {
					select {
					case s := <-got:
						if samples(t, s) == 0 {
							t.Errorf("reader got %q", s)
						}
					case <-time.After(10 * time.Second):
						t.Error("reader got nothing")
					}
				})
				return p, nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 0 || !isKind(t, r.out, syscall.S_IFIFO) {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
			},
		},
		{
			name: "symlink: the target gets the profile and keeps its mode",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				tg := filepath.Join(dir, "target.txt")
				os.WriteFile(tg, []byte("old"), 0o600)
				p := filepath.Join(dir, "p.txt")
				os.Symlink("target.txt", p)
				return p, nil
			},
			check: func(t *testing.T, r recordResult) {
				tg := filepath.Join(r.dir, "target.txt")
				b, _ := os.ReadFile(tg)
				fi, _ := os.Stat(tg)
				if r.code != 0 || !isKind(t, r.out, syscall.S_IFLNK) || samples(t, string(b)) == 0 || fi.Mode().Perm() != 0o600 {
					t.Fatalf("exit %d, mode %v, stderr:\n%s", r.code, fi.Mode(), r.stderr)
				}
			},
		},
		{
			name: "dangling symlink creates its target",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				p := filepath.Join(dir, "p.txt")
				os.Symlink("new.txt", p)
				return p, nil
			},
			check: func(t *testing.T, r recordResult) {
				b, err := os.ReadFile(filepath.Join(r.dir, "new.txt"))
				if r.code != 0 || err != nil || samples(t, string(b)) == 0 || !isKind(t, r.out, syscall.S_IFLNK) {
					t.Fatalf("exit %d, %v, stderr:\n%s", r.code, err, r.stderr)
				}
			},
		},
		{
			name: "file of another user, mode 600, keeps both", root: true,
			setup: func(t *testing.T, dir string) (string, *os.File) {
				p := filepath.Join(dir, "p.txt")
				os.WriteFile(p, []byte("old"), 0o600)
				os.Chown(p, 65534, 65534)
				return p, nil
			},
			check: func(t *testing.T, r recordResult) {
				b, _ := os.ReadFile(r.out)
				fi, _ := os.Stat(r.out)
				st := fi.Sys().(*syscall.Stat_t)
				if r.code != 0 || samples(t, string(b)) == 0 || fi.Mode().Perm() != 0o600 || st.Uid != 65534 || st.Gid != 65534 {
					t.Fatalf("exit %d, mode %v, owner %d:%d, stderr:\n%s", r.code, fi.Mode(), st.Uid, st.Gid, r.stderr)
				}
			},
		},
		{
			name: "new file: 0666 less the umask",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				return filepath.Join(dir, "p.txt"), nil
			},
			check: func(t *testing.T, r recordResult) {
				fi, err := os.Stat(r.out)
				if r.code != 0 || err != nil || fi.Mode().Perm() != fs.FileMode(0o666&^umask) {
					t.Fatalf("exit %d, %v, mode %v, stderr:\n%s", r.code, err, fi.Mode(), r.stderr)
				}
			},
		},
		{
			name: "hard-linked file is written in place",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				p := filepath.Join(dir, "p.txt")
				os.WriteFile(p, []byte("old"), 0o644)
				os.Link(p, filepath.Join(dir, "other.txt"))
				return p, nil
			},
			check: func(t *testing.T, r recordResult) {
				b, _ := os.ReadFile(filepath.Join(r.dir, "other.txt"))
				if r.code != 0 || samples(t, string(b)) == 0 {
					t.Fatalf("exit %d, other link holds %q, stderr:\n%s", r.code, b, r.stderr)
				}
			},
		},
		{
			name: "-o - writes to stdout",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				return "-", nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 0 || samples(t, r.stdout) == 0 || !strings.Contains(r.stderr, "wrote stdout:") {
					t.Fatalf("exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
				}
			},
		},
		{
			name: "/dev/stdout a pipe",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				return "/dev/stdout", nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 0 || samples(t, r.stdout) == 0 || !strings.Contains(r.stderr, "wrote /dev/stdout:") {
					t.Fatalf("exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
				}
			},
		},
		{
			name: "/dev/stdout a regular file",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				f, err := os.Create(filepath.Join(dir, "stdout.txt"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				return "/dev/stdout", f
			},
			check: func(t *testing.T, r recordResult) {
				// The shell's file, not a replacement for it.
				b, _ := os.ReadFile(filepath.Join(r.dir, "stdout.txt"))
				if r.code != 0 || samples(t, string(b)) == 0 {
					t.Fatalf("exit %d, file holds %q, stderr:\n%s", r.code, b, r.stderr)
				}
			},
		},
		{
			name: "directory: an error before sampling",
			setup: func(t *testing.T, dir string) (string, *os.File) {
				return dir, nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 1 || r.stderr != "pyprof: cannot write the output "+r.out+": is a directory\n" {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
			},
		},
		{
			name: "unwritable as a user: /root/x.svg", nobody: true,
			setup: func(t *testing.T, dir string) (string, *os.File) {
				if fi, err := os.Stat("/root"); err != nil || fi.Mode().Perm()&0o001 != 0 {
					t.Skip("/root is not private here")
				}
				return "/root/x.svg", nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 1 || r.stderr != "pyprof: cannot write the output /root/x.svg: permission denied\n" {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
			},
		},
		{
			name: "unwritable as a user: a directory of root's", nobody: true,
			setup: func(t *testing.T, dir string) (string, *os.File) {
				return filepath.Join(dir, "x.svg"), nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 1 || r.stderr != "pyprof: cannot write the output "+r.out+": permission denied\n" {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
			},
		},
		{
			name: "unwritable as a user: the default output", nobody: true,
			setup: func(t *testing.T, dir string) (string, *os.File) {
				return "", nil
			},
			check: func(t *testing.T, r recordResult) {
				if r.code != 1 || r.stderr != "pyprof: cannot write the output in "+r.dir+": permission denied (choose another file with -o)\n" {
					t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.root || tc.nobody) && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			dir, tmp := t.TempDir(), t.TempDir()
			bin := testpython.BuildPyprof(t)
			var setpriv []string
			if tc.nobody {
				sp, err := exec.LookPath("setpriv")
				if err != nil {
					t.Skip("no setpriv")
				}
				// Reachable, but not writable, by the user.
				d, err := os.MkdirTemp("", "pyprof-out")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(d) })
				os.Chmod(d, 0o755)
				dir = d
				bin = nobodyPyprof(t)
				setpriv = []string{sp, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"}
			}
			out, stdoutFile := tc.setup(t, dir)
			args := append(setpriv, bin, "record", "-p", strconv.Itoa(tg.Pid), "-d", "1", "-f", "collapsed")
			if out != "" {
				args = append(args, "-o", out)
			}
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if stdoutFile != nil {
				cmd.Stdout = stdoutFile
			}
			err := cmd.Run()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatal(err)
			}
			r := recordResult{dir: dir, tmp: tmp, out: out, stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
			tc.check(t, r)
			for _, w := range ptraceAdvice {
				if r.code != 0 && strings.Contains(r.stderr, w) {
					t.Errorf("advice about reading the target (%q) for an output error:\n%s", w, r.stderr)
				}
			}
			noStackTrace(t, r.stderr)
			noOutputTemps(t, dir, tmp)
		})
	}
	if fi, err := os.Lstat("/dev/stdout"); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("/dev/stdout is no longer a symlink: %v", fi.Mode())
	}
}

// lastLine is the last line of s, with its newline.
func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:] + "\n"
}
