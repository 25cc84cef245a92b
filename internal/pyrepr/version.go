package pyrepr

// Version is the target interpreter's major.minor release. The zero Version
// stands for the newest Python 3 this package knows.
type Version struct {
	Major, Minor int
}

// py2 reports whether v formats strings with Python 2's rules.
func (v Version) py2() bool { return v.Major == 2 }
