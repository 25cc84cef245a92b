package profile

import "testing"

// TestFormatOf: an output file's extension, in any case, chooses its
// format; a new file of each format gets the first of its extensions.
func TestFormatOf(t *testing.T) {
	for _, tc := range []struct {
		path, want string
	}{
		{"out.svg", "svg"},
		{"OUT.SVG", "svg"},
		{"p.pb.gz", "pprof"},
		{"p.pprof", "pprof"},
		{"p.pb", "pprof"},
		{"p.speedscope.json", "speedscope"},
		{"p.json", "speedscope"},
		{"p.txt", "collapsed"},
		{"p.collapsed", "collapsed"},
		{"p.folded", "collapsed"},
		{"p.gz", ""},
		{"-", ""},
		{"", ""},
	} {
		got := ""
		if f, ok := FormatOf(tc.path); ok {
			got = f.Name
		}
		if got != tc.want {
			t.Errorf("%q: format %q, want %q", tc.path, got, tc.want)
		}
	}
	for _, tc := range []struct{ name, ext string }{
		{"svg", "svg"}, {"pprof", "pb.gz"}, {"speedscope", "speedscope.json"}, {"collapsed", "txt"},
	} {
		f, ok := FormatNamed(tc.name)
		if !ok || f.Extension() != tc.ext {
			t.Errorf("%s: %v %v, want extension %s", tc.name, f, ok, tc.ext)
		}
		if g, ok := FormatOf("x." + tc.ext); !ok || g != f {
			t.Errorf("a new %s file is not read back as one", tc.name)
		}
	}
	if _, ok := FormatNamed("flamegraph"); ok {
		t.Errorf("flamegraph is py-spy's name, taken at the command line")
	}
	if got := FormatNames(); got != "svg, pprof, speedscope or collapsed" {
		t.Errorf("FormatNames() = %q", got)
	}
}
