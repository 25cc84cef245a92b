package proctree

import (
	"github.com/pyprof/pyprof/procmem"

	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fproc describes one process of a fixture /proc tree.
type fproc struct {
	pid, ppid int
	comm      string
	exe       string // link target; "" writes no link, as for a kernel thread
	argv      []string
	state     byte // 'S' when zero
	noKFlag   bool // leave PF_KTHREAD out of the stat flags of a kernel thread
}

// writeTree writes procs as a /proc tree under a temporary directory, in
// the formats the kernel uses, and returns an FS rooted there. The tree is
// written at test time rather than checked in because exe must be a
// symlink, and because each test reads best with its processes in view.
func writeTree(t testing.TB, procs []fproc) procmem.FS {
	t.Helper()
	root := t.TempDir()
	for _, p := range procs {
		writeProc(t, root, p)
	}
	// Entries that are not processes, as in the real /proc.
	for _, name := range []string{"self", "sys"} {
		if err := os.Mkdir(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return procmem.NewFS(root)
}

// writeProc writes one process directory under root, replacing any there.
func writeProc(t testing.TB, root string, p fproc) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(p.pid))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := p.state
	if state == 0 {
		state = 'S'
	}
	flags := 0x400100 // PF_RANDOMIZE | PF_FORKNOEXEC
	if len(p.argv) == 0 && (p.pid == 2 || p.ppid == 2) && !p.noKFlag {
		flags = 0x208040 // PF_KTHREAD | PF_NOFREEZE | PF_IDLE
	}
	// Fields 3 to 52, with starttime (22) derived from the pid so
	// that each process has its own.
	stat := fmt.Sprintf("%d (%s) %c %d %d %d 0 -1 %d 100 0 0 0 1 1 0 0 20 0 1 0 %d 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		p.pid, p.comm, state, p.ppid, p.pid, p.pid, flags, 1000+p.pid)
	var cmdline string
	if len(p.argv) > 0 {
		cmdline = strings.Join(p.argv, "\x00") + "\x00"
	}
	status := fmt.Sprintf("Name:\t%s\nState:\t%c\nTgid:\t%d\nPid:\t%d\nPPid:\t%d\n", p.comm, state, p.pid, p.pid, p.ppid)
	for name, content := range map[string]string{
		"stat":    stat,
		"comm":    p.comm + "\n",
		"cmdline": cmdline,
		"status":  status,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if p.exe != "" {
		if err := os.Symlink(p.exe, filepath.Join(dir, "exe")); err != nil {
			t.Fatal(err)
		}
	}
}

// Pids in the fixture trees.
const (
	pidInit   = 1
	pidSSHD   = 100
	pidBash   = 200
	pidSudo   = 300
	pidPyprof = 301
)

// host is what every fixture tree shares: init, kernel threads, and an ssh
// session in which `sudo pyprof record --pgrep PATTERN` runs, so that the
// pattern is in the command lines of pyprof and of its sudo.
func host(pattern string) []fproc {
	args := []string{"record", "--pgrep", pattern, "-o", pattern + ".svg"}
	return []fproc{
		{pid: pidInit, ppid: 0, comm: "systemd", exe: "/usr/lib/systemd/systemd", argv: []string{"/sbin/init", "splash"}},
		{pid: 2, ppid: 0, comm: "kthreadd"},
		{pid: 3, ppid: 2, comm: "kworker/0:0-events"},
		{pid: 4, ppid: 2, comm: "python", noKFlag: true}, // known only by its empty cmdline
		{pid: 5, ppid: 2, comm: "modprobe", exe: "/usr/bin/kmod", argv: []string{"/sbin/modprobe", "-q", "--", "net-pf-10"}}, // a usermode helper
		{pid: pidSSHD, ppid: pidInit, comm: "sshd", exe: "/usr/sbin/sshd", argv: []string{"sshd: alice [priv]"}},
		{pid: pidBash, ppid: pidSSHD, comm: "bash", exe: "/usr/bin/bash", argv: []string{"-bash"}},
		{pid: pidSudo, ppid: pidBash, comm: "sudo", exe: "/usr/bin/sudo", argv: append([]string{"sudo", "pyprof"}, args...)},
		{pid: pidPyprof, ppid: pidSudo, comm: "pyprof", exe: "/usr/local/bin/pyprof", argv: append([]string{"pyprof"}, args...)},
	}
}

// gunicornTree has a gunicorn master started from its console script, so
// its comm is "gunicorn" while its executable is python3.11, with three
// forked workers, a tail of its log, and an unreaped gunicorn.
func gunicornTree(pattern string) []fproc {
	py := "/usr/bin/python3.11"
	argv := []string{py, "/srv/venv/bin/gunicorn", "app:app", "-w", "3"}
	return append(host(pattern),
		fproc{pid: 400, ppid: pidInit, comm: "gunicorn", exe: py, argv: argv},
		fproc{pid: 401, ppid: 400, comm: "gunicorn", exe: py, argv: argv},
		fproc{pid: 402, ppid: 400, comm: "gunicorn", exe: py, argv: argv},
		fproc{pid: 403, ppid: 400, comm: "gunicorn", exe: py, argv: argv},
		fproc{pid: 500, ppid: pidBash, comm: "tail", exe: "/usr/bin/tail", argv: []string{"tail", "-f", "/var/log/gunicorn.log"}},
		fproc{pid: 600, ppid: pidInit, comm: "gunicorn", state: 'Z'},
	)
}
