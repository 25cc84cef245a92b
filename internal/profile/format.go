package profile

import (
	"io"
	"strings"
)

// Format is a file format a profile is written in.
type Format struct {
	Name string
	// Extensions are the file name endings that choose the format, in
	// lower case; the first is a new file's.
	Extensions []string
	// Write writes p in the format.
	Write func(p *Profile, w io.Writer) error
	// KeepsThreads says the format shows threads apart (pprof's labels,
	// speedscope's profiles), so that stacks must keep their thread's id
	// and name; the others merge threads, and keeping their stacks apart
	// would only cost memory for each thread a program starts.
	KeepsThreads bool
	// KeepsOrder says the format shows samples in time order, which the
	// builder keeps only when asked (Builder.KeepOrder).
	KeepsOrder bool
}

// Formats are the formats a profile is written in; the first is the
// default.
var Formats = []*Format{
	{Name: "svg", Extensions: []string{".svg"}, Write: (*Profile).WriteFlameGraph},
	{Name: "pprof", Extensions: []string{".pb.gz", ".pprof", ".pb"}, Write: (*Profile).WritePprof, KeepsThreads: true},
	{Name: "speedscope", Extensions: []string{".speedscope.json", ".json"}, Write: (*Profile).WriteSpeedscope, KeepsThreads: true, KeepsOrder: true},
	{Name: "collapsed", Extensions: []string{".txt", ".collapsed", ".folded"}, Write: (*Profile).WriteCollapsed},
}

// FormatNamed returns the format of that name.
func FormatNamed(name string) (*Format, bool) {
	for _, f := range Formats {
		if f.Name == name {
			return f, true
		}
	}
	return nil, false
}

// FormatOf picks a format from a file name's extension, in any case.
func FormatOf(path string) (*Format, bool) {
	p := strings.ToLower(path)
	for _, f := range Formats {
		for _, ext := range f.Extensions {
			if strings.HasSuffix(p, ext) {
				return f, true
			}
		}
	}
	return nil, false
}

// Extension is the extension of a new file, without its dot.
func (f *Format) Extension() string { return f.Extensions[0][1:] }

// FormatNames lists the formats' names for messages: "a, b or c".
func FormatNames() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = f.Name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
