package flamegraph

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// small is a fixed profile with every category and a name to escape.
func small() *Profile {
	b := newBuilder()
	proc := processFrame(100, "python app.py")
	main := threadFrame(100, "MainThread")
	run := py("main", "/srv/app/app.py", 10)
	b.Add([]Frame{proc, main, run, py("handle", "/srv/app/app.py", 20), py("<lambda>", "/srv/app/app.py", 21)}, 5, 100, 100, "MainThread")
	b.Add([]Frame{proc, main, run, py("handle", "/srv/app/app.py", 20), py("loads", "/usr/lib/python3.11/json/__init__.py", 346)}, 3, 100, 100, "MainThread")
	b.Add([]Frame{proc, main, run, py("get", "/srv/venv/lib/python3.11/site-packages/requests/api.py", 73)}, 2, 100, 100, "MainThread")
	b.Add([]Frame{proc, main, run}, 1, 100, 100, "MainThread")
	b.Add([]Frame{proc, main, py(`a&b"c'd`, "<frozen importlib._bootstrap>", 1)}, 1, 100, 100, "MainThread")
	m := b.Meta()
	m.Command = "python app.py"
	m.Pids = []int{100}
	m.Duration = 3 * time.Second
	m.Rate = 100
	m.Rounds = 12
	return b.Profile()
}

func TestGolden(t *testing.T) {
	tests := []struct {
		file string
		opts Options
	}{
		{"small.svg", Options{}},
		{"small-icicle.svg", Options{Icicle: true, Title: "icicle <small>", Width: 800}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got := render(t, small(), tc.opts)
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if bytes.Equal(got, want) {
				os.Remove(path + ".got")
				return
			}
			if err := os.WriteFile(path+".got", got, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Errorf("%s differs from the output, which is in %s.got (run go test -update to accept it):\n%s",
				path, path, firstDiff(string(want), string(got)))
		})
	}
}

// firstDiff shows the first differing line with a little context.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			clip := func(s string) string {
				if len(s) > 200 {
					return s[:200] + "..."
				}
				return s
			}
			return "line " + strconv.Itoa(i+1) + ":\n-want " + clip(w) + "\n+got  " + clip(g)
		}
	}
	return "(no line differs)"
}
