package flamegraph

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// builder collects stacks given as frames, as a recorder gives them: equal
// frames are one entry of Profile.Frames, in the order they first appear.
type builder struct {
	p   Profile
	ids map[Frame]int
}

func newBuilder() *builder { return &builder{ids: map[Frame]int{}} }

// Add adds a stack, root first, found count times; where it was sampled
// (pid, thread) does not change the graph.
func (b *builder) Add(frames []Frame, count int64, pid, tid int, thread string) {
	s := Stack{Count: count}
	for _, f := range frames {
		id, ok := b.ids[f]
		if !ok {
			id = len(b.p.Frames)
			b.ids[f] = id
			b.p.Frames = append(b.p.Frames, f)
		}
		s.Frames = append(s.Frames, id)
	}
	b.p.Stacks = append(b.p.Stacks, s)
}

// Meta is the profile's metadata, to be set before Profile.
func (b *builder) Meta() *Profile { return &b.p }

func (b *builder) Profile() *Profile { return &b.p }

// processFrame and threadFrame label a process's and a thread's stacks,
// as pyprof's recordings do.
func processFrame(pid int, cmdline string) Frame {
	return Frame{Kind: Process, Name: "process " + strconv.Itoa(pid) + ": " + cmdline}
}

func threadFrame(tid int, name string) Frame {
	return Frame{Kind: Thread, Name: "thread " + strconv.Itoa(tid) + ": " + name}
}

// py is a Python frame, for building test stacks tersely.
func py(name, file string, line int) Frame {
	return Frame{Kind: Python, Name: name, File: file, Line: line}
}

// webApp is a profile shaped like a gunicorn worker serving a Flask app
// whose request handling is dominated by parse_tokens: a few hundred
// unique stacks across three workers, with library, stdlib and app
// frames. It is what the README's screenshot shows.
func webApp() *Profile {
	b := newBuilder()
	rng := rand.New(rand.NewPCG(1, 2))
	const sp = "/srv/venv/lib/python3.11/site-packages/"
	const std = "/usr/lib/python3.11/"
	worker := []Frame{
		py("<module>", sp+"gunicorn/app/wsgiapp.py", 71),
		py("run", sp+"gunicorn/app/base.py", 231),
		py("Arbiter.spawn_worker", sp+"gunicorn/arbiter.py", 609),
		py("Worker.init_process", sp+"gunicorn/workers/base.py", 142),
		py("SyncWorker.run", sp+"gunicorn/workers/sync.py", 125),
		py("SyncWorker.run_for_one", sp+"gunicorn/workers/sync.py", 69),
		py("SyncWorker.accept", sp+"gunicorn/workers/sync.py", 32),
		py("SyncWorker.handle", sp+"gunicorn/workers/sync.py", 135),
		py("SyncWorker.handle_request", sp+"gunicorn/workers/sync.py", 178),
	}
	flask := []Frame{
		py("Flask.__call__", sp+"flask/app.py", 1498),
		py("Flask.wsgi_app", sp+"flask/app.py", 1473),
		py("Flask.full_dispatch_request", sp+"flask/app.py", 880),
		py("Flask.dispatch_request", sp+"flask/app.py", 865),
	}
	// vary marks a path whose last frame's line varies from sample to
	// sample, as a loop in library code does: that makes the few hundred
	// unique stacks without splitting the application's frames.
	type leafPath struct {
		frames []Frame
		weight int
		vary   bool
	}
	hot := []Frame{py("search", "/srv/app/views.py", 42), py("parse_query", "/srv/app/query.py", 88), py("parse_tokens", "/srv/app/query.py", 131)}
	under := func(base []Frame, more ...Frame) []Frame {
		return append(append([]Frame(nil), base...), more...)
	}
	scan := py("Tokenizer.scan", "/srv/app/tokenizer.py", 57)
	paths := []leafPath{
		{hot, 20, false},
		{under(hot, scan, py("Pattern.match", std+"re/__init__.py", 166)), 18, true},
		{under(hot, scan, py("Tokenizer.emit", "/srv/app/tokenizer.py", 90)), 10, false},
		{under(hot, py("normalize", "/srv/app/text.py", 17), py("str.casefold", "<built-in>", 0)), 8, false},
		{[]Frame{py("search", "/srv/app/views.py", 44), py("run_query", "/srv/app/db.py", 60), py("Cursor.execute", sp+"psycopg2/extras.py", 236), py("SocketIO.readinto", std+"socket.py", 706)}, 10, true},
		{[]Frame{py("search", "/srv/app/views.py", 47), py("render_results", "/srv/app/views.py", 90), py("dumps", std+"json/__init__.py", 231), py("JSONEncoder.encode", std+"json/encoder.py", 200), py("JSONEncoder.iterencode", std+"json/encoder.py", 258)}, 7, true},
		{[]Frame{py("health", "/srv/app/views.py", 12)}, 2, false},
		{[]Frame{py("login", "/srv/app/auth.py", 30), py("check_password", "/srv/app/auth.py", 55), py("pbkdf2_hmac", "<built-in>", 0)}, 5, false},
		{[]Frame{py("login", "/srv/app/auth.py", 31), py("Session.get", sp+"requests/sessions.py", 600), py("HTTPAdapter.send", sp+"requests/adapters.py", 486), py("HTTPConnection.getresponse", std+"http/client.py", 1375), py("SocketIO.readinto", std+"socket.py", 706)}, 6, true},
	}
	pids := []int{4242, 4243, 4244}
	for _, pid := range pids {
		proc := processFrame(pid, "gunicorn: worker [app:app]")
		main := threadFrame(pid, "MainThread")
		for range 200 {
			p := paths[pickWeighted(rng, len(paths), func(i int) int { return paths[i].weight })]
			stack := []Frame{proc, main}
			stack = append(stack, worker...)
			stack = append(stack, flask...)
			stack = append(stack, p.frames...)
			if p.vary {
				stack[len(stack)-1].Line += rng.IntN(20)
			}
			b.Add(stack, int64(1+rng.IntN(12)), pid, pid, "MainThread")
		}
		// A background thread in each worker, idle in the stdlib.
		bg := threadFrame(pid+100, "heartbeat")
		b.Add([]Frame{proc, bg,
			py("Thread._bootstrap", std+"threading.py", 995),
			py("Thread._bootstrap_inner", std+"threading.py", 1038),
			py("Thread.run", std+"threading.py", 975),
			py("heartbeat", "/srv/app/monitor.py", 22),
			py("sleep", "<built-in>", 0),
		}, 60, pid, pid+100, "heartbeat")
		b.Add([]Frame{proc, main,
			py("<module>", sp+"gunicorn/app/wsgiapp.py", 71),
			py("_find_and_load", "<frozen importlib._bootstrap>", 1176),
		}, 3, pid, pid, "MainThread")
	}
	m := b.Meta()
	m.Command = "gunicorn app:app"
	m.Pids = pids
	m.Duration = 8 * time.Second
	m.Rate = 100
	m.Errors = 2
	p := b.Profile()
	p.Rounds = p.Total()
	return p
}

