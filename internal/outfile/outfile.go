// Package outfile writes a program's output to the path its user named,
// as a shell's `>` would where replacing the file would do harm, and
// atomically where it can do no harm.
//
// pyprof runs as root, so what sits at the output path matters:
//
//   - "-" is standard output; /dev/stdout, /dev/stderr, /dev/fd/N and
//     /proc/self/fd/N are this process's own descriptors and are written
//     through the descriptor itself, whatever it refers to: a pipe, a
//     socket, a terminal, or a regular file the shell opened (replacing
//     that file would lose the output, since the shell holds its old inode).
//   - Symlinks are followed to the file they name; a dangling one creates
//     its target, as `>` does. A symlink in a world-writable sticky
//     directory (/tmp) is followed, and a file there is written, only if
//     it belongs to this process's user, to the user it writes for (under
//     sudo), or to the directory's owner: what fs.protected_symlinks and
//     fs.protected_regular enforce for open(2), applied whatever the host's
//     settings, since following a symlink by hand escapes the kernel's own
//     checks. (Symlinked directories on the way are the kernel's to follow,
//     under its own settings.)
//   - Character and block devices, FIFOs and sockets are written through
//     (a socket is connected to), never replaced.
//   - A regular file is replaced atomically: a temporary file in its
//     directory, with the old file's permission bits and owner, renamed over
//     it. A file with several hard links, one whose owner the process cannot
//     give to a new file, and one in a directory where no temporary file can
//     be created (though the file itself is writable) are truncated and
//     written in place instead. A file that does not exist yet is created as
//     a shell creates it: mode 0666 less the umask (and the directory's
//     default ACL, which the kernel applies), owned by Options.Owner if set.
//
// An output is checked before the work that produces it, without side
// effects on what is there: a device or FIFO is never opened at check time
// (opening a FIFO blocks or, with a reader waiting, ends its input; opening
// a device can act on it), only its permission is checked; a directory gets
// a temporary file created and removed at once. Whatever cannot be written
// is reported as an *Error naming the path the user gave.
//
// Nothing is left behind: a temporary file is removed on every error, on
// Abandon and when a render function panics. Output that is written through
// or in place is rendered in memory first, so a failed or abandoned render
// leaves the destination as it was.
//
// The file descriptors that writing needs are reserved when an Output is
// made, so that a descriptor leak elsewhere in the process during a long
// run cannot make the final write fail with EMFILE.
package outfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Stdout is the path that names standard output.
const Stdout = "-"

// ErrAbandoned is returned by a write that Abandon cancelled.
var ErrAbandoned = errors.New("output abandoned")

// Error is an output that cannot be written.
type Error struct {
	Path  string // as the user gave it
	InDir bool   // Path is the directory a new output would go in
	Err   error
}

func (e *Error) Error() string {
	switch {
	case e.Path == Stdout:
		return fmt.Sprintf("cannot write the output to stdout: %v", e.Err)
	case e.InDir:
		return fmt.Sprintf("cannot write the output in %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("cannot write the output %s: %v", e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Owner is a user and group to give new files to.
type Owner struct{ UID, GID int }

// Options say where "-" goes and who owns new files.
type Options struct {
	// Stdout is what "-" writes to; nil means os.Stdout.
	Stdout io.Writer
	// Owner, if set, owns the files this package creates (pyprof under
	// sudo gives them to the user who ran sudo). Files that exist keep
	// their owner.
	Owner *Owner
}

func (o Options) stdout() io.Writer {
	if o.Stdout == nil {
		return os.Stdout
	}
	return o.Stdout
}

// An Output is a path checked for writing, with the descriptors writing it
// needs held in reserve until it is written.
type Output struct {
	path string
	opts Options

	abandoned atomic.Bool
	mu        sync.Mutex
	pending   string // a file created and not yet complete
	reserve   []int  // descriptors held for the write
}

// New checks that path can be written (see Check) and reserves the file
// descriptors the write and a fallback (SaveTemp) will need. Close releases
// them if the output is never written.
func New(path string, opts Options) (*Output, error) {
	if err := Check(path, opts); err != nil {
		return nil, err
	}
	o := &Output{path: path, opts: opts}
	// A pipe holds two descriptors with one call and touches no file
	// system. If even that fails, descriptors are already short, and the
	// write will tell.
	var p [2]int
	if unix.Pipe2(p[:], unix.O_CLOEXEC) == nil {
		o.reserve = p[:]
	}
	return o, nil
}

// Name is how messages name the output: its path, or "stdout".
func (o *Output) Name() string {
	if o.path == Stdout {
		return "stdout"
	}
	return o.path
}

// Close releases the descriptors still held in reserve.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, fd := range o.reserve {
		unix.Close(fd)
	}
	o.reserve = nil
	return nil
}

// release frees one reserved descriptor, just before one is opened.
func (o *Output) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := len(o.reserve); n > 0 {
		unix.Close(o.reserve[n-1])
		o.reserve = o.reserve[:n-1]
	}
}

