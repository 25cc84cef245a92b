package pyversions

// patches lists the layout differences between patch releases of one minor
// version. Each entry was checked against CPython's headers at the release
// tags; see the comment on each.
var patches = []patch{}
