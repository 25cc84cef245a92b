package greenlet

import (
	"errors"
	"fmt"

	"github.com/pyprof/pyprof/pyversions"
)

// Layout is where greenlet's impl object (greenlet::Greenlet and its
// subclasses UserGreenlet and MainGreenlet) keeps what this package reads,
// as byte offsets from the impl, or -1 when the build has no such field.
type Layout struct {
	// Release is the greenlet release, Python the CPython minor it was
	// built for.
	Release, Python string

	Self, UserSelf, MainSelf         int64
	StackStart, StackStop, StackPrev int64
	TopFrame, CurrentFrame           int64
	DatastackChunk                   int64
	MainGreenlet, Run, Parent        int64
	ThreadState                      int64
}

// PyGreenlet (greenlet.h), the same in every release read here.
const (
	pyDict  = 24
	pyImpl  = 32
	pySize  = 40
	tsMain  = 0 // ThreadState.main_greenlet
	tsCur   = 8 // ThreadState.current_greenlet
	tsSize  = 16
	frameFF = 24 // PyFrameObject.f_frame (3.11+)
)

// ErrUnknownRelease means the target's greenlet is a release, or a build
// for a CPython minor, whose layout this package does not know.
var ErrUnknownRelease = errors.New("greenlet release not supported")

// UnknownReleaseError names the release found.
type UnknownReleaseError struct {
	Release string
	Python  pyversions.Version
}

func (e *UnknownReleaseError) Error() string {
	return fmt.Sprintf("greenlet %s on python %s: layout unknown, greenlets not read (known: %s)", e.Release, e.Python.MinorString(), Known())
}

func (e *UnknownReleaseError) Is(target error) bool { return target == ErrUnknownRelease }

// LayoutFor returns the layout of greenlet release on CPython v.
func LayoutFor(release string, v pyversions.Version) (*Layout, error) {
	for i := range layouts {
		if l := &layouts[i]; l.Release == release && l.Python == v.MinorString() {
			return l, nil
		}
	}
	return nil, &UnknownReleaseError{Release: release, Python: v}
}

// Known lists the releases and minors with a layout, for messages.
func Known() string {
	s := ""
	for i, l := range layouts {
		if i > 0 {
			s += ", "
		}
		s += l.Release + "/" + l.Python
	}
	return s
}

// gcLayout is where the interpreter keeps its GC lists: the offset of
// PyInterpreterState.gc, and in it the heads of the generations'
// lists and the permanent one, and the collecting flag. Printed from the
// DWARF of pyenv's 3.11.7, 3.12.1 and 3.13.0 and from the headers of
// Debian's 3.11.2 and 3.14.8/3.14.10 (every 3.14 patch release keeps its
// heads at 24, 48, 72 and 96, the incremental collector's young and old
// spaces included), and compiled against Debian's 3.15 headers (3.15
// drops the trash-can fields before the generations). TestGCLists checks
// each against a live interpreter's own count of its objects.
type gcLayout struct {
	state      int64
	heads      [4]int64
	collecting int64
}

var gcLayouts = map[string][]gcLayout{
	"3.11": {{state: 648, heads: [4]int64{24, 48, 72, 104}, collecting: 200}},
	"3.12": {{state: 112, heads: [4]int64{24, 48, 72, 104}, collecting: 200}},
	// From some 3.13 patch release on (Debian's 3.13.5 headers have it),
	// PyGC_Head is declared aligned to 4 bytes, which GCC takes as leave
	// to pack the generations 4 bytes earlier: sid's 3.13.18 keeps its
	// heads at 20, 44 and 68.
	"3.13": {
		{state: 7400, heads: [4]int64{24, 48, 72, 104}, collecting: 200},
		{state: 7400, heads: [4]int64{20, 44, 68, 104}, collecting: 200},
	},
	"3.14": {{state: 7408, heads: [4]int64{24, 48, 72, 96}, collecting: 192}},
	"3.15": {{state: 7400, heads: [4]int64{8, 32, 56, 80}, collecting: 112}},
}