// Abandon cancels the write: a temporary file is removed before Abandon
// returns, and nothing is renamed or written to the destination after it.
// A write through a device, FIFO or descriptor that has already begun runs
// to its end.
func (o *Output) Abandon() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.abandoned.Store(true)
	if o.pending != "" {
		os.Remove(o.pending)
		o.pending = ""
	}
}

// kind is what a write does at a path.
type kind int

const (
	toStdout  kind = iota // "-"
	toFD                  // one of this process's descriptors
	toNew                 // nothing there: create a file
	toFile                // a regular file: replace it, or write it in place
	toThrough             // a device, FIFO or socket: write through it
)

// plan is what is at a path, found by following its symlinks.
type plan struct {
	kind  kind
	fd    int         // toFD
	final string      // where the symlinks lead
	fi    fs.FileInfo // what is there; nil for toNew
}

// maxHops is the kernel's limit on symlinks in one lookup (MAXSYMLINKS).
const maxHops = 40

func (o *Output) plan() (plan, error) { return planFor(o.path, o.opts) }

func planFor(path string, opts Options) (plan, error) {
	if path == Stdout {
		return plan{kind: toStdout}, nil
	}
	if path == "" {
		return plan{}, syscall.ENOENT
	}
	p := path
	for range maxHops {
		if fd, ok := selfFD(p); ok {
			return plan{kind: toFD, fd: fd, final: p}, nil
		}
		fi, err := os.Lstat(p)
		missing := errors.Is(err, fs.ErrNotExist)
		if err != nil && !missing {
			return plan{}, err
		}
		// Only now that the kernel has walked the same path (and applied
		// its own rules to the symlinks on the way).
		p = physical(p)
		if missing {
			if strings.HasSuffix(p, "/") { // as open(2) with O_CREAT
				return plan{}, syscall.EISDIR
			}
			return plan{kind: toNew, final: p}, nil
		}
		if err := checkSticky(p, fi, opts); err != nil {
			return plan{}, err
		}
		switch mode := fi.Mode(); {
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return plan{}, err
			}
			if !filepath.IsAbs(target) {
				// Not cleaned: a ".." after a symlinked directory in the
				// target climbs from where that symlink leads.
				target = filepath.Dir(p) + "/" + target
			}
			p = target
		case mode.IsDir():
			return plan{}, syscall.EISDIR
		case mode.IsRegular():
			return plan{kind: toFile, final: p, fi: fi}, nil
		default:
			return plan{kind: toThrough, final: p, fi: fi}, nil
		}
	}
	return plan{}, syscall.ELOOP
}

// physical returns path with its directory as the kernel finds it:
// symlinks resolved before "..", where filepath.Dir would drop a ".." with
// the symlink before it. The temporary file must go in that directory, the
// one the rename lands in.
func physical(path string) string {
	dir, base := ".", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir, base = path[:i+1], path[i+1:]
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return path
	}
	if base == "" {
		return real + "/"
	}
	return filepath.Join(real, base)
}

