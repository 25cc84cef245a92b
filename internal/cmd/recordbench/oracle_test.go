package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// stackOf builds a stack from "function:line" items, root first, in file;
// "other.py/function:line" is a frame of another file.
func stackOf(file, s string) []frame {
	var out []frame
	for _, item := range strings.Split(s, ";") {
		f := frame{file: "/somewhere/" + file}
		if i := strings.IndexByte(item, '/'); i >= 0 {
			f.file, item = item[:i], item[i+1:]
		}
		j := strings.LastIndexByte(item, ':')
		f.fn = item[:j]
		f.line, _ = strconv.Atoi(item[j+1:])
		out = append(out, f)
	}
	return out
}

// lineOf is the number of the first line of the script containing text.
func lineOf(t *testing.T, path, text string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s: no line with %q", path, text)
	return 0
}

func TestOracleHotleaf(t *testing.T) {
	path := filepath.Join("..", "..", "..", "testdata", "targets", "hotleaf.py")
	o, err := loadOracle(path)
	if err != nil {
		t.Fatal(err)
	}
	mod := "<module>:" + strconv.Itoa(lineOf(t, path, "main()  # -> main"))
	main := "main:" + strconv.Itoa(lineOf(t, path, "done += descend(DEPTH)"))
	rec := "descend:" + strconv.Itoa(lineOf(t, path, "return descend(n - 1)"))
	leafCall := "descend:" + strconv.Itoa(lineOf(t, path, "fib(FIB)  # -> fib"))
	fibRec := "fib:" + strconv.Itoa(lineOf(t, path, "return fib(n - 1) + fib(n - 2)"))
	fibTop := "fib:" + strconv.Itoa(lineOf(t, path, "if n < 2:"))
	deep := func(n int) string { return strings.Repeat(";"+rec, n) }
	for _, tc := range []struct {
		stack    string
		possible bool
	}{
		{mod + ";" + main + deep(40) + ";" + leafCall + ";" + fibRec + ";" + fibTop, true},
		{mod + ";" + main + deep(40) + ";" + leafCall, true},
		{mod + ";" + main + deep(12), true},
		// Qualified names (3.11+) are judged by their last part.
		{mod + ";" + "x.main" + main[4:] + deep(3), true},
		// fib under 39 descend frames: the recursion cannot have ended.
		{mod + ";" + main + deep(38) + ";" + leafCall + ";" + fibTop, false},
		// fib called from the recursive line.
		{mod + ";" + main + deep(40) + ";" + fibTop, false},
		// The root is gone.
		{main + deep(40), false},
		// A line outside the function.
		{mod + ";main:3", false},
		// Frames of another file where none can be.
		{mod + ";" + main + ";threading.py/wait:300", false},
		// 15 fib frames: deeper than fib(14) goes.
		{mod + ";" + main + deep(40) + ";" + leafCall + strings.Repeat(";"+fibRec, 14) + ";" + fibTop, false},
	} {
		if got, _ := o.check(stackOf("hotleaf.py", tc.stack)); got != tc.possible {
			t.Errorf("check(%s) = %v, want %v", tc.stack, got, tc.possible)
		}
	}
}

func TestOracleCallpaths(t *testing.T) {
	path := filepath.Join("..", "..", "..", "testdata", "targets", "callpaths.py")
	o, err := loadOracle(path)
	if err != nil {
		t.Fatal(err)
	}
	ln := func(text string) string { return strconv.Itoa(lineOf(t, path, text)) }
	mod := "<module>:" + ln("main()  # -> main")
	main := "main:"
	idle := "threading.py/_bootstrap:900;threading.py/run:870;idle_worker:" + ln("event.wait()") + ";threading.py/wait:600;threading.py/wait:300"
	for _, tc := range []struct {
		stack          string
		possible, idle bool
	}{
		{mod + ";" + main + ln("path_gen()  #") + ";path_gen:" + ln("return sum(gen(") + ";gen:" + ln("yield square") + ";square:" + ln("return i * i"), true, false},
		{mod + ";" + main + ln("path_method(shape)  #") + ";path_method:" + ln("shape.total(") + ";Shape.total:" + ln("self.area()  #") + ";Shape.area:" + ln("self.side * self.side"), true, false},
		{mod + ";" + main + ln("path_rec()  #") + ";path_rec:" + ln("rec(REC_DEPTH)") + strings.Repeat(";rec:"+ln("return rec(n - 1)"), 12) + ";rec:" + ln("return spin(SPIN)") + ";spin:" + ln("x += i"), true, false},
		{idle, true, true},
		// square called from the method path.
		{mod + ";" + main + ln("path_method(shape)  #") + ";path_method:" + ln("shape.total(") + ";Shape.total:" + ln("self.area()  #") + ";square:" + ln("return i * i"), false, false},
		// spin above 5 rec frames.
		{mod + ";" + main + ln("path_rec()  #") + ";path_rec:" + ln("rec(REC_DEPTH)") + strings.Repeat(";rec:"+ln("return rec(n - 1)"), 4) + ";rec:" + ln("return spin(SPIN)") + ";spin:" + ln("x += i"), false, false},
		// An idle thread's stack cut short at its entry: still idle, still possible.
		{"threading.py/run:870;idle_worker:" + ln("def idle_worker"), true, true},
		// The script's function entered from another file without being an entry.
		{"threading.py/run:870;path_gen:" + ln("return sum(gen("), false, false},
	} {
		possible, idle := o.check(stackOf("callpaths.py", tc.stack))
		if possible != tc.possible || idle != tc.idle {
			t.Errorf("check(%s) = %v, %v; want %v, %v", tc.stack, possible, idle, tc.possible, tc.idle)
		}
	}
}

