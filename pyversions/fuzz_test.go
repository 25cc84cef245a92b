package pyversions

import (
	"reflect"
	"testing"
)

// FuzzDecodeDebugOffsets feeds arbitrary bytes at _PyRuntime to the
// descriptor decoder: it must return quickly without panicking, and a
// descriptor it accepts must give a layout whose offsets are all bounded.
func FuzzDecodeDebugOffsets(f *testing.F) {
	real := loadReal313(f)
	syn314, _ := synthetic314(f)
	seeds := [][]byte{
		real,
		withVersion(real, 3, 16),
		withVersion(real, 3, 14),
		syn314,
		withVersion(syn314, 3, 16),
		withVersion(syn314, 3, 13),
		real[:64],
		[]byte(debugCookie),
	}
	for v := range realDescriptors {
		b := loadReal(f, v)
		seeds = append(seeds, b, withVersion(b, 3, 16))
	}
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, d, err := LayoutFromDebugOffsets(b)
		if err != nil {
			return
		}
		if d.FreeThreaded {
			t.Fatal("free-threaded descriptor accepted")
		}
		v := reflect.ValueOf(l).Elem()
		for i := 0; i < v.NumField(); i++ {
			g := v.Field(i)
			if g.Kind() != reflect.Struct || v.Type().Field(i).Name == "Version" {
				continue
			}
			for j := 0; j < g.NumField(); j++ {
				if x := g.Field(j).Int(); x < Absent || x > maxStateSize {
					t.Fatalf("%s.%s = %d", v.Type().Field(i).Name, g.Type().Field(j).Name, x)
				}
			}
		}
	})
}
