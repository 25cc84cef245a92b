package benchproc

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKillTakesTheGroup: Kill ends the child's whole process group, a
// grandchild too, and returns once the child is reaped; a zombie hook has
// run with the child's pid by then.
func TestKillTakesTheGroup(t *testing.T) {
	g := New("benchproc-test")
	pidFile := t.TempDir() + "/grandchild"
	cmd := exec.Command("sh", "-c", "sleep 60 & echo $! > "+pidFile+"; wait")
	var hooked int
	c, err := g.SpawnThen(cmd, func(pid int) { hooked = pid })
	if err != nil {
		t.Fatal(err)
	}
	var grandchild int
	for deadline := time.Now().Add(10 * time.Second); grandchild == 0; {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			grandchild, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the grandchild did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.Exited(50 * time.Millisecond) {
		t.Fatal("the child exited by itself")
	}
	c.Kill()
	select {
	case <-c.Done():
	default:
		t.Fatal("Kill returned before the child was reaped")
	}
	if c.Err() == nil || hooked != c.Pid() {
		t.Errorf("Err %v, hook saw pid %d, want an error and %d", c.Err(), hooked, c.Pid())
	}
	for deadline := time.Now().Add(10 * time.Second); alive(grandchild); {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d outlived Kill", grandchild)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(g.pgids) != 0 {
		t.Errorf("%d groups still registered", len(g.pgids))
	}
}

// alive tells whether pid runs: a zombie does not (the grandchild is not
// ours to reap, and whoever is may not have yet).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
