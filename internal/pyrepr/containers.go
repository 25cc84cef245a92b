package pyrepr

// Separators and markers shared by the container reprs of every supported
// version. Dicts print as "{}" or "{k: v, ...}" and lists as "[]" or
// "[a, b]" everywhere, so they need no helper beyond these.
const (
	Sep    = ", "
	KeySep = ": "

	// A container already being printed higher up the same repr() call
	// (a cycle) prints as one of these.
	RecursiveList  = "[...]"
	RecursiveDict  = "{...}"
	RecursiveTuple = "(...)"

	// LongSuffix ends repr() of a Python 2 long, but not of a Python 2 int.
	LongSuffix = "L"
)

// TupleClose returns the text closing a tuple of n elements after its last
// element: a one-element tuple needs a trailing comma to differ from a
// parenthesized expression, as in "(1,)".
func TupleClose(n int) string {
	if n == 1 {
		return ",)"
	}
	return ")"
}

// SetOpen returns the text before the first element of a set or frozenset
// of n elements whose type is named typeName ("set", "frozenset" or a
// subclass's name).
//
// Python 3 prints a plain non-empty set as "{1, 2}", any other non-empty
// one as "frozenset({1, 2})", and an empty one as "set()" or "frozenset()",
// since "{}" is a dict. Python 2 always wraps a list: "set([1, 2])",
// "set([])".
func SetOpen(typeName string, n int, v Version) string {
	switch {
	case v.py2():
		return typeName + "(["
	case n == 0:
		return typeName + "("
	case typeName == "set":
		return "{"
	default:
		return typeName + "({"
	}
}

// SetClose returns the text after the last element of the set SetOpen
// opened.
func SetClose(typeName string, n int, v Version) string {
	switch {
	case v.py2():
		return "])"
	case n == 0:
		return ")"
	case typeName == "set":
		return "}"
	default:
		return "})"
	}
}
