package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pyprof/pyprof/internal/pyfile"
	"github.com/pyprof/pyprof/internal/testenv"
	"github.com/pyprof/pyprof/internal/testpython"
)

// greenletsJSON is dump --json's view of threads with greenlets, from the
// reader's side.
type greenletsJSON struct {
	Errors  []string `json:"errors"`
	Threads []struct {
		ThreadID  uint64                   `json:"thread_id"`
		Name      *string                  `json:"name"`
		Frames    []testpython.ExpectFrame `json:"frames"`
		Greenlets []struct {
			Address uint64                   `json:"address"`
			Name    *string                  `json:"name"`
			Running bool                     `json:"running"`
			Frames  []testpython.ExpectFrame `json:"frames"`
		} `json:"greenlets"`
	} `json:"threads"`
}

func dumpGreenlets(t *testing.T, pid int, args ...string) (*greenletsJSON, string) {
	t.Helper()
	out, errOut, code := runPyprof(t, append([]string{"dump", "--json", "-p", itoa(pid)}, args...)...)
	if code != 0 {
		t.Fatalf("dump --json: exit %d: %s", code, errOut)
	}
	var ds []greenletsJSON
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("bad json (%v):\n%s", err, out)
	}
	return &ds[0], out
}

// TestDumpGreenlets: dump --json lists, under the thread, every started
// and live greenlet of greenlets.py with the frames its own gr_frame
// chain gives, frame for frame, on Debian 12's 3.11 (greenlet 2.0.2) and
// the sid root's 3.14 (3.3.2), under gevent and eventlet; the running one
// (the hub) has the thread's frames. The text dump lists each; --locals
// renders their variables.
func TestDumpGreenlets(t *testing.T) {
	for _, py := range testpython.GreenletPythons(t) {
		for _, lib := range []string{"gevent", "eventlet"} {
			t.Run(py.Name+"/"+lib, func(t *testing.T) {
				tg, rep := testpython.StartGreenlets(t, py, lib)
				d, raw := dumpGreenlets(t, tg.Pid)
				if len(d.Errors) > 0 {
					t.Errorf("errors: %v", d.Errors)
				}
				if len(d.Threads) != 1 {
					t.Fatalf("%d threads:\n%s", len(d.Threads), raw)
				}
				th := d.Threads[0]
				got := map[uint64]int{}
				for i, g := range th.Greenlets {
					got[g.Address] = i
				}
				if len(th.Greenlets) != len(rep.Greenlets) {
					t.Errorf("%d greenlets, the target has %d", len(th.Greenlets), len(rep.Greenlets))
				}
				for _, want := range rep.Greenlets {
					i, ok := got[want.Address]
					if !ok {
						t.Errorf("%s greenlet %#x missing", want.Shape, want.Address)
						continue
					}
					g := th.Greenlets[i]
					if fmt.Sprint(strp(g.Name)) != fmt.Sprint(strp(want.Name)) {
						t.Errorf("%s greenlet: name %v, want %v", want.Shape, strp(g.Name), strp(want.Name))
					}
					if g.Running != (want.Shape == "hub") {
						t.Errorf("%s greenlet: running %v", want.Shape, g.Running)
					}
					diffGreenlet(t, want, g.Running, g.Frames, th.Frames)
				}

				out, errOut, code := runPyprof(t, "dump", "-p", itoa(tg.Pid))
				if code != 0 {
					t.Fatalf("dump: exit %d: %s", code, errOut)
				}
				for _, want := range rep.Greenlets {
					label := fmt.Sprintf("%#x", want.Address)
					if want.Name != nil {
						label = *want.Name
					}
					state := "parked"
					if want.Shape == "hub" {
						state = "running"
					}
					if !strings.Contains(out, fmt.Sprintf("    Greenlet %s (%s", label, state)) {
						t.Errorf("text dump lacks %s greenlet %s (%s):\n%s", want.Shape, label, state, out)
					}
				}

				d, _ = dumpGreenlets(t, tg.Pid, "--locals")
				locals := map[string]bool{}
				for _, g := range d.Threads[0].Greenlets {
					for _, f := range g.Frames {
						for _, l := range f.Locals {
							locals[f.Function+"."+l.Name+"="+l.Value] = true
						}
					}
				}
				for _, want := range []string{"raw_deep.n=0", "raw_deep.n=39", "make_closure.<locals>.closure_wait.label='c'"} {
					if !locals[want] {
						t.Errorf("--locals: no %s among %v", want, locals)
					}
				}
			})
		}
	}
}

