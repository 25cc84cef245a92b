package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestCheckedIn: the checked-in table is what layouts.txt generates, and
// generating twice gives the same bytes.
func TestCheckedIn(t *testing.T) {
	src, err := os.ReadFile("../../../pyspy/asynctask/layouts.txt")
	if err != nil {
		t.Fatal(err)
	}
	a, err := generate(src, "layouts.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := generate(src, "layouts.txt")
	if !bytes.Equal(a, b) {
		t.Error("two runs differ")
	}
	have, err := os.ReadFile("../../../pyspy/asynctask/layouts_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, have) {
		t.Error("pyspy/asynctask/layouts_gen.go is stale: run go generate ./pyspy/asynctask")
	}
}

// TestRejects: a row that is short, a minor listed twice or out of order,
// and an implausible offset are errors that name the line.
func TestRejects(t *testing.T) {
	row := func(minor, off string) string {
		return minor + " " + off + strings.Repeat(" 8", len(columns)-1) + "\n"
	}
	for _, tc := range []struct{ name, src, want string }{
		{"short", "3.7 16 24\n", "x:1: 3 fields"},
		{"twice", row("3.7", "16") + row("3.7", "16"), "x:2: python 3.7 listed twice"},
		{"order", row("3.8", "16") + "# c\n" + row("3.7", "16"), "x:3: python 3.7 listed twice or out of order"},
		{"minor", row("2.7", "16"), "x:1: bad minor"},
		{"offset", row("3.7", "-8"), "x:1: fut_loop: bad offset"},
		{"tss", row("3.7", "tss"), "x:1: fut_loop: bad offset"},
		{"empty", "# nothing\n", "no layouts"},
	} {
		_, err := generate([]byte(tc.src), "x")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
