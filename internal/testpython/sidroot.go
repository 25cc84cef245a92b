package testpython

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testenv"
)

// sidRootRun runs inside a mount namespace of its own, so that every mount
// dies with the target: it makes the sid root read-only (the cache is
// shared and must stay as .ci/sid-pythons left it), mounts /proc, the
// host's /dev and a private /tmp, copies the script to a tmpfs at /srv and
// replaces itself with the root's interpreter on it, chrooted: the
// target keeps the pid the test started. Arguments: root, interpreter in
// the root, script, script arguments.
const sidRootRun = `set -e
root=$1 py=$2 script=$3
shift 3
` + SidRootMounts + `cp "$script" "$root/srv/"
exec chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
	PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 "$py" "/srv/${script##*/}" "$@"
`

// SidRootMounts is the start of a shell script, run in a mount namespace
// of its own, that readies the sid root at $root to be chrooted into:
// read-only (the cache is shared and must stay as .ci/sid-pythons left
// it), with /proc, the host's /dev, a private /tmp and an empty tmpfs at
// /srv for what the test puts there.
const SidRootMounts = `mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 pyprof-tmp "$root/tmp"
mount -t tmpfs -o mode=0755 pyprof-srv "$root/srv"
`

// SidRootPython returns an Interpreter that runs scripts with the sid
// root's own python3 (3.14, with its gevent and greenlet) chrooted into
// the root (see .ci/sid-pythons), for Start. It skips the test when the
// root is missing, or root is needed and lacking, unless the run requires
// the sid builds.
func SidRootPython(t testing.TB) Interpreter {
	t.Helper()
	root := SidRoot()
	missing := ""
	switch {
	case root == "":
		missing = fmt.Sprintf("no sid root under %s (run .ci/sid-pythons)", SidCache())
	case os.Geteuid() != 0:
		missing = "chrooting into the sid root needs root"
	}
	unshare, err := exec.LookPath("unshare")
	if missing == "" && err != nil {
		missing = "no unshare (util-linux)"
	}
	if missing != "" {
		testenv.SkipOrFail(t, testenv.Pythons, "sid", "%s", missing)
	}
	matches, _ := filepath.Glob(filepath.Join(root, "usr", "bin", "python3.[0-9]*"))
	var py, minor string
	for _, m := range matches {
		base := filepath.Base(m)
		if v := strings.TrimPrefix(base, "python"); strings.Count(v, ".") == 1 && !strings.ContainsAny(v, "-m") {
			py, minor = "/usr/bin/"+base, v
		}
	}
	if py == "" {
		t.Fatalf("no python3.X in the sid root %s", root)
	}
	// The wrapper outlives the test that asked for it: subtests share it.
	wrapper := filepath.Join(os.TempDir(), "pyprof-sid-root-"+minor)
	script := fmt.Sprintf("#!/bin/sh\nexec %s --mount --propagation private /bin/sh -c '%s' sh %s %s \"$@\"\n",
		unshare, strings.ReplaceAll(sidRootRun, "'", `'\''`), root, py)
	if old, err := os.ReadFile(wrapper); err != nil || string(old) != script {
		tmp := fmt.Sprintf("%s.%d", wrapper, os.Getpid())
		if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, wrapper); err != nil {
			t.Fatal(err)
		}
	}
	var major, min int
	fmt.Sscanf(minor, "%d.%d", &major, &min)
	return Interpreter{Path: wrapper, Version: minor, Major: major, Minor: min, Name: "sid-root-" + minor, System: true, Sid: true}
}

// HasModules reports whether py can import every module named, so that a
// test can skip what an installation lacks.
func HasModules(py Interpreter, modules ...string) bool {
	dir, err := os.MkdirTemp("", "pyprof-modules")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	probe := filepath.Join(dir, "probe.py")
	if err := os.WriteFile(probe, []byte("import "+strings.Join(modules, ", ")+"\n"), 0o644); err != nil {
		return false
	}
	return exec.Command(py.Path, probe).Run() == nil
}