// TestDumpGreenletsMonkeyPatched: under gevent's and eventlet's
// monkey-patching, the main thread is still "MainThread" in dump --json
// (gevent keys threading's threads by greenlet).
func TestDumpGreenletsMonkeyPatched(t *testing.T) {
	for _, py := range testpython.GreenletPythons(t) {
		for _, lib := range []string{"gevent", "eventlet"} {
			t.Run(py.Name+"/"+lib, func(t *testing.T) {
				tg, rep := testpython.StartGreenlets(t, py, lib, "--patch")
				d, raw := dumpGreenlets(t, tg.Pid)
				if len(d.Threads) != 1 {
					t.Fatalf("%d threads:\n%s", len(d.Threads), raw)
				}
				if name := d.Threads[0].Name; name == nil || *name != rep.MainThread.Name {
					t.Errorf("main thread named %v, want %q", strp(name), rep.MainThread.Name)
				}
				if len(d.Threads[0].Greenlets) != len(rep.Greenlets) {
					t.Errorf("%d greenlets, the target has %d", len(d.Threads[0].Greenlets), len(rep.Greenlets))
				}
				// record (and top, through the same reader) name the
				// thread too, with no greenlet read.
				out := filepath.Join(t.TempDir(), "p.txt")
				cmd := pyprofCmd(t, "record", "-p", itoa(tg.Pid), "--idle", "--threads", "-d", "1", "-f", "collapsed", "-o", out)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("record: %v\n%s", err, b)
				}
				data, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("thread %d: %s;", tg.Pid, rep.MainThread.Name)
				for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
					if !strings.HasPrefix(line, want) {
						t.Errorf("record: %q, want it under %q", line, want)
						break
					}
				}
			})
		}
	}
}