// selfFD reports whether path names one of this process's descriptors.
// The names are recognised as they are spelled, before anything is looked
// up: /dev/stdout must mean this process's stdout even where /dev lacks it.
func selfFD(path string) (int, bool) {
	p, err := filepath.Abs(path)
	if err != nil {
		return 0, false
	}
	switch p {
	case "/dev/stdin":
		return 0, true
	case "/dev/stdout":
		return 1, true
	case "/dev/stderr":
		return 2, true
	}
	for _, dir := range []string{"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/", "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/"} {
		rest, ok := strings.CutPrefix(p, dir)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil {
			return n, true
		}
	}
	return 0, false
}

// checkSticky refuses what belongs to another user in a world-writable
// sticky directory: there, anyone may have put a symlink, FIFO or file at a
// name another user (root) is about to write.
func checkSticky(path string, fi fs.FileInfo, opts Options) error {
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	ds := di.Sys().(*syscall.Stat_t)
	if ds.Mode&(syscall.S_ISVTX|syscall.S_IWOTH) != syscall.S_ISVTX|syscall.S_IWOTH {
		return nil
	}
	uid := fi.Sys().(*syscall.Stat_t).Uid
	if uid == uint32(os.Geteuid()) || uid == ds.Uid || opts.Owner != nil && uid == uint32(opts.Owner.UID) {
		return nil
	}
	what := "file"
	if fi.Mode()&fs.ModeSymlink != 0 {
		what = "symlink"
	}
	return fmt.Errorf("%w: %s %s belongs to uid %d in the world-writable sticky directory %s", syscall.EACCES, what, path, uid, dir)
}

// Check reports whether path can be written, without side effects on what
// is there: see the package comment.
func Check(path string, opts Options) error {
	if err := check(path, opts); err != nil {
		return &Error{Path: path, Err: bare(err)}
	}
	return nil
}

// CheckDir reports whether a new file can be created in dir, by creating
// and removing one.
func CheckDir(dir string) error {
	if err := probeDir(dir); err != nil {
		return &Error{Path: dir, InDir: true, Err: bare(err)}
	}
	return nil
}

func check(path string, opts Options) error {
	pl, err := planFor(path, opts)
	if err != nil {
		return err
	}
	switch pl.kind {
	case toStdout:
		if f, ok := opts.stdout().(*os.File); ok {
			fd, err := fdOf(f)
			if err != nil {
				return err
			}
			return checkFD(fd)
		}
		return nil
	case toFD:
		return checkFD(pl.fd)
	case toNew:
		return probeDir(filepath.Dir(pl.final))
	}
	// A regular file, replaced or written in place, must be one the user
	// could write with `>`: replacing a read-only file would get round its
	// permission. A device or FIFO is not opened here, a socket not
	// connected to.
	return writable(pl.final)
}

// writable asks the kernel whether the effective user may write path.
func writable(path string) error {
	return unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS)
}

// checkFD reports whether fd is open for writing.
func checkFD(fd int) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if fl&unix.O_ACCMODE == unix.O_RDONLY {
		return fmt.Errorf("%w: descriptor %d is open only for reading", syscall.EBADF, fd)
	}
	return nil
}

// fdOf returns f's descriptor without putting it in blocking mode, as
// f.Fd would.
func fdOf(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil {
		return 0, err
	}
	return fd, nil
}

// probeDir creates and removes a file in dir.
func probeDir(dir string) error {
	f, name, err := createTemp(dir, ".pyprof-*.tmp", 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(name)
}

// createTemp creates a new file in dir, its name pattern with the "*"
// replaced by a random number, with perm less the umask.
func createTemp(dir, pattern string, perm os.FileMode) (*os.File, string, error) {
	prefix, suffix, _ := strings.Cut(pattern, "*")
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)+suffix)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", syscall.EEXIST
}

// bare strips the path from an error about a file this package chose (a
// temporary file's name means nothing to the user) or one the message
// already names.
func bare(err error) error {
	switch e := err.(type) {
	case *fs.PathError:
		return e.Err
	case *os.LinkError:
		return e.Err
	case *os.SyscallError:
		return e.Err
	}
	return err
}

