// Command genlayouts regenerates pyversions/layouts_gen.go and
// pyversions/debugoffsets_gen.go: from the DWARF of the CPython builds
// installed under pyenv, and, for minors that have none, from the -dev
// headers that .ci/sid-pythons installs. Versions it cannot find keep their
// committed entry, so running it on a machine with fewer interpreters
// never drops a layout.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"sort"

	"github.com/pyprof/pyprof/internal/layoutgen"
	"github.com/pyprof/pyprof/pyversions"
)

func main() {
	out := flag.String("o", "layouts_gen.go", "output file for the struct layouts")
	debugOut := flag.String("debugoffsets", "debugoffsets_gen.go", "output file for the _Py_DebugOffsets formats")
	flag.Parse()
	log.SetFlags(0)
	t, err := layoutgen.Fresh()
	if err != nil {
		log.Fatal(err)
	}
	var read []string
	for minor, src := range t.Sources {
		read = append(read, minor+" from "+src)
	}
	sort.Strings(read)
	for _, g := range pyversions.Generated() {
		if _, ok := t.Layouts[g.Version.MinorString()]; !ok {
			log.Printf("%s: no build here, keeping the committed layout of %s (%s)", g.Version.MinorString(), g.Version, g.Origin)
		}
	}
	t.Merge(pyversions.Generated(), pyversions.GeneratedDebugOffsetsFormats())
	layouts, formats, err := t.Render()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, layouts, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*debugOut, formats, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s with %d layouts and %s with %d descriptor formats; read:\n", *out, len(t.Layouts), *debugOut, len(t.Formats))
	for _, r := range read {
		fmt.Fprintf(os.Stderr, "  %s\n", r)
	}
}
