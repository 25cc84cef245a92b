package pyspy_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/pyspy"
)

var update = flag.Bool("update", false, "rewrite golden files from the snapshots")

// render prints a sample in a stable text form for golden files.
func render(ts []pyspy.Thread, err error) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "thread %#x native=%d name=%q named=%v gil=%v truncated=%v\n", t.ID, t.NativeID, t.Name, t.HasName, t.OwnsGIL, t.Truncated)
		for _, f := range t.Frames {
			fmt.Fprintf(&b, "  %s (%s:%d) first=%d\n", f.Name, f.Filename, f.Line, f.FirstLine)
			for _, l := range f.Locals {
				fmt.Fprintf(&b, "    %s%s = %s\n", map[bool]string{true: "arg ", false: ""}[l.Argument], l.Name, l.Value)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	return b.String()
}

func snapshots(t *testing.T) []string {
	files, err := filepath.Glob("testdata/snapshots/*.snap")
	if err != nil || len(files) == 0 {
		t.Fatalf("no snapshots in testdata/snapshots: %v", err)
	}
	return files
}

// TestSnapshotGolden replays snapshots of real interpreters (recorded by
// internal/target's TestRecordSnapshots) and compares the sample with a
// golden file, so decoder changes are checked without live processes.
func TestSnapshotGolden(t *testing.T) {
	for _, file := range snapshots(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".snap")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := pyspy.DecodeSnapshot(data)
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := snap.Encode(&again); err != nil || !bytes.Equal(again.Bytes(), data) {
				t.Fatalf("snapshot does not round-trip: %v", err)
			}
			r, err := snap.Open()
			if err != nil {
				t.Fatal(err)
			}
			got := render(r.Sample(pyspy.SampleOptions{Locals: true}))
			golden := strings.TrimSuffix(file, ".snap") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				out := golden + ".got"
				os.WriteFile(out, []byte(got), 0o644)
				t.Errorf("sample differs from %s; new output in %s (diff them, then -update if right)", golden, out)
			}
		})
	}
}
