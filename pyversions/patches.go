package pyversions

// patches lists the layout differences between patch releases of one minor
// version, relative to the release each minor's table was generated from.
// The evidence for each entry, and the fields confirmed to be stable across
// patch releases, are summarised in README.md ("Patch releases").
// internal/layoutgen's TestPatchReleases compiles the headers of every other
// patch release Debian ships (3.13.5, 3.13.15, 3.13.18, 3.14.8, 3.15.0 when
// this was written) and checks that LayoutFor gives exactly their layout:
// 3.14.8 and 3.15.0 do not differ from the tables (3.14.10, 3.15.2) in any
// member, and 3.13 differs only in the sizes of three structs, below.
var patches = []patch{
	{
		major: 3, minor: 7, from: 0, to: 3,
		why: "_PyRuntimeState.gilstate sits 88 bytes earlier before 3.7.4, so gilstate.tstate_current is at 1392, not 1480 (x86_64)",
		apply: func(l *Layout) {
			l.Runtime.TstateCurrent -= 88
		},
	},
	// The 3.13 entries move no member pyprof reads, and from 3.13 a live
	// target's _Py_DebugOffsets gives these sizes anyway; they keep
	// LayoutFor exact. The boundaries between the releases measured are
	// not known here: each entry starts at the first release after the
	// last one measured without it.
	{
		major: 3, minor: 13, from: 1, to: 5,
		why: "_PyRuntimeState is 56 bytes and PyInterpreterState 8 bytes larger than in 3.13.0 (measured on 3.13.5)",
		apply: func(l *Layout) {
			l.Runtime.Size += 56
			l.Interp.Size += 8
		},
	},
	{
		major: 3, minor: 13, from: 6, to: maxPatch,
		why: "_PyRuntimeState is 88 bytes, PyInterpreterState 16 and PyThreadState 8 bytes larger than in 3.13.0 (measured on 3.13.15 and 3.13.18)",
		apply: func(l *Layout) {
			l.Runtime.Size += 88
			l.Interp.Size += 16
			l.Thread.Size += 8
		},
	},
}

// maxPatch ends the range of a patch entry that holds for every later
// release measured.
const maxPatch = 1 << 16
