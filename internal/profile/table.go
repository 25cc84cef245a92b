package profile

// table finds items kept in a slice by their value: open addressing with
// linear probing over slots that hold an item's index plus one (0 is a
// free slot). An item costs 5 to 11 bytes of slots, where a map would
// hold a copy of its key besides the slice's.
type table struct {
	slots []uint32 // a power of two long, at most three quarters full
	n     int
}

// find returns the index of the item of hash h for which eq is true.
func (t *table) find(h uint64, eq func(i uint32) bool) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for s := h & mask; ; s = (s + 1) & mask {
		v := t.slots[s]
		if v == 0 {
			return 0, false
		}
		if eq(v - 1) {
			return v - 1, true
		}
	}
}

// insert adds the item of index i and hash h, which find did not find.
// hash gives any item's hash, to place them all again when the table
// grows.
func (t *table) insert(h uint64, i uint32, hash func(i uint32) uint64) {
	if 4*(t.n+1) > 3*len(t.slots) {
		old := t.slots
		t.slots = make([]uint32, max(2*len(old), 16))
		for _, v := range old {
			if v != 0 {
				t.place(hash(v-1), v)
			}
		}
	}
	t.place(h, i+1)
	t.n++
}

func (t *table) place(h uint64, v uint32) {
	mask := uint64(len(t.slots) - 1)
	s := h & mask
	for t.slots[s] != 0 {
		s = (s + 1) & mask
	}
	t.slots[s] = v
}

// mix is splitmix64's finalizer: every bit of h reaches the low bits,
// which pick the slot.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}
