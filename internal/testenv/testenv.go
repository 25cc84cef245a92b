// Package testenv decides what a test does when the machine lacks
// something it needs (an interpreter, a module, a browser): it is skipped,
// unless an environment variable says the machine must have it, and then
// it fails, so that CI, which sets PYPROF_REQUIRE_PYTHONS=all and
// PYPROF_REQUIRE_BROWSER=1, cannot pass by skipping.
//
// It imports nothing from this module, so that the tests of every package
// can use it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The variables that make a missing requirement fail a test.
const (
	// Pythons is "all", or a list such as "3.6,3.11,system"; see
	// testpython.For for what each entry asks of it.
	Pythons = "PYPROF_REQUIRE_PYTHONS"
	// Browser is "1" where Chromium must be installed.
	Browser = "PYPROF_REQUIRE_BROWSER"
)

// Required reports whether the variable env requires item: its value is
// "all" or "1", or a comma-separated list that names item. An empty item,
// for a test that needs whatever the variable governs, is required by any
// value.
func Required(env, item string) bool {
	val := strings.TrimSpace(os.Getenv(env))
	switch {
	case val == "":
		return false
	case val == "all" || val == "1" || item == "":
		return true
	}
	for _, tok := range strings.Split(val, ",") {
		if strings.TrimSpace(tok) == item {
			return true
		}
	}
	return false
}

// SkipOrFail ends a test that lacks item: it fails if env requires item
// (see Required) and is skipped otherwise, saying how to make it fail.
func SkipOrFail(t testing.TB, env, item, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required(env, item) {
		t.Fatalf("%s, but %s=%s requires it", msg, env, os.Getenv(env))
	}
	t.Skipf("%s (set %s=all to fail instead)", msg, env)
}

// Stop ends a command a test started as a service is ended: SIGTERM, then
// SIGKILL if it has not exited after grace; it returns once it has.
func Stop(cmd *exec.Cmd, grace time.Duration) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
	}
}
