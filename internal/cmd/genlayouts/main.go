// Command genlayouts regenerates pyversions/layouts_gen.go and
// pyversions/debugoffsets_gen.go from the DWARF of the CPython builds
// installed under pyenv. Versions it cannot find keep their committed
// entry, so running it on a machine with fewer interpreters never drops a
// layout.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/pyprof/pyprof/internal/layoutgen"
	"github.com/pyprof/pyprof/pyversions"
)

func main() {
	out := flag.String("o", "layouts_gen.go", "output file for the struct layouts")
	debugOut := flag.String("debugoffsets", "debugoffsets_gen.go", "output file for the _Py_DebugOffsets formats")
	flag.Parse()
	log.SetFlags(0)
	found, err := layoutgen.FindBuilds()
	if err != nil {
		log.Fatal(err)
	}
	byMinor := map[string]*pyversions.Layout{}
	for _, g := range pyversions.Generated() {
		g := g
		byMinor[g.Version.MinorString()] = &g
	}
	formats := map[string]*pyversions.DebugOffsetsFormat{}
	for _, f := range pyversions.GeneratedDebugOffsetsFormats() {
		f := f
		formats[f.Version.MinorString()] = &f
	}
	for _, b := range found {
		l, err := layoutgen.Extract(b.Path, b.Version)
		if err != nil {
			log.Fatal(err)
		}
		if old, ok := byMinor[b.Version.MinorString()]; ok && old.Version != b.Version {
			log.Printf("%s: replacing layout from %s with %s", b.Version.MinorString(), old.Version, b.Version)
		}
		byMinor[b.Version.MinorString()] = l
		f, ok, err := layoutgen.ExtractDebugFormat(b.Path, b.Version)
		if err != nil {
			log.Fatal(err)
		}
		if ok {
			formats[b.Version.MinorString()] = f
		}
	}
	var all []*pyversions.Layout
	for _, l := range byMinor {
		all = append(all, l)
	}
	src, err := layoutgen.Render(all)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
	var allFormats []*pyversions.DebugOffsetsFormat
	for _, f := range formats {
		allFormats = append(allFormats, f)
	}
	src, err = layoutgen.RenderDebugFormats(allFormats)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*debugOut, src, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s with %d layouts and %s with %d descriptor formats from %d builds\n",
		*out, len(all), *debugOut, len(allFormats), len(found))
}
