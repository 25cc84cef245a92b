// Package pyfile shortens the file names of Python code for display, as
// dump, record and top show them unless --full-filenames is given.
package pyfile

import "strings"

// Short drops the install prefix of a library file, which says little and
// takes much of a line: everything up to site-packages/ or dist-packages/
// (third-party packages, "gunicorn/workers/sync.py"), else up to the
// interpreter's lib/pythonX.Y/ (the standard library, "json/decoder.py").
// Other paths, the application's own and "<frozen ...>" names, stay whole.
func Short(path string) string {
	for _, marker := range []string{"/site-packages/", "/dist-packages/"} {
		if i := strings.LastIndex(path, marker); i >= 0 {
			return path[i+len(marker):]
		}
	}
	// lib/python3.11/, lib/python3/, lib/python3.13t/: a version follows.
	for rest, ok := path, true; ok; {
		var after string
		_, after, ok = strings.Cut(rest, "/lib/python")
		if ok && after != "" && after[0] >= '0' && after[0] <= '9' {
			if j := strings.IndexByte(after, '/'); j >= 0 {
				return after[j+1:]
			}
		}
		rest = after
	}
	return path
}
