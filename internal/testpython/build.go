package testpython

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

var pyprofBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildPyprof builds ./cmd/pyprof once per test process and returns the
// path of the binary. It is built with CGO_ENABLED=0 because that is how
// pyprof ships: tests must exercise the static binary.
func BuildPyprof(t testing.TB) string {
	t.Helper()
	pyprofBuild.once.Do(func() {
		pyprofBuild.path, pyprofBuild.err = buildCommand("./cmd/pyprof")
	})
	if pyprofBuild.err != nil {
		t.Fatalf("build pyprof: %v", pyprofBuild.err)
	}
	return pyprofBuild.path
}

// buildCommand builds the main package pkg, a path relative to the module
// root, into this test process's directory of binaries, under the
// package's base name.
func buildCommand(pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	// go test puts its own toolchain first on PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	// The binary outlives any one test, so no t.TempDir; instead each test
	// process owns a directory named after its pid and clears those of
	// processes that are gone.
	base := filepath.Join(os.TempDir(), "pyprof-testbin")
	removeStale(base)
	dir := filepath.Join(base, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command(gobin, "build", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

func removeStale(base string) {
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}
