package target

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
)

var recordSnapshots = flag.Bool("record-snapshots", false, "record pyspy/testdata/snapshots from live interpreters")

func stackKey(ts []pyspy.Thread) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%d %q gil=%v\n", t.ID, t.Name, t.OwnsGIL)
		for _, f := range t.Frames {
			fmt.Fprintf(&b, "  %s %s:%d\n", f.Name, f.Filename, f.Line)
		}
	}
	return b.String()
}

// TestScanFindsInterpreter checks the path for stripped binaries: with
// symbols ignored, scanning .PyRuntime, .data and .bss must find the same
// interpreter (and, from 3.7, _PyRuntime) as the symbols do, and read the
// same stacks.
func TestScanFindsInterpreter(t *testing.T) {
	for _, py := range testpython.For(t, testpython.DumpMinors...) {
		t.Run(py.Name, func(t *testing.T) {
			t.Parallel()
			tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion,generated")
			sym, err := Attach(tg.Pid, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer sym.Close()
			scan, err := Attach(tg.Pid, Options{NoSymbols: true})
			if err != nil {
				t.Fatal(err)
			}
			defer scan.Close()
			if sym.Located.String() != "symbol" || scan.Located.String() != "scan" {
				t.Errorf("located by %s and %s", sym.Located, scan.Located)
			}
			if a, b := sym.Reader.Interpreter(), scan.Reader.Interpreter(); a != b {
				t.Errorf("interpreter at %#x by symbol, %#x by scan", a, b)
			}
			if a, b := sym.Reader.Runtime(), scan.Reader.Runtime(); a != b {
				t.Errorf("_PyRuntime at %#x by symbol, %#x by scan", a, b)
			}
			s1, err := sym.Reader.Sample(pyspy.SampleOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s2, err := scan.Reader.Sample(pyspy.SampleOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := stackKey(s1), stackKey(s2); a != b {
				t.Errorf("stacks differ:\nsymbol:\n%s\nscan:\n%s", a, b)
			}
		})
	}
}

// TestRecordSnapshots writes the snapshots that pyspy's golden and fuzz
// tests replay. Run with -record-snapshots after a layout or decoder change
// that alters what a sample reads.
func TestRecordSnapshots(t *testing.T) {
	if !*recordSnapshots {
		t.Skip("run with -record-snapshots to record")
	}
	root, err := testpython.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pyspy", "testdata", "snapshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, py := range testpython.For(t, testpython.DumpMinors...) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "stacks.py", "--shapes", "recursion,methods,generated,locals,unicode,asyncio", "--recursion", "60")
			var rec *pyspy.Recorder
			p, err := Attach(tg.Pid, Options{NoReadahead: true, Wrap: func(m pyspy.Memory) pyspy.Memory {
				rec = pyspy.NewRecorder(m)
				return rec
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			paused, err := p.Proc.Pause()
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Reader.Sample(pyspy.SampleOptions{Locals: true})
			paused.Resume()
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := rec.Snapshot(p.Version, p.Config).Encode(&b); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, py.Name+".snap")
			if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", name, b.Len())
		})
	}
}
