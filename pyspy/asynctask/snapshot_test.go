package asynctask_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/target"
	"github.com/pyprof/pyprof/internal/testpython"
	"github.com/pyprof/pyprof/pyspy"
	"github.com/pyprof/pyprof/pyspy/asynctask"
	"github.com/pyprof/pyprof/pyspy/mem"
	"github.com/pyprof/pyprof/pyspy/pyobj"
	"github.com/pyprof/pyprof/pyversions"
)

var record = flag.Bool("record", false, "record testdata/*.snap from tasks.py on live interpreters")

// snapshotMinors are recorded: frame objects (3.10), 3.11–3.13's
// interpreter frames read from the registries, and 3.14's task lists.
var snapshotMinors = []string{"3.10", "3.12", "3.14"}

// golden is what a snapshot's tasks decode to, beside the snapshot.
type golden struct {
	Debug *asynctask.DebugOffsets `json:"debug,omitempty"`
	Tasks []testpython.ViewTask   `json:"tasks"`
}

func viewOf(tasks []asynctask.Task) []testpython.ViewTask {
	out := []testpython.ViewTask{}
	for _, tk := range tasks {
		v := testpython.ViewTask{ID: tk.Addr, Name: tk.Name, Running: tk.Running, Awaiting: tk.Awaiting}
		for _, f := range tk.Frames {
			v.Frames = append(v.Frames, testpython.ExpectFrame{Function: f.Name, Filename: f.Filename, Line: f.Line})
		}
		out = append(out, v)
	}
	return out
}

