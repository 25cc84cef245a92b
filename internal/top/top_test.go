package top

import (
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/sampler"
	"github.com/pyprof/pyprof/pyspy"
)

var (
	fnMain = &pyspy.Function{Name: "main", Filename: "app.py", FirstLine: 1}
	fnRec  = &pyspy.Function{Name: "rec", Filename: "app.py", FirstLine: 10}
	fnLeaf = &pyspy.Function{Name: "leaf", Filename: "lib.py", FirstLine: 20}
	// Another function named leaf in the same file, defined elsewhere.
	fnLeaf2 = &pyspy.Function{Name: "leaf", Filename: "lib.py", FirstLine: 40}
)

// stack builds frames innermost first from (function, line) pairs given
// root first, as one reads a traceback.
func stack(fl ...any) []pyspy.Frame {
	var fs []pyspy.Frame
	for i := 0; i < len(fl); i += 2 {
		fs = append([]pyspy.Frame{{Function: fl[i].(*pyspy.Function), Line: fl[i+1].(int)}}, fs...)
	}
	return fs
}

func thread(active, gil bool, frames []pyspy.Frame) sampler.Thread {
	return sampler.Thread{Active: active, OwnsGIL: gil, Frames: frames}
}

type want struct {
	fn             string
	line           int
	ownPct, totPct float64
	own, total     time.Duration
}

func TestRows(t *testing.T) {
	ms := time.Millisecond
	recursive := stack(fnMain, 2, fnRec, 11, fnRec, 12, fnRec, 12, fnLeaf, 21)
	shallow := stack(fnMain, 3, fnLeaf2, 41)
	tests := []struct {
		name    string
		idle    bool
		gilOnly bool
		lines   bool
		by      Sort
		samples [][]sampler.Thread
		want    []want
	}{{
		name: "recursion counts once in total",
		samples: [][]sampler.Thread{
			{thread(true, true, recursive)},
			{thread(true, true, recursive)},
			{thread(true, true, shallow)},
			{thread(true, true, stack(fnMain, 4))},
		},
		by: ByTotal,
		want: []want{
			{"main", 1, 25, 100, 10 * ms, 40 * ms},
			{"leaf", 20, 50, 50, 20 * ms, 20 * ms},
			{"rec", 10, 0, 50, 0, 20 * ms},
			{"leaf", 40, 25, 25, 10 * ms, 10 * ms},
		},
	}, {
		name:  "by line",
		lines: true,
		samples: [][]sampler.Thread{
			{thread(true, true, recursive)},
		},
		by: ByOwn,
		want: []want{
			{"leaf", 21, 100, 100, 10 * ms, 10 * ms},
			{"main", 2, 0, 100, 0, 10 * ms},
			{"rec", 11, 0, 100, 0, 10 * ms},
			{"rec", 12, 0, 100, 0, 10 * ms},
		},
	}, {
		name: "idle threads left out by default",
		samples: [][]sampler.Thread{
			{thread(true, true, shallow), thread(false, false, stack(fnMain, 5, fnRec, 11))},
		},
		by: ByOwn,
		want: []want{
			{"leaf", 40, 100, 100, 10 * ms, 10 * ms},
			{"main", 1, 0, 100, 0, 10 * ms},
		},
	}, {
		name: "idle threads kept with Idle",
		idle: true,
		samples: [][]sampler.Thread{
			{thread(true, true, shallow), thread(false, false, stack(fnMain, 5, fnRec, 11))},
		},
		by: ByTotal,
		want: []want{
			{"main", 1, 0, 100, 0, 20 * ms},
			{"leaf", 40, 50, 50, 10 * ms, 10 * ms},
			{"rec", 10, 50, 50, 10 * ms, 10 * ms},
		},
	}, {
		name:    "only the GIL holder",
		gilOnly: true,
		samples: [][]sampler.Thread{
			{thread(true, false, shallow), thread(true, true, stack(fnMain, 5, fnRec, 11))},
		},
		by: ByOwnTime,
		want: []want{
			{"rec", 10, 100, 100, 10 * ms, 10 * ms},
			{"main", 1, 0, 100, 0, 10 * ms},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStats(10 * ms)
			s.Idle, s.GILOnly = tt.idle, tt.gilOnly
			for _, threads := range tt.samples {
				s.Add(sampler.Sample{Pid: 1, Threads: threads})
			}
			rows := s.Rows(tt.by, tt.lines)
			if len(rows) != len(tt.want) {
				t.Fatalf("got %d rows, want %d: %+v", len(rows), len(tt.want), rows)
			}
			for i, w := range tt.want {
				r := rows[i]
				got := want{r.Function, r.Line, r.OwnPct, r.TotalPct, r.OwnTime, r.TotalTime}
				if got != w {
					t.Errorf("row %d = %+v, want %+v", i, got, w)
				}
			}
		})
	}
}