func strp(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// fakeGreenlet is a program that imports a greenlet of a release pyprof
// does not know (a module of that name and version, enough for the check).
const fakeGreenlet = `import json, os, platform, sys, threading, types
m = types.ModuleType("greenlet")
m.__version__ = "0.4.17"
sys.modules["greenlet"] = m
print("PYPROF-READY " + json.dumps({"pid": os.getpid(), "version": platform.python_version(),
    "executable": sys.executable, "threads": [{"thread_id": threading.get_ident(),
    "name": "MainThread", "shape": "main", "frames": []}]}), flush=True)
threading.Event().wait()
`

// TestDumpUnknownGreenlet: a greenlet release pyprof has no layout for is
// said, and no greenlet is read; the thread's own stack still is.
func TestDumpUnknownGreenlet(t *testing.T) {
	py := testpython.For(t, "3.11")[0]
	script := filepath.Join(t.TempDir(), "fakegreenlet.py")
	if err := os.WriteFile(script, []byte(fakeGreenlet), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := testpython.Start(t, py, script)
	d, raw := dumpGreenlets(t, tg.Pid)
	if len(d.Errors) != 1 || !strings.Contains(d.Errors[0], "greenlet 0.4.17 on python 3.11: layout unknown, greenlets not read") {
		t.Errorf("errors %q", d.Errors)
	}
	if len(d.Threads) != 1 || len(d.Threads[0].Frames) == 0 || len(d.Threads[0].Greenlets) != 0 {
		t.Errorf("threads:\n%s", raw)
	}
	// record --idle says so once, and records the thread as ever.
	out := filepath.Join(t.TempDir(), "p.txt")
	cmd := pyprofCmd(t, "record", "-p", itoa(tg.Pid), "--idle", "-d", "1", "-f", "collapsed", "-o", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("record: %v\n%s", err, b)
	}
	note := fmt.Sprintf("pyprof: process %d: greenlet 0.4.17 on python 3.11: layout unknown, greenlets not read", tg.Pid)
	if n := strings.Count(string(b), note); n != 1 {
		t.Errorf("record said %d times %q:\n%s", n, note, b)
	}
	if data, err := os.ReadFile(out); err != nil || !strings.Contains(string(data), "<module>") {
		t.Errorf("record wrote (%v):\n%s", err, data)
	}
}

// TestDumpGunicornGreenlets: with requests in flight in gunicorn's gevent
// and eventlet workers (Debian 12's 3.11, and the sid root's 3.14 for
// gevent: sid's gunicorn has no eventlet worker), dump --pgrep shows each request's greenlet, parked in
// the request's view function under its worker's thread.
func TestDumpGunicornGreenlets(t *testing.T) {
	type server struct {
		name  string
		start func(t *testing.T) *gunicorn
	}
	var servers []server
	for _, class := range []string{"gevent", "eventlet"} {
		servers = append(servers, server{"debian-3.11/" + class, func(t *testing.T) *gunicorn {
			needGunicorn(t)
			if !testpython.HasModules(testpython.Interpreter{Path: testpython.SystemPython}, class) {
				testenv.SkipOrFail(t, testenv.Pythons, "system", "%s has no %s", testpython.SystemPython, class)
			}
			return startGunicorn(t, class)
		}})
		if class == "eventlet" {
			// sid's gunicorn (23) ships no eventlet worker at all.
			continue
		}
		servers = append(servers, server{"sid-root/" + class, func(t *testing.T) *gunicorn {
			return startSidGunicorn(t, needSidRoot(t), class)
		}})
	}
	const inFlight = 6
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			g := s.start(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range inFlight {
				go func() {
					req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/wait", nil)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}()
			}
			workers := map[int]bool{}
			for _, w := range g.workers(t) {
				workers[w] = true
			}
			// The server's own address picks its master: other tests'
			// gunicorns may run on this machine. sid's gunicorn retitles
			// its processes, and is taken by pid and subprocesses.
			pick := []string{"--pgrep", strings.TrimPrefix(g.url, "http://")}
			if strings.HasPrefix(s.name, "sid") {
				pick = []string{"-p", itoa(g.cmd.Process.Pid), "-s"}
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				out, errOut, code := runPyprof(t, append([]string{"dump", "--json"}, pick...)...)
				if code != 0 {
					t.Fatalf("dump %v: exit %d: %s", pick, code, errOut)
				}
				var ds []struct {
					Pid int `json:"pid"`
					greenletsJSON
				}
				if err := json.Unmarshal([]byte(out), &ds); err != nil {
					t.Fatalf("bad json: %v", err)
				}
				waiting, errs := 0, []string{}
				for _, d := range ds {
					errs = append(errs, d.Errors...)
					for _, th := range d.Threads {
						for _, gl := range th.Greenlets {
							for _, f := range gl.Frames {
								if f.Function == "wait_request" && !gl.Running && workers[d.Pid] {
									waiting++
								}
							}
						}
					}
				}
				for _, e := range errs {
					// A worker paused in the middle of a collection
					// is said so, and read again at the next turn.
					if !strings.Contains(e, "garbage collection was under way") {
						t.Errorf("error: %s", e)
					}
				}
				if waiting == inFlight && len(errs) == 0 {
					text, _, _ := runPyprof(t, append([]string{"dump"}, pick...)...)
					if n := strings.Count(text, "wait_request ("); n != inFlight {
						t.Errorf("text dump shows %d requests in wait_request, want %d:\n%s", n, inFlight, text)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d requests parked in wait_request, want %d:\n%s", waiting, inFlight, out)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}

// TestRecordIdleGreenlets: record --idle --threads samples every parked
// greenlet of greenlets.py, its whole stack as the target saw it, under a
// "greenlet NAME" (or address) frame of its thread, in most rounds; the
// hub, which runs, is the thread's own stack. Without --idle no greenlet
// shows.
func TestRecordIdleGreenlets(t *testing.T) {
	for _, py := range testpython.GreenletPythons(t) {
		for _, lib := range []string{"gevent", "eventlet"} {
			t.Run(py.Name+"/"+lib, func(t *testing.T) {
				tg, rep := testpython.StartGreenlets(t, py, lib)
				stacks := map[string]int{}
				out := filepath.Join(t.TempDir(), "p.txt")
				cmd := pyprofCmd(t, "record", "-p", itoa(tg.Pid), "--idle", "--threads", "-d", "4", "-f", "collapsed", "-o", out)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("record: %v\n%s", err, b)
				}
				data, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				most := 0
				for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
					i := strings.LastIndexByte(line, ' ')
					n, _ := strconv.Atoi(line[i+1:])
					stack := line[:i]
					// The thread frame: "thread TID: NAME".
					if _, rest, ok := strings.Cut(stack, ";"); ok {
						stack = rest
					}
					stacks[stack] += n
					most = max(most, n)
				}
				for _, want := range rep.Greenlets {
					if want.Shape == "hub" {
						continue
					}
					label := fmt.Sprintf("%#x", want.Address)
					if want.Name != nil {
						label = *want.Name
					}
					parts := []string{"greenlet " + label}
					for i := len(want.Frames) - 1; i >= 0; i-- {
						f := want.Frames[i]
						parts = append(parts, fmt.Sprintf("%s (%s:%d)", f.Function, pyfile.Short(f.Filename), f.Line))
					}
					stack := strings.Join(parts, ";")
					// The greenlets are found by a walk of the GC lists
					// that runs beside the sampling: the first rounds
					// may precede it, the more so on a loaded machine.
					if n := stacks[stack]; n < most/4 {
						t.Errorf("%s greenlet sampled %d times (the most sampled stack %d):\n%s\nin:\n%s", want.Shape, n, most, stack, data)
					}
				}

				cmd = pyprofCmd(t, "record", "-p", itoa(tg.Pid), "--threads", "-d", "1", "-f", "collapsed", "-o", out)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("record: %v\n%s", err, b)
				}
				if data, err := os.ReadFile(out); err != nil || strings.Contains(string(data), ";greenlet ") {
					t.Errorf("greenlets without --idle (%v):\n%s", err, data)
				}
			})
		}
	}
}

// TestDumpGreenletThreads: the greenlets of a second OS thread (two raw
// ones parked, its main greenlet running: blocked on a lock) are listed
// under that thread, and the main thread's under the main thread, on
// Debian 12's 3.11 and the sid root's 3.14.
func TestDumpGreenletThreads(t *testing.T) {
	for _, py := range testpython.GreenletPythons(t) {
		t.Run(py.Name, func(t *testing.T) {
			tg, rep := testpython.StartGreenlets(t, py, "gevent", "--thread")
			d, raw := dumpGreenlets(t, tg.Pid)
			if len(d.Errors) > 0 {
				t.Errorf("errors: %v", d.Errors)
			}
			if len(d.Threads) != 2 {
				t.Fatalf("%d threads:\n%s", len(d.Threads), raw)
			}
			owner := map[uint64]int{}
			for i, th := range d.Threads {
				for _, g := range th.Greenlets {
					owner[g.Address] = i
				}
			}
			for _, want := range rep.Greenlets {
				i, ok := owner[want.Address]
				if !ok {
					t.Errorf("%s greenlet %#x missing", want.Shape, want.Address)
					continue
				}
				th := d.Threads[i]
				if want.Thread != nil && th.ThreadID != *want.Thread || want.Thread == nil && (th.Name == nil || *th.Name != "MainThread") {
					t.Errorf("%s greenlet %#x under thread %#x (%v)", want.Shape, want.Address, th.ThreadID, strp(th.Name))
				}
				for _, g := range th.Greenlets {
					if g.Address != want.Address {
						continue
					}
					if g.Running != (want.Shape == "hub" || want.Shape == "thread_main") {
						t.Errorf("%s greenlet: running %v", want.Shape, g.Running)
					}
					diffGreenlet(t, want, g.Running, g.Frames, th.Frames)
				}
			}
		})
	}
}

// TestTopIdleGreenlets: top --idle counts each parked greenlet's stack, so
// the innermost function of every shape greenlets.py parks in has a row;
// without --idle only the thread's own stack does.
func TestTopIdleGreenlets(t *testing.T) {
	py := testpython.GreenletPythons(t)[0]
	tg, rep := testpython.StartGreenlets(t, py, "gevent")
	rows := func(args ...string) map[string]bool {
		out, stderr, code := runPyprof(t, append([]string{"top", "-p", itoa(tg.Pid), "--once", "--delay", "3"}, args...)...)
		ts := tables(out)
		if code != 0 || len(ts) != 1 {
			t.Fatalf("top %v: exit %d, %d tables: %s\n%s", args, code, len(ts), stderr, out)
		}
		fns := map[string]bool{}
		for _, r := range ts[0] {
			fns[r.fn] = true
		}
		return fns
	}
	idle, plain := rows("--idle"), rows()
	for _, g := range rep.Greenlets {
		if g.Shape == "hub" || g.Main || len(g.Frames) == 0 {
			continue
		}
		fn := g.Frames[0].Function
		if !idle[fn] {
			t.Errorf("top --idle: no row for %s, where the %s greenlet parks", fn, g.Shape)
		}
		if fn == "raw_inner" && plain[fn] {
			t.Errorf("top without --idle: a row for %s, which only a parked greenlet runs", fn)
		}
	}
}

// diffGreenlet compares a dumped greenlet's frames with the target's view
// of it: a running greenlet ran on since the view, and its stack is its
// thread's now.
func diffGreenlet(t *testing.T, want testpython.ExpectGreenlet, running bool, got, thread []testpython.ExpectFrame) {
	t.Helper()
	frames := want.Frames
	if running {
		frames = thread
	}
	if diff := testpython.DiffThreads(
		[]testpython.ExpectThread{{Shape: want.Shape, Frames: frames}},
		[]testpython.ExpectThread{{Shape: want.Shape, Frames: got}}); diff != "" {
		t.Errorf("%s greenlet %#x:\n%s", want.Shape, want.Address, diff)
	}
}
