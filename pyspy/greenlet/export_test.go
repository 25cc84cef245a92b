package greenlet

import "time"

// WalkGC walks the process's GC lists as Scan does, whether greenlet is
// imported or not, for the test of the GC layouts.
func (r *Reader) WalkGC() (*Scanned, error) {
	g, err := r.gcLayout()
	if err != nil {
		return nil, err
	}
	return r.scan(g, time.Now().Add(r.Budget))
}
