package pyrepr

import (
	"strings"
	"testing"
)

func BenchmarkFloat(b *testing.B) {
	for _, bc := range []struct {
		name string
		f    float64
	}{
		{"short", 1.5},
		{"17digits", 0.1 + 0.2},
		{"exponent", 1e-07},
		{"integral", 1e15},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Float(bc.f)
			}
		})
	}
}

func BenchmarkStr(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    string
		v    Version
	}{
		{"ascii", strings.Repeat("hello world ", 8), Version{3, 12}},
		{"escapes", strings.Repeat("a\tb\n'\\\x00", 12), Version{3, 12}},
		{"latin1", strings.Repeat("café naïve ", 8), Version{3, 12}},
		{"cjk", strings.Repeat("日本語のテキスト", 12), Version{3, 12}},
		{"cjk-3.6", strings.Repeat("日本語のテキスト", 12), Version{3, 6}},
		{"emoji", strings.Repeat("🙂🥺 ", 32), Version{3, 13}},
		{"py2", strings.Repeat("café 日本 ", 12), Version{2, 7}},
	} {
		cp := []rune(bc.s)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(cp)))
			for b.Loop() {
				_ = Str(cp, bc.v)
			}
		})
	}
}

// BenchmarkBuilderHugeList shows that a limited Builder makes rendering a
// huge container cost the limit, not the container's size.
func BenchmarkBuilderHugeList(b *testing.B) {
	elems := make([][]rune, 1_000_000)
	for i := range elems {
		elems[i] = []rune("element")
	}
	b.ReportAllocs()
	for b.Loop() {
		bl := Builder{Max: 80}
		_ = bl.WriteByte('[')
		for i, e := range elems {
			if bl.Full() {
				break
			}
			if i > 0 {
				_, _ = bl.WriteString(Sep)
			}
			bl.WriteStrRepr(e, Version{3, 12})
		}
		_ = bl.String()
	}
}
