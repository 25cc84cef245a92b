package outfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// content is larger than a pipe's buffer, so that a FIFO's reader and the
// writer must take turns.
var content = strings.Repeat("main;work;leaf 1\n", 20000)

func renderString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		// In pieces, as a renderer writes.
		for len(s) > 0 {
			n := min(len(s), 4096)
			if _, err := io.WriteString(w, s[:n]); err != nil {
				return err
			}
			s = s[n:]
		}
		return nil
	}
}

// nobody is the unprivileged user the tests become.
const nobody = 65534

// asNobody runs fn as uid and gid 65534 without capabilities, and then
// becomes root again: the saved uid stays 0, and the kernel gives the
// capabilities back with the effective uid. Nothing else in this package's
// tests runs meanwhile.
func asNobody(t *testing.T, fn func()) {
	t.Helper()
	groups, err := syscall.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatalf("become nobody: %v", err)
		}
	}
	must(syscall.Setgroups([]int{nobody}))
	must(syscall.Setresgid(nobody, nobody, 0))
	must(syscall.Setresuid(nobody, nobody, 0))
	defer func() {
		if syscall.Setresuid(0, 0, 0) != nil || syscall.Setresgid(0, 0, 0) != nil || syscall.Setgroups(groups) != nil {
			panic("cannot become root again")
		}
	}()
	fn()
}

// privateTemp points os.TempDir, where SaveTemp writes, at a directory of
// the test's own, and returns it.
func privateTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return dir
}