// Write renders the output with render and writes it to the path, as the
// package comment describes. render is called at most once and must return
// the errors of its writer. An error is an *Error naming the path, or
// ErrAbandoned.
func (o *Output) Write(render func(io.Writer) error) error {
	err := o.write(render)
	if err == nil || errors.Is(err, ErrAbandoned) {
		return err
	}
	return &Error{Path: o.path, Err: bare(err)}
}

func (o *Output) write(render func(io.Writer) error) error {
	if o.abandoned.Load() {
		return ErrAbandoned
	}
	pl, err := o.plan()
	if err != nil {
		return err
	}
	switch pl.kind {
	case toStdout:
		w := o.opts.stdout()
		if f, ok := w.(*os.File); ok {
			// Through a duplicate: a broken pipe on fd 1 itself would
			// kill the process with SIGPIPE, where the profile can
			// still be saved elsewhere.
			fd, err := fdOf(f)
			if err != nil {
				return err
			}
			return o.throughFD(fd, render)
		}
		return o.buffered(render, func(b []byte) error {
			_, err := w.Write(b)
			return err
		})
	case toFD:
		return o.throughFD(pl.fd, render)
	case toNew:
		return o.replace(pl.final, nil, render)
	case toFile:
		if nlink(pl.fi) > 1 {
			return o.inPlace(pl.final, render)
		}
		err := o.replace(pl.final, pl.fi, render)
		if errors.Is(err, errCannotReplace) {
			return o.inPlace(pl.final, render)
		}
		return err
	}
	return o.through(pl, render)
}

func nlink(fi fs.FileInfo) uint64 { return uint64(fi.Sys().(*syscall.Stat_t).Nlink) }

// errCannotReplace means a regular file cannot be replaced as it is
// (its directory takes no new file, or its owner cannot be kept).
var errCannotReplace = errors.New("cannot replace")

// replace writes a temporary file in final's directory and renames it to
// final. old is what is there, whose mode and owner the new file keeps.
func (o *Output) replace(final string, old fs.FileInfo, render func(io.Writer) error) error {
	perm := os.FileMode(0o666) // less the umask: a new file, as `>` creates it
	if old != nil {
		perm = 0o600 // until it has the old file's owner and mode
	}
	o.release()
	f, tmp, err := o.createPending(filepath.Dir(final), ".pyprof-*.tmp", perm)
	if err != nil {
		if old != nil && !errors.Is(err, ErrAbandoned) {
			return fmt.Errorf("%w: %w", errCannotReplace, err)
		}
		return err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			o.drop(tmp)
		}
	}()
	if old != nil {
		st := old.Sys().(*syscall.Stat_t)
		if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
			// Only root may give a file away; a user may keep it his
			// if he is its owner and in its group.
			return fmt.Errorf("%w: %w", errCannotReplace, err)
		}
		if err := f.Chmod(old.Mode().Perm()); err != nil {
			return err
		}
	} else if ow := o.opts.Owner; ow != nil {
		if err := f.Chown(ow.UID, ow.GID); err != nil {
			return err
		}
	}
	if err := o.render(f, render); err != nil {
		return err
	}
	// Durable before it replaces the old file: otherwise a crash can
	// leave an empty file where a complete one was.
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	done = true
	return o.commit(tmp, func() error { return os.Rename(tmp, final) })
}

// inPlace truncates final and writes it: the only way to keep a file's
// other hard links, or to write a file whose directory is read-only.
func (o *Output) inPlace(final string, render func(io.Writer) error) error {
	return o.buffered(render, func(b []byte) error {
		o.release()
		f, err := os.OpenFile(final, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		return writeClose(f, b)
	})
}

// through writes into a device or FIFO, or a socket it connects to.
func (o *Output) through(pl plan, render func(io.Writer) error) error {
	return o.buffered(render, func(b []byte) error {
		o.release()
		if pl.fi.Mode()&fs.ModeSocket != 0 {
			return writeSocket(pl.final, b)
		}
		// Blocks, for a FIFO, until a reader opens it, as `>` does.
		f, err := os.OpenFile(pl.final, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NOCTTY, 0)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if fi.Mode().Type() != pl.fi.Mode().Type() {
			// Replaced since it was looked at: writing a regular file
			// without truncating it would leave its old tail.
			f.Close()
			return fmt.Errorf("%s changed while it was being written", pl.final)
		}
		return writeClose(f, b)
	})
}

// throughFD writes through a duplicate of one of this process's
// descriptors: the write lands at its offset, as the process's own writes
// to it would.
func (o *Output) throughFD(fd int, render func(io.Writer) error) error {
	return o.buffered(render, func(b []byte) error {
		o.release()
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return writeClose(os.NewFile(uintptr(dup), "fd "+strconv.Itoa(fd)), b)
	})
}

func writeSocket(path string, b []byte) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return err
	}
	return writeClose(os.NewFile(uintptr(fd), path), b)
}

