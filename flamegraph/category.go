package flamegraph

import (
	"hash/fnv"
	"regexp"
	"strings"
)

// Cat is the kind of code a frame belongs to, which decides its palette.
type Cat uint8

// The categories, in the order the legend lists them.
const (
	CatApp     Cat = iota // the profiled program's own code
	CatLibrary            // third-party packages (site-packages, dist-packages)
	CatStdlib             // the standard library, frozen modules and builtins
	CatProcess            // a process frame (Process)
	CatThread             // a thread or greenlet frame (Thread, Greenlet)
	numCats
)

var catNames = [numCats]string{"application", "third-party", "standard library", "process", "thread"}

func (c Cat) String() string {
	if c < numCats {
		return catNames[c]
	}
	return "unknown"
}

// stdlibDir matches the interpreter's own library directory however
// Python was installed (distro, pyenv, venv base, free-threaded "3.13t"),
// and PyPy's lib-python.
var stdlibDir = regexp.MustCompile(`(^|/)(lib(64)?/python[0-9]+(\.[0-9]+)?[a-z]*|lib-python/[0-9.]+)/`)

// Category classifies a frame by its file, the full path the interpreter
// holds: a file shown shortened, as "json/decoder.py", could be anyone's.
func Category(f Frame) Cat {
	switch f.Kind {
	case Process:
		return CatProcess
	case Thread, Greenlet:
		return CatThread
	}
	file := strings.ReplaceAll(f.fullPath(), `\`, "/")
	switch {
	// Checked before the stdlib directory, which contains site-packages.
	case strings.Contains(file, "site-packages/"), strings.Contains(file, "dist-packages/"):
		return CatLibrary
	case strings.HasPrefix(file, "<frozen "), file == "<string>",
		strings.HasPrefix(file, "<built-in"), file == "<builtin>",
		strings.HasPrefix(f.Name, "<built-in"):
		return CatStdlib
	case stdlibDir.MatchString(file):
		return CatStdlib
	}
	return CatApp
}

type rgb struct{ r, g, b uint8 }

func (c rgb) packed() int { return int(c.r)<<16 | int(c.g)<<8 | int(c.b) }

func mix(base, span int, v float64) uint8 { return uint8(base + int(float64(span)*v)) }

// colour picks a frame's fill: the palette comes from its category and the
// shade from a hash of the function's name, so that one function keeps its
// colour across the graph and across runs, as in flamegraph.pl.
func colour(f Frame) rgb {
	h := fnv.New32a()
	h.Write([]byte(f.Name))
	s := h.Sum32()
	v1 := float64(s&0xff) / 255
	v2 := float64(s>>8&0xff) / 255
	v3 := float64(s>>16&0xff) / 255
	switch Category(f) {
	case CatLibrary: // aqua
		return rgb{mix(40, 60, v1), mix(160, 50, v2), mix(165, 55, v2)}
	case CatStdlib: // pale yellow
		return rgb{mix(200, 35, v1), mix(195, 35, v1), mix(70, 40, v2)}
	case CatProcess: // grey
		return rgb{mix(165, 40, v1), mix(165, 40, v1), mix(165, 40, v1)}
	case CatThread: // blue
		return rgb{mix(110, 40, v1), mix(145, 40, v1), mix(215, 40, v2)}
	}
	// Warm, kept short of yellow so that it stays apart from the stdlib.
	return rgb{mix(205, 50, v3), mix(40, 130, v1), mix(0, 55, v2)}
}

// legendColour is a representative shade for each category.
func legendColour(c Cat) rgb {
	switch c {
	case CatLibrary:
		return rgb{70, 185, 190}
	case CatStdlib:
		return rgb{218, 212, 90}
	case CatProcess:
		return rgb{185, 185, 185}
	case CatThread:
		return rgb{130, 165, 235}
	}
	return rgb{230, 105, 25}
}
