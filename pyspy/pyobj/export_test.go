package pyobj

// What the external tests (fuzz_test.go, whose memory and seeds are
// package pyspy's snapshots, and so cannot be in this package) reach of
// the decoders' insides.

// SetKeys27 decodes table as a 2.7 set table.
func (d *Decoder) SetKeys27(table []byte, used int64, max int) []uint64 {
	return d.setKeys27(table, used, max)
}

// SplitValues decodes the values of a split table of nkeys keys, and their
// slots.
func (d *Decoder) SplitValues(values uint64, nkeys int) {
	if sv, err := d.readSplitValues(values, nkeys); err == nil {
		_, _ = d.slots(sv)
	}
}

// LocalVars counts c's fast locals.
func (cs *Codes) LocalVars(c *Code) (int, error) {
	vars, err := cs.localVars(c)
	return len(vars), err
}

// LineTables decodes data as each line table format and looks up the line
// at addrq in each.
func LineTables(data []byte, addrq int) {
	for _, lt := range []*lineTable{parseLnotab(data, 1, true), parseLnotab(data, 1, false), parseLinetable310(data, 1)} {
		_ = lt.line(addrq)
	}
	if lt, err := parseLocations(data, 1); err == nil {
		_ = lt.line(addrq)
	}
}