func TestOracleScripts(t *testing.T) {
	for _, script := range []string{"hotleaf.py", "callpaths.py", "churn.py", "webapp.py"} {
		if _, err := loadOracle(filepath.Join("..", "..", "..", "testdata", "targets", script)); err != nil {
			t.Errorf("%s: %v", script, err)
		}
	}
}

func TestParsers(t *testing.T) {
	dir := t.TempDir()
	collapsed := filepath.Join(dir, "c.txt")
	os.WriteFile(collapsed, []byte("process 12: python app.py;<module> (/a/app.py:3);f (/a/app.py:9) 7\n"+
		"<module> (app.py:3);g (lib/x.py:1) 2\n<module> (app.py:3);h (/a/app.py) 1\n 4\n"), 0o644)
	st, err := parseCollapsed(collapsed)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 4 || len(st[3].frames) != 0 || st[3].count != 4 || st[2].frames[1] != (frame{"h", "/a/app.py", 0}) || st[0].count != 7 || len(st[0].frames) != 2 || st[0].frames[1] != (frame{"f", "/a/app.py", 9}) || st[1].frames[1] != (frame{"g", "lib/x.py", 1}) {
		t.Errorf("parseCollapsed: %+v", st)
	}
	au := filepath.Join(dir, "a.txt")
	os.WriteFile(au, []byte("# austin: 3.7.0\n# mode: cpu\n\nP1;T0:1;/a/app.py:<module>:3;/a/app.py:f:9 1000\n"+
		"P1;T0:1;:INVALID:;/a/app.py:f:9 1000\nP1;T0:2 99\n\n# duration: 5\n"), 0o644)
	st, invalid, err := parseAustin(au)
	if err != nil {
		t.Fatal(err)
	}
	if invalid != 1 || len(st) != 2 || st[0].frames[1] != (frame{"f", "/a/app.py", 9}) || len(st[1].frames) != 0 {
		t.Errorf("parseAustin: %+v, %d invalid", st, invalid)
	}
}

func TestOracleWebapp(t *testing.T) {
	path := filepath.Join("..", "..", "..", "testdata", "targets", "webapp.py")
	o, err := loadOracle(path)
	if err != nil {
		t.Fatal(err)
	}
	ln := func(text string) string { return strconv.Itoa(lineOf(t, path, text)) }
	worker := "arbiter.py/Arbiter.spawn_worker:589;sync.py/SyncWorker.handle_request:179;app.py/Flask.dispatch_request:1796"
	for _, tc := range []struct {
		stack          string
		possible, idle bool
	}{
		{worker + ";work:" + ln("return str(parse_tokens") + ";parse_tokens:" + ln("for i, tok in"), true, false},
		// 3.13 reports a decorated function's first line as its
		// decorator's while it starts.
		{worker + ";work:" + ln(`@app.route("/work")`), true, false},
		{worker + ";work:" + ln("return str(parse_tokens") + ";tokenize:0", false, false},
		{"arbiter.py/Arbiter.run:202;arbiter.py/Arbiter.sleep:357", true, true},
		{"arbiter.py/Arbiter.spawn_worker:589;sync.py/SyncWorker.run_for_one:60;sync.py/SyncWorker.wait:36", true, true},
		{"arbiter.py/Arbiter.spawn_worker:589;sync.py/SyncWorker.accept:31", true, false},
	} {
		possible, idle := o.check(stackOf("webapp.py", tc.stack))
		if possible != tc.possible || idle != tc.idle {
			t.Errorf("check(%s) = %v, %v; want %v, %v", tc.stack, possible, idle, tc.possible, tc.idle)
		}
	}
	if !o.lineless(stackOf("webapp.py", worker+";work:"+ln("return str(parse_tokens")+";tokenize:0")) {
		t.Error("lineless: a frame of line 0 not found")
	}
}