func pickWeighted(rng *rand.Rand, n int, weight func(int) int) int {
	sum := 0
	for i := range n {
		sum += weight(i)
	}
	r := rng.IntN(sum)
	for i := range n {
		r -= weight(i)
		if r < 0 {
			return i
		}
	}
	return n - 1
}

// synthetic makes a profile of n unique stacks 10 to 40 frames deep, from
// a pool of realistic function and file names in app, library and stdlib
// directories. Each function calls into a few others, chosen by hashing,
// so that stacks share prefixes as real programs' do; counts fall off as
// a Zipf law, so a few stacks dominate.
func synthetic(n int) *Profile {
	rng := rand.New(rand.NewPCG(7, 11))
	verbs := []string{"get", "set", "load", "parse", "render", "handle", "dispatch", "resolve", "compute", "fetch", "validate", "serialize", "encode", "decode", "build", "run", "process", "update", "read", "write"}
	nouns := []string{"request", "response", "session", "token", "user", "query", "row", "cache", "config", "template", "node", "field", "header", "payload", "record", "item", "batch", "event", "message", "frame"}
	dirs := []string{
		"/srv/app/",
		"/srv/app/services/",
		"/srv/venv/lib/python3.11/site-packages/django/db/models/",
		"/srv/venv/lib/python3.11/site-packages/sqlalchemy/orm/",
		"/srv/venv/lib/python3.11/site-packages/werkzeug/",
		"/usr/lib/python3/dist-packages/yaml/",
		"/usr/lib/python3.11/",
		"/usr/lib/python3.11/json/",
		"/usr/lib/python3.11/asyncio/",
	}
	const nfuncs = 6000
	funcs := make([]Frame, nfuncs)
	for i := range funcs {
		v, o := verbs[rng.IntN(len(verbs))], nouns[rng.IntN(len(nouns))]
		name := v + "_" + o
		if rng.IntN(3) == 0 {
			name = strings.ToUpper(o[:1]) + o[1:] + "Manager." + name
		}
		file := fmt.Sprintf("%s%s_%d.py", dirs[rng.IntN(len(dirs))], o, i%97)
		funcs[i] = py(name, file, 1+rng.IntN(900))
	}
	callee := func(caller, k int) int {
		h := uint64(caller)*0x9e3779b97f4a7c15 + uint64(k)*0xbf58476d1ce4e5b9
		h ^= h >> 31
		return int(h % nfuncs)
	}
	b := newBuilder()
	proc := processFrame(1234, "python -m app.server")
	threads := []Frame{threadFrame(1234, "MainThread"), threadFrame(1240, "worker-1"), threadFrame(1241, "worker-2")}
	seen := map[string]bool{}
	zipf := rand.NewZipf(rng, 2, 1, 100000)
	var key []byte
	stack := make([]Frame, 0, 48)
	for len(seen) < n {
		depth := 10 + rng.IntN(31)
		ti := rng.IntN(len(threads))
		stack = append(stack[:0], proc, threads[ti])
		f := rng.IntN(4) // a few entry points
		key = strconv.AppendInt(key[:0], int64(ti), 10)
		for d := 2; d < depth; d++ {
			// Low fan-out near the root and more below, as in real
			// programs; the hot choice is the first.
			fan := 2 + d/4
			k := 0
			if rng.IntN(3) != 0 {
				k = rng.IntN(fan)
			}
			f = callee(f, k)
			stack = append(stack, funcs[f])
			key = strconv.AppendInt(append(key, ','), int64(f), 10)
		}
		if seen[string(key)] {
			continue
		}
		seen[string(key)] = true
		count := int64(1 + zipf.Uint64())
		b.Add(stack, count, 1234, 1234+ti, "")
	}
	m := b.Meta()
	m.Command = "python -m app.server"
	m.Pids = []int{1234}
	m.Duration = 600 * time.Second
	m.Rate = 100
	p := b.Profile()
	p.Rounds = p.Total()
	return p
}