// TestWindows checks that the percentages cover the last window only while
// the times add up, and that Reset clears both.
func TestWindows(t *testing.T) {
	s := NewStats(10 * time.Millisecond)
	a := stack(fnMain, 2, fnRec, 11)
	b := stack(fnMain, 3, fnLeaf, 21)
	for range 3 {
		s.Add(sampler.Sample{Pid: 1, Threads: []sampler.Thread{thread(true, true, a)}})
	}
	s.EndWindow()
	s.Add(sampler.Sample{Pid: 1, Threads: []sampler.Thread{thread(true, true, b)}})
	rows := s.Rows(ByOwn, false)
	if rows[0].Function != "leaf" || rows[0].OwnPct != 100 || rows[0].OwnTime != 10*time.Millisecond {
		t.Errorf("after a window, first row %+v, want leaf at 100%% with 10ms", rows[0])
	}
	if r := find(rows, "rec"); r == nil || r.OwnPct != 0 || r.OwnTime != 30*time.Millisecond {
		t.Errorf("rec after its window = %+v, want 0%% and 30ms", r)
	}
	if r := find(rows, "main"); r == nil || r.TotalTime != 40*time.Millisecond || r.TotalPct != 100 {
		t.Errorf("main = %+v, want 100%% and 40ms total", r)
	}
	s.Reset()
	if rows := s.Rows(ByOwn, false); len(rows) != 0 {
		t.Errorf("rows after Reset: %+v", rows)
	}
}

func find(rows []Row, fn string) *Row {
	for i := range rows {
		if rows[i].Function == fn {
			return &rows[i]
		}
	}
	return nil
}

func TestRender(t *testing.T) {
	s := NewStats(10 * time.Millisecond)
	deep := stack(fnMain, 2, fnRec, 11, fnLeaf, 21)
	for range 4 {
		s.Add(sampler.Sample{Pid: 7, Cmdline: "gunicorn: worker", Threads: []sampler.Thread{thread(true, true, deep), thread(false, false, stack(fnMain, 9))}})
	}
	s.Add(sampler.Sample{Pid: 8, Cmdline: "gunicorn: worker", Errors: 1})
	s.SetThreads(3)
	t0 := time.Now()
	s.SetProcess(7, "gunicorn: worker", 100, 50<<20, t0)
	s.SetProcess(7, "gunicorn: worker", 150, 60<<20, t0.Add(time.Second))

	lines := s.Render(View{Title: "gunicorn", Python: "3.11.2", Procs: true})
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"pyprof top — gunicorn — Python 3.11.2",
		"Samples: 4   Errors: 16.7%   GIL: 80.0%   Active: 50.0%   Threads: 3   Processes: 2",
		"      7   50.0     60.0M        4  gunicorn: worker",
		"      8    0.0        0K        0  gunicorn: worker",
		"  ▼%Own   %Total   OwnTime  TotalTime  Function (file:line)   (sort: %Own)",
		"100.00%  100.00%     0.04s      0.04s  leaf (lib.py:20)",
		"  0.00%  100.00%     0.00s      0.04s  main (app.py:1)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}

	// Cut to the terminal: no line wider than 30 columns, no more
	// lines than 8.
	lines = s.Render(View{Title: "gunicorn", Python: "3.11.2", Procs: true, Width: 30, Height: 8, Lines: true, Sort: ByTotal})
	if len(lines) > 8 {
		t.Errorf("%d lines for a height of 8", len(lines))
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 30 {
			t.Errorf("line of %d runes for a width of 30: %q", n, l)
		}
	}
	if !strings.Contains(strings.Join(lines, "\n"), "▼%Total") {
		t.Errorf("no %%Total sort mark:\n%s", strings.Join(lines, "\n"))
	}
}

// TestRenderFilenames: library files are shown shortened, as dump shows
// them, so that the line number fits; FullFilenames keeps them whole.
func TestRenderFilenames(t *testing.T) {
	sync := &pyspy.Function{Name: "SyncWorker.run", Filename: "/usr/lib/python3/dist-packages/gunicorn/workers/sync.py", FirstLine: 120}
	sock := &pyspy.Function{Name: "socket.accept", Filename: "/usr/lib/python3.11/socket.py", FirstLine: 290}
	app := &pyspy.Function{Name: "handle", Filename: "/srv/app/webapp.py", FirstLine: 10}
	s := NewStats(10 * time.Millisecond)
	s.Add(sampler.Sample{Pid: 7, Threads: []sampler.Thread{thread(true, true, stack(sync, 125, app, 12, sock, 294))}})
	for _, tc := range []struct {
		full bool
		want []string
	}{
		{false, []string{"SyncWorker.run (gunicorn/workers/sync.py:125)", "socket.accept (socket.py:294)", "handle (/srv/app/webapp.py:12)"}},
		{true, []string{"SyncWorker.run (/usr/lib/python3/dist-packages/gunicorn/workers/sync.py:125)", "socket.accept (/usr/lib/python3.11/socket.py:294)", "handle (/srv/app/webapp.py:12)"}},
	} {
		text := strings.Join(s.Render(View{Lines: true, FullFilenames: tc.full}), "\n")
		for _, want := range tc.want {
			if !strings.Contains(text, want+"\n") && !strings.HasSuffix(text, want) {
				t.Errorf("full names %v: table lacks %q:\n%s", tc.full, want, text)
			}
		}
	}
}

func TestParseSort(t *testing.T) {
	for i, name := range []string{"own", "total", "owntime", "totaltime"} {
		if got, ok := ParseSort(name); !ok || got != Sort(i) {
			t.Errorf("ParseSort(%q) = %v, %v", name, got, ok)
		}
	}
	if _, ok := ParseSort("cpu"); ok {
		t.Error("ParseSort accepted cpu")
	}
}