func writeClose(f *os.File, b []byte) error {
	_, err := f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// buffered renders into memory, then, unless abandoned, hands the result
// to write: a destination that cannot be replaced is touched only once
// the output is complete.
func (o *Output) buffered(render func(io.Writer) error, write func([]byte) error) error {
	var buf bytes.Buffer
	if err := o.render(&buf, render); err != nil {
		return err
	}
	if o.abandoned.Load() {
		return ErrAbandoned
	}
	return write(buf.Bytes())
}

// render runs render on w, stopping it at its next write once abandoned.
// The first error of w is the error, rather than how render wraps it.
func (o *Output) render(w io.Writer, render func(io.Writer) error) error {
	aw := &abandonable{w: w, o: o}
	err := render(aw)
	switch {
	case aw.err != nil:
		return aw.err
	case err != nil:
		return err
	case o.abandoned.Load():
		return ErrAbandoned
	}
	return nil
}

type abandonable struct {
	w   io.Writer
	o   *Output
	err error // the first error
}

func (a *abandonable) Write(p []byte) (int, error) {
	if a.err == nil && a.o.abandoned.Load() {
		a.err = ErrAbandoned
	}
	if a.err != nil {
		return 0, a.err
	}
	n, err := a.w.Write(p)
	if err != nil {
		a.err = bare(err)
	}
	return n, a.err
}

// createPending creates a file that Abandon will remove, unless the output
// is abandoned already.
func (o *Output) createPending(dir, pattern string, perm os.FileMode) (*os.File, string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.abandoned.Load() {
		return nil, "", ErrAbandoned
	}
	f, name, err := createTemp(dir, pattern, perm)
	if err != nil {
		return nil, "", err
	}
	o.pending = name
	return f, name, nil
}

// commit completes the pending file name with fn, unless abandoned.
func (o *Output) commit(name string, fn func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.abandoned.Load() || o.pending != name {
		return ErrAbandoned
	}
	o.pending = ""
	if err := fn(); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// drop removes the pending file name, if Abandon has not.
func (o *Output) drop(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == name {
		os.Remove(name)
		o.pending = ""
	}
}

// SaveTemp writes the output to a new file in os.TempDir() instead, named
// after pattern as os.CreateTemp names files, and returns its path: where
// a profile goes when its destination failed. The file is readable by its
// owner only (Options.Owner if set): other users can list the directory.
// On an error, or if abandoned, no file is left.
func (o *Output) SaveTemp(pattern string, render func(io.Writer) error) (string, error) {
	o.release()
	dir := os.TempDir()
	f, name, err := o.createPending(dir, pattern, 0o600)
	if err != nil {
		if errors.Is(err, ErrAbandoned) {
			return "", err
		}
		return "", fmt.Errorf("create a file in %s: %w", dir, bare(err))
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			o.drop(name)
		}
	}()
	if ow := o.opts.Owner; ow != nil {
		if err := f.Chown(ow.UID, ow.GID); err != nil {
			return "", fmt.Errorf("chown %s: %w", name, bare(err))
		}
	}
	if err := o.render(f, render); err != nil {
		if errors.Is(err, ErrAbandoned) {
			return "", err
		}
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", name, bare(err))
	}
	done = true
	if err := o.commit(name, func() error { return nil }); err != nil {
		return "", err
	}
	return name, nil
}
