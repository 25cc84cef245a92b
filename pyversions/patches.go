package pyversions

// patches lists the layout differences between patch releases of one minor
// version, relative to the release each minor's table was generated from.
// The evidence for each entry, and the fields confirmed to be stable across
// patch releases, are summarised in README.md ("Patch releases").
var patches = []patch{
	{
		major: 3, minor: 7, from: 0, to: 3,
		why: "_PyRuntimeState.gilstate sits 88 bytes earlier before 3.7.4, so gilstate.tstate_current is at 1392, not 1480 (x86_64)",
		apply: func(l *Layout) {
			l.Runtime.TstateCurrent -= 88
		},
	},
}