// noTemps fails if a temporary file of this package is left under dirs.
func noTemps(t *testing.T, dirs ...string) {
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

func stat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

func mknod(t *testing.T, path string, major, minor uint32) {
	t.Helper()
	if err := unix.Mknod(path, unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
}

// wantError checks that err is an *Error naming path, with errno.
func wantError(t *testing.T, err error, path string, errno syscall.Errno) {
	t.Helper()
	var oe *Error
	if !errors.As(err, &oe) || oe.Path != path || !errors.Is(err, errno) {
		t.Fatalf("error %v (%T), want an *Error naming %s with %v", err, err, path, errno)
	}
	if strings.Contains(err.Error(), ".pyprof-") {
		t.Errorf("error names a temporary file: %v", err)
	}
}

// wantRead reads, in the background, all that the reader open returns
// gives, and wants it to be content by the end of the test; what names the
// reader in the error.
func wantRead(t *testing.T, what string, open func() (io.ReadCloser, error)) {
	got := make(chan string, 1)
	go func() {
		r, err := open()
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(r)
		r.Close()
		got <- string(b)
	}()
	t.Cleanup(func() {
		select {
		case s := <-got:
			if s != content {
				t.Errorf("%s got %d bytes, want %d", what, len(s), len(content))
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s got nothing", what)
		}
	})
}

// readPipe returns the write end of a pipe whose reader wants content; the
// write end is closed at the end of the test, before the reader is asked.
func readPipe(t *testing.T) *os.File {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	wantRead(t, "pipe", func() (io.ReadCloser, error) { return pr, nil })
	t.Cleanup(func() { pw.Close() })
	return pw
}

// run is one case's outcome: New's error, or else Write's.
type run struct {
	dir, path string
	o         *Output
	err       error
}

// TestWrite writes to every kind of path, as root and, where permissions
// decide, as an unprivileged user; devices, FIFOs, sockets and symlinks are
// private nodes in the test's directory.
func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		root   bool // mknod, chown
		nobody bool // New and Write run as uid 65534 in a directory it owns
		setup  func(t *testing.T, dir string) (string, Options)
		check  func(t *testing.T, r run)
	}{
		{
			name:  "new file",
			setup: func(t *testing.T, dir string) (string, Options) { return filepath.Join(dir, "p.svg"), Options{} },
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, r.path) != content {
					t.Fatalf("error %v or wrong content", r.err)
				}
			},
		},
		{
			name: "new file under sudo belongs to the user", root: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				return filepath.Join(dir, "p.svg"), Options{Owner: &Owner{nobody, nobody}}
			},
			check: func(t *testing.T, r run) {
				if st := stat(t, r.path); r.err != nil || st.Uid != nobody || st.Gid != nobody {
					t.Fatalf("error %v, owner %d:%d", r.err, st.Uid, st.Gid)
				}
			},
		},
		{
			name: "regular file keeps its mode and owner", root: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "p.svg")
				writeFile(t, p, "old", 0o600)
				os.Chown(p, nobody, nobody)
				return p, Options{Owner: &Owner{1, 1}} // kept, not given to the sudo user
			},
			check: func(t *testing.T, r run) {
				st := stat(t, r.path)
				if r.err != nil || readFile(t, r.path) != content || st.Mode&0o7777 != 0o600 || st.Uid != nobody || st.Gid != nobody {
					t.Fatalf("error %v, mode %o, owner %d:%d", r.err, st.Mode&0o7777, st.Uid, st.Gid)
				}
			},
		},
		{
			name: "regular file of the user keeps its mode", nobody: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "p.svg")
				writeFile(t, p, "old", 0o640)
				os.Chown(p, nobody, nobody)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				st := stat(t, r.path)
				if r.err != nil || readFile(t, r.path) != content || st.Mode&0o7777 != 0o640 || st.Uid != nobody {
					t.Fatalf("error %v, mode %o, owner %d", r.err, st.Mode&0o7777, st.Uid)
				}
			},
		},
		{
			name: "read-only file is refused", nobody: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "p.svg")
				writeFile(t, p, "old", 0o444)
				os.Chown(p, nobody, nobody)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				wantError(t, r.err, r.path, syscall.EACCES)
				if readFile(t, r.path) != "old" {
					t.Error("file changed")
				}
			},
		},
		{
			name: "file of another user is written in place", nobody: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				// The user may write it and its directory, but cannot
				// give a new file to its owner.
				p := filepath.Join(dir, "p.svg")
				writeFile(t, p, "old", 0o666)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if st := stat(t, r.path); r.err != nil || readFile(t, r.path) != content || st.Uid != 0 || st.Mode&0o777 != 0o666 {
					t.Fatalf("error %v, owner %d, mode %o", r.err, st.Uid, st.Mode&0o777)
				}
			},
		},
		{
			name: "writable file in a read-only directory is written in place", nobody: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				sub := filepath.Join(dir, "ro")
				os.Mkdir(sub, 0o755)
				p := filepath.Join(sub, "p.svg")
				writeFile(t, p, "old", 0o644)
				os.Chown(p, nobody, nobody)
				os.Chown(sub, nobody, nobody)
				os.Chmod(sub, 0o555)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, r.path) != content {
					t.Fatalf("error %v", r.err)
				}
			},
		},
		{
			name: "new file in a read-only directory", nobody: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				sub := filepath.Join(dir, "ro")
				os.Mkdir(sub, 0o555)
				return filepath.Join(sub, "p.svg"), Options{}
			},
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.EACCES) },
		},
		{
			name: "file in a directory the user cannot search", nobody: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				sub := filepath.Join(dir, "root")
				os.Mkdir(sub, 0o700) // as /root
				return filepath.Join(sub, "x.svg"), Options{}
			},
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.EACCES) },
		},
		{
			name: "hard-linked file is written in place",
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "p.svg")
				writeFile(t, p, "old", 0o644)
				os.Link(p, filepath.Join(dir, "other"))
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, filepath.Join(r.dir, "other")) != content || stat(t, r.path).Nlink != 2 {
					t.Fatalf("error %v, or the link lost", r.err)
				}
			},
		},
		{
			name: "symlink: its target is written and keeps its mode",
			setup: func(t *testing.T, dir string) (string, Options) {
				writeFile(t, filepath.Join(dir, "target"), "old", 0o640)
				p := filepath.Join(dir, "p.svg")
				os.Symlink("target", p)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				tg := filepath.Join(r.dir, "target")
				if r.err != nil || stat(t, r.path).Mode&syscall.S_IFMT != syscall.S_IFLNK || readFile(t, tg) != content || stat(t, tg).Mode&0o7777 != 0o640 {
					t.Fatalf("error %v, link %o, target mode %o", r.err, stat(t, r.path).Mode, stat(t, tg).Mode)
				}
			},
		},
		{
			name: "chain of symlinks through a directory symlink",
			setup: func(t *testing.T, dir string) (string, Options) {
				os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
				os.Symlink("a/b", filepath.Join(dir, "ab"))
				// Relative to the link's real directory, a/b, not to ab.
				os.Symlink("../target", filepath.Join(dir, "ab", "l2"))
				p := filepath.Join(dir, "p.svg")
				os.Symlink("ab/l2", p)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, filepath.Join(r.dir, "a", "target")) != content {
					t.Fatalf("error %v", r.err)
				}
			},
		},
		{
			// The temporary file goes where the rename lands: here a
			// directory the user may write, where the path spells one
			// he may not.
			name: "'..' after a symlinked directory climbs from its target", nobody: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				os.MkdirAll(filepath.Join(dir, "w", "b"), 0o755)
				os.Chown(filepath.Join(dir, "w"), nobody, nobody)
				os.Mkdir(filepath.Join(dir, "ro"), 0o755)
				os.Symlink("../w/b", filepath.Join(dir, "ro", "ab"))
				return dir + "/ro/ab/../p.svg", Options{} // not cleaned
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, filepath.Join(r.dir, "w", "p.svg")) != content {
					t.Fatalf("error %v", r.err)
				}
			},
		},
		{
			name:  "trailing slash",
			setup: func(t *testing.T, dir string) (string, Options) { return filepath.Join(dir, "p.svg") + "/", Options{} },
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.EISDIR) },
		},
		{
			name: "dangling symlink creates its target",
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "p.svg")
				os.Symlink("new.svg", p)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, filepath.Join(r.dir, "new.svg")) != content || stat(t, r.path).Mode&syscall.S_IFMT != syscall.S_IFLNK {
					t.Fatalf("error %v", r.err)
				}
			},
		},
		{
			name: "dangling symlink into a missing directory",
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "p.svg")
				os.Symlink("missing/new.svg", p)
				return p, Options{}
			},
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.ENOENT) },
		},
		{
			name: "symlink loop",
			setup: func(t *testing.T, dir string) (string, Options) {
				os.Symlink("b", filepath.Join(dir, "a"))
				os.Symlink("a", filepath.Join(dir, "b"))
				return filepath.Join(dir, "a"), Options{}
			},
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.ELOOP) },
		},
		{
			name: "symlink of another user in a sticky directory is refused", root: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				sticky := filepath.Join(dir, "tmp")
				os.Mkdir(sticky, 0o777)
				os.Chmod(sticky, os.ModeSticky|0o777)
				writeFile(t, filepath.Join(dir, "passwd"), "precious", 0o644)
				p := filepath.Join(sticky, "p.svg")
				os.Symlink("../passwd", p)
				os.Lchown(p, nobody, nobody)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				wantError(t, r.err, r.path, syscall.EACCES)
				if !strings.Contains(r.err.Error(), "sticky") || readFile(t, filepath.Join(r.dir, "passwd")) != "precious" {
					t.Errorf("%v", r.err)
				}
			},
		},
		{
			name: "file of another user in a sticky directory is refused", root: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				sticky := filepath.Join(dir, "tmp")
				os.Mkdir(sticky, 0o777)
				os.Chmod(sticky, os.ModeSticky|0o777)
				p := filepath.Join(sticky, "p.svg")
				writeFile(t, p, "old", 0o644)
				os.Chown(p, nobody, nobody)
				return p, Options{}
			},
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.EACCES) },
		},
		{
			name: "file of the sudo user in a sticky directory", root: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				sticky := filepath.Join(dir, "tmp")
				os.Mkdir(sticky, 0o777)
				os.Chmod(sticky, os.ModeSticky|0o777)
				p := filepath.Join(sticky, "p.svg")
				writeFile(t, p, "old", 0o644)
				os.Chown(p, nobody, nobody)
				return p, Options{Owner: &Owner{nobody, nobody}}
			},
			check: func(t *testing.T, r run) {
				if st := stat(t, r.path); r.err != nil || readFile(t, r.path) != content || st.Uid != nobody {
					t.Fatalf("error %v, owner %d", r.err, st.Uid)
				}
			},
		},
		{
			name:  "directory",
			setup: func(t *testing.T, dir string) (string, Options) { return dir, Options{} },
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.EISDIR) },
		},
		{
			name:  "missing directory",
			setup: func(t *testing.T, dir string) (string, Options) { return filepath.Join(dir, "no", "p.svg"), Options{} },
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.ENOENT) },
		},
		{
			name: "character device like /dev/null", root: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "null")
				mknod(t, p, 1, 3)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || stat(t, r.path).Mode&syscall.S_IFMT != syscall.S_IFCHR {
					t.Fatalf("error %v, mode %o", r.err, stat(t, r.path).Mode)
				}
			},
		},
		{
			name: "character device like /dev/full", root: true,
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "full")
				mknod(t, p, 1, 7)
				return p, Options{Owner: &Owner{nobody, nobody}}
			},
			check: func(t *testing.T, r run) {
				wantError(t, r.err, r.path, syscall.ENOSPC)
				if stat(t, r.path).Mode&syscall.S_IFMT != syscall.S_IFCHR {
					t.Errorf("no longer a device: %o", stat(t, r.path).Mode)
				}
				// The fallback: a file of the sudo user's, for him only.
				name, err := r.o.SaveTemp("pyprof-*.txt", renderString(content))
				if err != nil {
					t.Fatal(err)
				}
				st := stat(t, name)
				if filepath.Dir(name) != os.TempDir() || readFile(t, name) != content || st.Mode&0o777 != 0o600 || st.Uid != nobody {
					t.Errorf("fallback %s: mode %o, owner %d", name, st.Mode&0o777, st.Uid)
				}
			},
		},
		{
			name: "FIFO with a reader",
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "fifo")
				if err := unix.Mkfifo(p, 0o600); err != nil {
					t.Fatal(err)
				}
				wantRead(t, "reader", func() (io.ReadCloser, error) {
					return os.Open(p) // blocks until the writer opens it
				})
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || stat(t, r.path).Mode&syscall.S_IFMT != syscall.S_IFIFO {
					t.Fatalf("error %v, mode %o", r.err, stat(t, r.path).Mode)
				}
			},
		},
		{
			name: "socket",
			setup: func(t *testing.T, dir string) (string, Options) {
				p := filepath.Join(dir, "sock")
				l, err := net.Listen("unix", p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				wantRead(t, "listener", func() (io.ReadCloser, error) { return l.Accept() })
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || stat(t, r.path).Mode&syscall.S_IFMT != syscall.S_IFSOCK {
					t.Fatalf("error %v", r.err)
				}
			},
		},
		{
			name: "stdout",
			setup: func(t *testing.T, dir string) (string, Options) {
				return Stdout, Options{Stdout: &bytes.Buffer{}}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || r.o.opts.Stdout.(*bytes.Buffer).String() != content {
					t.Fatalf("error %v", r.err)
				}
			},
		},
		{
			name: "stdout a pipe",
			setup: func(t *testing.T, dir string) (string, Options) {
				return Stdout, Options{Stdout: readPipe(t)}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil {
					t.Fatal(r.err)
				}
			},
		},
		{
			name: "stdout a broken pipe is an error, not SIGPIPE",
			setup: func(t *testing.T, dir string) (string, Options) {
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				pr.Close()
				t.Cleanup(func() { pw.Close() })
				return Stdout, Options{Stdout: pw}
			},
			check: func(t *testing.T, r run) { wantError(t, r.err, Stdout, syscall.EPIPE) },
		},
		{
			name: "our own descriptor: a pipe",
			setup: func(t *testing.T, dir string) (string, Options) {
				pw := readPipe(t)
				return "/dev/fd/" + strconv.Itoa(int(pw.Fd())), Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil {
					t.Fatal(r.err)
				}
			},
		},
		{
			name: "our own descriptor: a regular file is written where it stands",
			setup: func(t *testing.T, dir string) (string, Options) {
				// As a shell's `> file` for /dev/stdout: the file is
				// not replaced, the output follows what was written.
				f, err := os.Create(filepath.Join(dir, "held"))
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("head\n")
				t.Cleanup(func() { f.Close() })
				return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())), Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, filepath.Join(r.dir, "held")) != "head\n"+content {
					t.Fatalf("error %v", r.err)
				}
			},
		},
		{
			name: "our own descriptor, open for reading only",
			setup: func(t *testing.T, dir string) (string, Options) {
				writeFile(t, filepath.Join(dir, "ro"), "old", 0o644)
				f, err := os.Open(filepath.Join(dir, "ro"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				return "/dev/fd/" + strconv.Itoa(int(f.Fd())), Options{}
			},
			check: func(t *testing.T, r run) { wantError(t, r.err, r.path, syscall.EBADF) },
		},
		{
			name: "a symlink to our own descriptor",
			setup: func(t *testing.T, dir string) (string, Options) {
				f, err := os.Create(filepath.Join(dir, "held"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				p := filepath.Join(dir, "p.svg")
				os.Symlink("/dev/fd/"+strconv.Itoa(int(f.Fd())), p)
				return p, Options{}
			},
			check: func(t *testing.T, r run) {
				if r.err != nil || readFile(t, filepath.Join(r.dir, "held")) != content || stat(t, r.path).Mode&syscall.S_IFMT != syscall.S_IFLNK {
					t.Fatalf("error %v", r.err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.root || tc.nobody) && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			dir := t.TempDir()
			if tc.nobody {
				// t.TempDir's parent is private; this one the user can
				// reach and owns.
				d, err := os.MkdirTemp("", "outfile-nobody-")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(filepath.Join(d, "ro"), 0o755); os.RemoveAll(d) })
				os.Chmod(d, 0o755)
				os.Chown(d, nobody, nobody)
				dir = d
			}
			tmp := privateTemp(t)
			path, opts := tc.setup(t, dir)
			r := run{dir: dir, path: path}
			do := func() {
				r.o, r.err = New(path, opts)
				if r.err == nil {
					r.err = r.o.Write(renderString(content))
				}
			}
			if tc.nobody {
				asNobody(t, do)
			} else {
				do()
			}
			if r.o != nil {
				defer r.o.Close()
			}
			tc.check(t, r)
			noTemps(t, dir, tmp)
		})
	}
}

// TestNewFileMode: a new file gets 0666 less the umask, as a shell's `>`
// gives it.
func TestNewFileMode(t *testing.T) {
	for _, umask := range []int{0o022, 0o077, 0o002, 0} {
		t.Run(strconv.FormatInt(int64(umask), 8), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			p := filepath.Join(t.TempDir(), "p.svg")
			o, err := New(p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if err := o.Write(renderString("x")); err != nil {
				t.Fatal(err)
			}
			if got, want := stat(t, p).Mode&0o7777, uint32(0o666&^umask); got != want {
				t.Errorf("mode %o, want %o", got, want)
			}
		})
	}
}

// TestCheckLeavesThingsAlone: checking touches nothing at the path. A FIFO
// is not opened (that would block, or end a waiting reader's input), a
// file is not truncated, and a device stays what it was.
func TestCheckLeavesThingsAlone(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	writeFile(t, file, "old", 0o644)
	paths := []string{fifo, file}
	if os.Geteuid() == 0 {
		full := filepath.Join(dir, "full")
		mknod(t, full, 1, 7)
		paths = append(paths, full)
	}
	for _, p := range paths {
		before := stat(t, p)
		done := make(chan error, 1)
		go func() { done <- Check(p, Options{}) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Check blocks", p)
		}
		after := stat(t, p)
		if after.Ino != before.Ino || after.Mode != before.Mode || after.Size != before.Size || after.Mtim != before.Mtim {
			t.Errorf("%s changed: %+v → %+v", p, before, after)
		}
	}
	noTemps(t, dir)
}

// TestAbandon: whenever the output is abandoned, nothing reaches the
// destination and no temporary file is left, also when a render
// function panics.
func TestAbandon(t *testing.T) {
	old := func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "p.svg")
		writeFile(t, p, "old", 0o644)
		return p
	}
	dests := []struct {
		name      string
		setup     func(t *testing.T, dir string) string
		unchanged func(path string) bool
	}{
		{"new file", func(t *testing.T, dir string) string { return filepath.Join(dir, "p.svg") },
			func(path string) bool { _, err := os.Lstat(path); return errors.Is(err, fs.ErrNotExist) }},
		{"existing file", old,
			func(path string) bool { b, _ := os.ReadFile(path); return string(b) == "old" }},
		{"hard-linked file", func(t *testing.T, dir string) string {
			p := old(t, dir)
			os.Link(p, filepath.Join(dir, "other"))
			return p
		}, func(path string) bool { b, _ := os.ReadFile(path); return string(b) == "old" }},
	}
	for _, d := range dests {
		for _, how := range []struct {
			name   string
			render func(o *Output, dir string) func(io.Writer) error
			panics bool
		}{
			{"before writing", func(o *Output, dir string) func(io.Writer) error {
				o.Abandon()
				return renderString(content)
			}, false},
			{"while rendering", func(o *Output, dir string) func(io.Writer) error {
				return func(w io.Writer) error {
					io.WriteString(w, content[:1000])
					o.Abandon()
					noTemps(t, dir) // gone when Abandon returns
					_, err := io.WriteString(w, content[1000:])
					return err
				}
			}, false},
			{"from another goroutine", func(o *Output, dir string) func(io.Writer) error {
				return func(w io.Writer) error {
					io.WriteString(w, content[:1000])
					done := make(chan struct{})
					go func() { o.Abandon(); close(done) }()
					<-done
					noTemps(t, dir)
					// A render that ignores its writer's errors.
					io.WriteString(w, content[1000:])
					return nil
				}
			}, false},
			{"render panics", func(o *Output, dir string) func(io.Writer) error {
				return func(w io.Writer) error {
					io.WriteString(w, content[:1000])
					panic("render failed")
				}
			}, true},
			{"render fails", func(o *Output, dir string) func(io.Writer) error {
				return func(w io.Writer) error {
					io.WriteString(w, content[:1000])
					return errors.New("render failed")
				}
			}, false},
		} {
			t.Run(d.name+"/"+how.name, func(t *testing.T) {
				tmp := privateTemp(t)
				dir := t.TempDir()
				path := d.setup(t, dir)
				o, err := New(path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer o.Close()
				func() {
					defer func() {
						if r := recover(); (r != nil) != how.panics {
							t.Errorf("recovered %v", r)
						}
					}()
					err = o.Write(how.render(o, dir))
				}()
				if !how.panics && err == nil {
					t.Error("no error")
				}
				if !how.panics && how.name != "render fails" && !errors.Is(err, ErrAbandoned) {
					t.Errorf("error %v, want ErrAbandoned", err)
				}
				if !d.unchanged(path) {
					t.Error("destination changed")
				}
				noTemps(t, dir, tmp)
			})
		}
	}
	// The fallback file too goes with the output.
	for _, how := range []string{"while rendering", "render panics", "render fails"} {
		t.Run("SaveTemp/"+how, func(t *testing.T) {
			tmp := privateTemp(t)
			o, err := New(filepath.Join(t.TempDir(), "p.svg"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			func() {
				defer func() { recover() }()
				_, err = o.SaveTemp("pyprof-*.svg", func(w io.Writer) error {
					io.WriteString(w, content[:1000])
					switch how {
					case "while rendering":
						o.Abandon()
					case "render panics":
						panic("render failed")
					default:
						return errors.New("render failed")
					}
					_, err := io.WriteString(w, content[1000:])
					return err
				})
			}()
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left in the temporary directory: %v", ents)
			}
		})
	}
}

// TestWriteWithDescriptorsExhausted runs itself in a subprocess whose
// RLIMIT_NOFILE is low, and uses up every descriptor after New: the write,
// and the fallback after a failed one, must still succeed, where without
// the reserve they fail with EMFILE.
func TestWriteWithDescriptorsExhausted(t *testing.T) {
	if dir := os.Getenv("OUTFILE_EXHAUST_DIR"); dir != "" {
		exhaustedChild(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteWithDescriptorsExhausted$", "-test.v")
	cmd.Env = append(os.Environ(), "OUTFILE_EXHAUST_DIR="+dir, "TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func exhaustedChild(t *testing.T, dir string) {
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 64, Max: 64}); err != nil {
		t.Fatal(err)
	}
	var held []int
	exhaust := func() {
		for {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				if err != unix.EMFILE {
					t.Fatal(err)
				}
				return
			}
			held = append(held, fd)
		}
	}
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	newOutput := func(name string) *Output {
		o, err := New(filepath.Join(dir, name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	reserved, released, full := newOutput("p.svg"), newOutput("q.svg"), newOutput("full")
	released.Close()
	fullPath := filepath.Join(dir, "full")
	canMknod := unix.Mknod(fullPath, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))) == nil

	exhaust()
	if err := released.Write(renderString(content)); !errors.Is(err, syscall.EMFILE) {
		t.Errorf("without the reserve: %v, want EMFILE (the test would prove nothing)", err)
	}
	exhaust()
	if err := reserved.Write(renderString(content)); err != nil {
		t.Errorf("with the reserve: %v", err)
	} else if readFile(t, filepath.Join(dir, "p.svg")) != content {
		t.Error("wrong content")
	}
	if canMknod {
		exhaust()
		err := full.Write(renderString(content))
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("write to a full device: %v", err)
		}
		exhaust()
		name, err := full.SaveTemp("pyprof-*.txt", renderString(content))
		if err != nil {
			t.Errorf("fallback: %v", err)
		} else if readFile(t, name) != content {
			t.Error("fallback: wrong content")
		}
	}
	t.Logf("held %d descriptors", len(held))
}

func TestSelfFD(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		path string
		fd   int
		ok   bool
	}{
		{"/dev/stdout", 1, true},
		{"/dev/stderr", 2, true},
		{"/dev/stdin", 0, true},
		{"/dev/fd/7", 7, true},
		{"/dev//fd/./7", 7, true},
		{"/proc/self/fd/12", 12, true},
		{"/proc/thread-self/fd/3", 3, true},
		{"/proc/" + pid + "/fd/4", 4, true},
		{"/proc/1/fd/4", 0, false},
		{"/dev/fd/+1", 0, false},
		{"/dev/fd/", 0, false},
		{"/dev/fd/1/x", 0, false},
		{"/dev/null", 0, false},
		{"stdout", 0, false}, // relative: ./stdout
	} {
		fd, ok := selfFD(tc.path)
		if fd != tc.fd || ok != tc.ok {
			t.Errorf("selfFD(%q) = %d, %v; want %d, %v", tc.path, fd, ok, tc.fd, tc.ok)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Path: "/root/x.svg", Err: syscall.EACCES}, "cannot write the output /root/x.svg: permission denied"},
		{&Error{Path: Stdout, Err: syscall.EPIPE}, "cannot write the output to stdout: broken pipe"},
		{&Error{Path: "/srv", InDir: true, Err: syscall.EROFS}, "cannot write the output in /srv: read-only file system"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}