// TestRecordSnapshots writes testdata/*.snap and their goldens, which
// TestSnapshots and FuzzTasks replay. Run with -record.
func TestRecordSnapshots(t *testing.T) {
	if !*record {
		t.Skip("run with -record to record")
	}
	for _, py := range testpython.OnePerMinor(testpython.For(t, snapshotMinors...)) {
		t.Run(py.Name, func(t *testing.T) {
			tg := testpython.Start(t, py, "tasks.py")
			var rec *pyspy.Recorder
			p, err := target.Attach(tg.Pid, target.Options{NoReadahead: true, Wrap: func(m pyspy.Memory) pyspy.Memory {
				rec = pyspy.NewRecorder(m)
				return rec
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var g golden
			if p.Version.AtLeast(3, 14) {
				if g.Debug, err = p.AsyncioDebugOffsets(); err != nil {
					t.Fatal(err)
				}
			}
			paused, err := p.Proc.Pause()
			if err != nil {
				t.Fatal(err)
			}
			// A reader of its own, as the replay makes: the attached
			// one remembers stacks it read before the pause.
			r, err := pyspy.New(rec, p.Config)
			if err != nil {
				paused.Resume()
				t.Fatal(err)
			}
			tasks, err := readTasks(r, rec, p.Config.Facts, g.Debug)
			paused.Resume()
			if err != nil {
				t.Fatal(err)
			}
			g.Tasks = viewOf(tasks)
			var b bytes.Buffer
			if err := rec.Snapshot(p.Version, p.Config).Encode(&b); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join("testdata", py.Name)
			gj, _ := json.MarshalIndent(g, "", "  ")
			if err := os.WriteFile(name+".snap", b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name+".json", append(gj, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s.snap (%d bytes), %d tasks", name, b.Len(), len(tasks))
		})
	}
}

// readTasks samples the threads with r and reads the tasks from m, times
// times with one reader (the last read's tasks are returned): later reads
// go through what the first remembered.
func readTasks(r *pyspy.Reader, m mem.Memory, f *pyobj.Facts, d *asynctask.DebugOffsets, times ...int) ([]asynctask.Task, error) {
	threads, err := r.Sample(pyspy.SampleOptions{NoNames: true})
	if err != nil {
		return nil, err
	}
	var ths []asynctask.Thread
	for _, th := range threads {
		ths = append(ths, asynctask.Thread{Addr: th.Addr, ID: th.ID, Frames: th.Frames})
	}
	ar, err := asynctask.New(m, asynctask.Config{Facts: f, Interp: r.Interpreter(), Debug: d, NoReadahead: true})
	if err != nil {
		return nil, err
	}
	n := 1
	if len(times) > 0 {
		n = times[0]
	}
	var tasks []asynctask.Task
	for range n {
		if tasks, err = ar.Tasks(ths, asynctask.ReadOptions{}); err != nil {
			return tasks, err
		}
	}
	return tasks, err
}

type snap struct {
	name string
	s    *pyspy.Snapshot
	g    golden
}

var snaps struct {
	once sync.Once
	all  []snap
}

func loadSnapshots(t testing.TB) []snap {
	snaps.once.Do(func() {
		files, _ := filepath.Glob("testdata/*.snap")
		sort.Strings(files)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			s, err := pyspy.DecodeSnapshot(data)
			if err != nil {
				continue
			}
			gj, err := os.ReadFile(file[:len(file)-len(".snap")] + ".json")
			if err != nil {
				continue
			}
			var g golden
			if json.Unmarshal(gj, &g) != nil {
				continue
			}
			snaps.all = append(snaps.all, snap{filepath.Base(file), s, g})
		}
	})
	if len(snaps.all) == 0 {
		t.Fatal("no snapshots in testdata")
	}
	return snaps.all
}

// replay reads the tasks of a snapshot, with m as its memory.
func replay(s *pyspy.Snapshot, m mem.Memory, d *asynctask.DebugOffsets, times ...int) ([]asynctask.Task, error) {
	l, err := pyversions.LayoutFor(s.Version)
	if err != nil {
		return nil, err
	}
	cfg := s.Config
	cfg.Layout, cfg.Version, cfg.NoReadahead = l, s.Version, true
	cfg.Facts = pyobj.NewFacts(l, s.Version)
	r, err := pyspy.New(m, cfg)
	if err != nil {
		return nil, err
	}
	return readTasks(r, m, cfg.Facts, d, times...)
}

// TestSnapshots replays the recorded snapshots: the tasks decode as they
// did from the live process.
func TestSnapshots(t *testing.T) {
	for _, sn := range loadSnapshots(t) {
		t.Run(sn.name, func(t *testing.T) {
			// Twice: the second read goes through the first's memos.
			tasks, err := replay(sn.s, sn.s, sn.g.Debug, 2)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(viewOf(tasks))
			want, _ := json.Marshal(sn.g.Tasks)
			if !bytes.Equal(got, want) {
				t.Errorf("tasks differ from the golden:\ngot  %s\nwant %s", got, want)
			}
		})
	}
}

// overlay is a snapshot with some bytes replaced.
type overlay struct {
	base mem.Memory
	addr uint64
	data []byte
}

func (o *overlay) ReadAt(p []byte, off int64) (int, error) {
	addr, end := uint64(off), uint64(off)+uint64(len(p))
	oend := o.addr + uint64(len(o.data))
	if addr >= o.addr && end <= oend {
		return copy(p, o.data[addr-o.addr:]), nil
	}
	n, err := o.base.ReadAt(p, off)
	if addr < oend && end > o.addr {
		lo, hi := max(addr, o.addr), min(end, oend)
		copy(p[lo-addr:hi-addr], o.data[lo-o.addr:hi-o.addr])
	}
	return n, err
}

// FuzzTasks overlays corrupt bytes on a task (and what lies after it) in
// a recorded snapshot: reading the tasks must end, without a panic, in
// tasks or an error.
func FuzzTasks(f *testing.F) {
	all := loadSnapshots(f)
	for i := range all {
		f.Add(uint8(i), uint16(0), int16(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		f.Add(uint8(i), uint16(3), int16(16), []byte{0, 0, 0, 0, 0, 0, 0, 0})
	}
	f.Fuzz(func(t *testing.T, which uint8, task uint16, off int16, data []byte) {
		sn := all[int(which)%len(all)]
		if len(sn.g.Tasks) == 0 || len(data) > 4096 {
			return
		}
		at := sn.g.Tasks[int(task)%len(sn.g.Tasks)].ID + uint64(int64(off))
		m := &overlay{base: sn.s, addr: at, data: data}
		start := time.Now()
		replay(sn.s, m, sn.g.Debug, 2)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
	})
}

// TestCycles makes the first task of 3.14's thread list its own successor,
// and a coroutine await itself: each read ends with ErrCycle.
func TestCycles(t *testing.T) {
	for _, sn := range loadSnapshots(t) {
		if !sn.s.Version.AtLeast(3, 14) {
			continue
		}
		t.Run(sn.name, func(t *testing.T) {
			var task uint64
			for _, tk := range sn.g.Tasks {
				if !tk.Running && len(tk.Frames) > 1 {
					task = tk.ID
					break
				}
			}
			node := task + sn.g.Debug.TaskNode
			self := make([]byte, 8)
			putLE(self, node)
			_, err := replay(sn.s, &overlay{base: sn.s, addr: node, data: self}, sn.g.Debug)
			if !errors.Is(err, asynctask.ErrCycle) {
				t.Errorf("task list through itself: %v, want a cycle", err)
			}
			// The task's coroutine awaits itself: its frame's stack
			// pointer's top slot holds the coroutine.
			coro := word(t, sn.s, task+sn.g.Debug.TaskCoro)
			sp := word(t, sn.s, coro+72+64)
			putLE(self, coro)
			tasks, err := replay(sn.s, &overlay{base: sn.s, addr: sp - 8, data: self}, sn.g.Debug)
			found := false
			for _, tk := range tasks {
				if tk.Addr == task {
					found = true
					if !errors.Is(tk.Err, asynctask.ErrCycle) {
						t.Errorf("coroutine awaiting itself: %v, want a cycle", tk.Err)
					}
				}
			}
			if !found {
				t.Errorf("task %#x not read: %v", task, err)
			}
		})
	}
}

func putLE(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func word(t *testing.T, m mem.Memory, addr uint64) uint64 {
	b := make([]byte, 8)
	if _, err := m.ReadAt(b, int64(addr)); err != nil {
		t.Fatal(err)
	}
	return mem.LE64(b)
}
