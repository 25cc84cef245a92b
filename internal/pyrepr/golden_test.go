package pyrepr

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// The golden tables were printed by Python 3.13.0, 3.12.1, 3.6.15 and
// 2.7.18 (see TestAgainstInterpreters for the full comparison); they keep
// the package tested on machines without those interpreters.

var floatGolden = []struct {
	in   float64
	want string
}{
	{0.0, "0.0"},
	{math.Copysign(0, -1), "-0.0"},
	{1.5, "1.5"},
	{0.1, "0.1"},
	{1.0 / 3, "0.3333333333333333"},
	{1e-07, "1e-07"},
	{1e-05, "1e-05"},
	{0.0001, "0.0001"},
	{1e+16, "1e+16"},
	{1e15, "1000000000000000.0"},
	{9999999999999998.0, "9999999999999998.0"},
	{123456789.123, "123456789.123"},
	{5e-324, "5e-324"},
	{1.7976931348623157e308, "1.7976931348623157e+308"},
	{math.Inf(1), "inf"},
	{math.Inf(-1), "-inf"},
	{math.NaN(), "nan"},
	{1 << 53, "9007199254740992.0"},
	{1.5e300, "1.5e+300"},
	{-2.5e-10, "-2.5e-10"},
	{100, "100.0"},
	{0.00012345, "0.00012345"},
	{1e22, "1e+22"},
	{123456.789e3, "123456789.0"},
	{-math.NaN(), "nan"},
	{1e16 - 2, "9999999999999998.0"},
	{2.2250738585072014e-308, "2.2250738585072014e-308"},
}

func TestFloatGolden(t *testing.T) {
	for _, tc := range floatGolden {
		if got := Float(tc.in); got != tc.want {
			t.Errorf("Float(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

var strGolden = []struct {
	name string
	in   []rune
	v    Version
	want string
}{
	{"", []rune{}, Version{3, 13}, "''"},
	{"ascii", []rune{0x68, 0x65, 0x6c, 0x6c, 0x6f}, Version{3, 13}, "'hello'"},
	{"quotes", []rune{0x69, 0x74, 0x27, 0x73}, Version{3, 13}, "\"it's\""},
	{"both quotes", []rune{0x69, 0x74, 0x27, 0x73, 0x20, 0x22, 0x78, 0x22}, Version{3, 13}, "'it\\'s \"x\"'"},
	{"dq", []rune{0x22}, Version{3, 13}, "'\"'"},
	{"backslash", []rune{0x61, 0x5c, 0x62}, Version{3, 13}, "'a\\\\b'"},
	{"controls", []rune{0x0, 0x7, 0x8, 0x9, 0xa, 0xb, 0xc, 0xd, 0x1b, 0x1f, 0x7f}, Version{3, 13}, "'\\x00\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x1b\\x1f\\x7f'"},
	{"latin1", []rune{0x80, 0x9f, 0xa0, 0xa1, 0xad, 0xe9, 0xff}, Version{3, 13}, "'\\x80\\x9f\\xa0\u00a1\\xad\u00e9\u00ff'"},
	{"ucs2", []rune{0x200b, 0x2028, 0x2029, 0xd800, 0xdfff, 0xfeff, 0xffff, 0x4e2d, 0x20bf, 0x3000}, Version{3, 13}, "'\\u200b\\u2028\\u2029\\ud800\\udfff\\ufeff\\uffff\u4e2d\u20bf\\u3000'"},
	{"pair", []rune{0xd834, 0xdd1e}, Version{3, 13}, "'\\ud834\\udd1e'"},
	{"ucs4", []rune{0x1d11e, 0xe0001, 0x10ffff, 0x1f97a, 0x2ebf0, 0x1f600}, Version{3, 13}, "'\U0001d11e\\U000e0001\\U0010ffff\U0001f97a\U0002ebf0\U0001f600'"},
	{"u31ef", []rune{0x31ef}, Version{3, 13}, "'\u31ef'"},
	{"cjk-ext-i", []rune{0x2ebf0}, Version{3, 13}, "'\U0002ebf0'"},
	{"ucs4", []rune{0x1d11e, 0xe0001, 0x10ffff, 0x1f97a, 0x2ebf0, 0x1f600}, Version{3, 12}, "'\U0001d11e\\U000e0001\\U0010ffff\U0001f97a\\U0002ebf0\U0001f600'"},
	{"u31ef", []rune{0x31ef}, Version{3, 12}, "'\\u31ef'"},
	{"cjk-ext-i", []rune{0x2ebf0}, Version{3, 12}, "'\\U0002ebf0'"},
	{"ucs2", []rune{0x200b, 0x2028, 0x2029, 0xd800, 0xdfff, 0xfeff, 0xffff, 0x4e2d, 0x20bf, 0x3000}, Version{3, 6}, "'\\u200b\\u2028\\u2029\\ud800\\udfff\\ufeff\\uffff\u4e2d\\u20bf\\u3000'"},
	{"ucs4", []rune{0x1d11e, 0xe0001, 0x10ffff, 0x1f97a, 0x2ebf0, 0x1f600}, Version{3, 6}, "'\U0001d11e\\U000e0001\\U0010ffff\\U0001f97a\\U0002ebf0\U0001f600'"},
	{"u31ef", []rune{0x31ef}, Version{3, 6}, "'\\u31ef'"},
	{"cjk-ext-i", []rune{0x2ebf0}, Version{3, 6}, "'\\U0002ebf0'"},
	{"", []rune{}, Version{2, 7}, "u''"},
	{"ascii", []rune{0x68, 0x65, 0x6c, 0x6c, 0x6f}, Version{2, 7}, "u'hello'"},
	{"quotes", []rune{0x69, 0x74, 0x27, 0x73}, Version{2, 7}, "u\"it's\""},
	{"both quotes", []rune{0x69, 0x74, 0x27, 0x73, 0x20, 0x22, 0x78, 0x22}, Version{2, 7}, "u'it\\'s \"x\"'"},
	{"dq", []rune{0x22}, Version{2, 7}, "u'\"'"},
	{"backslash", []rune{0x61, 0x5c, 0x62}, Version{2, 7}, "u'a\\\\b'"},
	{"controls", []rune{0x0, 0x7, 0x8, 0x9, 0xa, 0xb, 0xc, 0xd, 0x1b, 0x1f, 0x7f}, Version{2, 7}, "u'\\x00\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x1b\\x1f\\x7f'"},
	{"latin1", []rune{0x80, 0x9f, 0xa0, 0xa1, 0xad, 0xe9, 0xff}, Version{2, 7}, "u'\\x80\\x9f\\xa0\\xa1\\xad\\xe9\\xff'"},
	{"ucs2", []rune{0x200b, 0x2028, 0x2029, 0xd800, 0xdfff, 0xfeff, 0xffff, 0x4e2d, 0x20bf, 0x3000}, Version{2, 7}, "u'\\u200b\\u2028\\u2029\\ud800\\udfff\\ufeff\\uffff\\u4e2d\\u20bf\\u3000'"},
	{"pair", []rune{0xd834, 0xdd1e}, Version{2, 7}, "u'\\ud834\\udd1e'"},
	{"ucs4", []rune{0x1d11e, 0xe0001, 0x10ffff, 0x1f97a, 0x2ebf0, 0x1f600}, Version{2, 7}, "u'\\U0001d11e\\U000e0001\\U0010ffff\\U0001f97a\\U0002ebf0\\U0001f600'"},
	{"u31ef", []rune{0x31ef}, Version{2, 7}, "u'\\u31ef'"},
	{"cjk-ext-i", []rune{0x2ebf0}, Version{2, 7}, "u'\\U0002ebf0'"},
	// Not from Python, which cannot hold these: see Str.
	{"beyond U+10FFFF", []rune{0x110000, -1}, Version{3, 13}, `'\U00110000\Uffffffff'`},
	{"beyond U+10FFFF", []rune{0x110000}, Version{2, 7}, `u'\U00110000'`},
	// Versions outside the generated tables use the nearest one.
	{"zero Version", []rune{0x2ebf0}, Version{}, "'\U0002ebf0'"},
	{"future", []rune{0x2ebf0}, Version{3, 14}, "'\U0002ebf0'"},
	{"pre-3.6", []rune{0x20bf}, Version{3, 5}, `'\u20bf'`},
}

func TestStrGolden(t *testing.T) {
	for _, tc := range strGolden {
		if got := Str(tc.in, tc.v); got != tc.want {
			t.Errorf("%s: Str(%U, %v) = %q, want %q", tc.name, tc.in, tc.v, got, tc.want)
		}
		var b Builder
		b.WriteStrRepr(tc.in, tc.v)
		if got := b.String(); got != tc.want {
			t.Errorf("%s: WriteStrRepr(%U, %v) = %q, want %q", tc.name, tc.in, tc.v, got, tc.want)
		}
	}
}

var bytesGolden = []struct {
	in   []byte
	py2  bool
	want string
}{
	{[]byte{}, false, "b''"},
	{[]byte{0x61, 0x62, 0x63}, false, "b'abc'"},
	{[]byte{0x69, 0x74, 0x27, 0x73}, false, "b\"it's\""},
	{[]byte{0x69, 0x74, 0x27, 0x73, 0x20, 0x22, 0x78, 0x22}, false, "b'it\\'s \"x\"'"},
	{[]byte{0x0, 0x9, 0xa, 0xd, 0x1f, 0x7f, 0x80, 0xff, 0x5c}, false, "b'\\x00\\t\\n\\r\\x1f\\x7f\\x80\\xff\\\\'"},
	{[]byte{}, true, "''"},
	{[]byte{0x61, 0x62, 0x63}, true, "'abc'"},
	{[]byte{0x69, 0x74, 0x27, 0x73}, true, "\"it's\""},
	{[]byte{0x69, 0x74, 0x27, 0x73, 0x20, 0x22, 0x78, 0x22}, true, "'it\\'s \"x\"'"},
	{[]byte{0x0, 0x9, 0xa, 0xd, 0x1f, 0x7f, 0x80, 0xff, 0x5c}, true, "'\\x00\\t\\n\\r\\x1f\\x7f\\x80\\xff\\\\'"},
}

func TestBytesGolden(t *testing.T) {
	for _, tc := range bytesGolden {
		if got := Bytes(tc.in, tc.py2); got != tc.want {
			t.Errorf("Bytes(%q, %v) = %q, want %q", tc.in, tc.py2, got, tc.want)
		}
	}
}

var intGolden = []struct {
	mag  []uint32
	neg  bool
	want string
}{
	{[]uint32{}, false, "0"},
	{[]uint32{0x1}, false, "1"},
	{[]uint32{0x1}, true, "-1"},
	{[]uint32{0x3fffffff}, false, "1073741823"},
	{[]uint32{0x3fffffff}, true, "-1073741823"},
	{[]uint32{0x0, 0x1}, false, "1073741824"},
	{[]uint32{0x0, 0x1}, true, "-1073741824"},
	{[]uint32{0x0, 0x0, 0x1}, false, "1152921504606846976"},
	{[]uint32{0x0, 0x0, 0x1}, true, "-1152921504606846976"},
	{[]uint32{0x0, 0x0, 0x10}, false, "18446744073709551616"},
	{[]uint32{0x0, 0x0, 0x0, 0xba3c400, 0x324308a8, 0x469f2aa, 0x2ce408e2, 0x3382fce2, 0xb2784c4, 0x130df3ac, 0x249ad259, 0x4}, false, "10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
	{[]uint32{0x0, 0x0, 0x0, 0xba3c400, 0x324308a8, 0x469f2aa, 0x2ce408e2, 0x3382fce2, 0xb2784c4, 0x130df3ac, 0x249ad259, 0x4}, true, "-10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
	{[]uint32{0x3039, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1}, false, "2037035976334486086268445688409378161051468393665936250636140449354381299763336706183409721"},
	{[]uint32{0x3039, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x1}, true, "-2037035976334486086268445688409378161051468393665936250636140449354381299763336706183409721"},
	// Not from Python: non-normalized and corrupt inputs, see Int.
	{nil, true, "0"},
	{[]uint32{0, 0}, true, "0"},
	{[]uint32{5, 0, 0, 0}, true, "-5"},
	{[]uint32{0xffffffff}, false, "1073741823"},
	{[]uint32{0xc0000000, 0x40000001, 0xc0000000, 0x80000000}, false, "1073741824"},
	{[]uint32{0x3fffffff, 0x3fffffff}, false, "1152921504606846975"},
	{[]uint32{0x3fffffff, 0x3fffffff, 0x3fffffff}, false, "1237940039285380274899124223"},
}

func TestIntGolden(t *testing.T) {
	for _, tc := range intGolden {
		if got := Int(tc.mag, tc.neg); got != tc.want {
			t.Errorf("Int(%x, %v) = %q, want %q", tc.mag, tc.neg, got, tc.want)
		}
	}
	if !ValidDigits([]uint32{0, 0x3fffffff}) || ValidDigits([]uint32{0x40000000}) {
		t.Error("ValidDigits misjudges the 30-bit boundary")
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s     string
		limit int
		want  string
	}{
		{"hello", 5, "hello"},
		{"hello!", 5, "he..."},
		{"hello", 0, "hello"},
		{"hello", -1, "hello"},
		{"hello", 4, "h..."},
		{"hello", 3, "..."},
		{"hello", 2, ".."},
		{"hello", 1, "."},
		{"ab", 1, "."},
		{"a", 1, "a"},
		{"", 1, ""},
		{"日本語テキスト", 6, "日本語..."},
		{"日本語テキ", 5, "日本語テキ"},
		{"\xff\xfeabc", 4, "\xff..."},
	} {
		if got := Truncate(tc.s, tc.limit); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.limit, got, tc.want)
		}
		// Every way of feeding a Builder must cut the same way.
		feeds := map[string]func(b *Builder){
			"WriteString": func(b *Builder) { _, _ = b.WriteString(tc.s) },
			"Write":       func(b *Builder) { _, _ = b.Write([]byte(tc.s)) },
			"WriteString by halves": func(b *Builder) {
				half := len(tc.s) / 2
				for half > 0 && !utf8.RuneStart(tc.s[half]) {
					half--
				}
				_, _ = b.WriteString(tc.s[:half])
				_, _ = b.WriteString(tc.s[half:])
			},
		}
		if utf8.ValidString(tc.s) {
			feeds["WriteRune"] = func(b *Builder) {
				for _, r := range tc.s {
					_, _ = b.WriteRune(r)
				}
			}
		}
		for name, feed := range feeds {
			b := Builder{Max: tc.limit}
			feed(&b)
			if got := b.String(); got != tc.want {
				t.Errorf("Builder{Max: %d}.%s(%q) = %q, want %q", tc.limit, name, tc.s, got, tc.want)
			}
		}
	}
}

// TestBuilderStopsEarly renders a list far longer than the limit, the way
// a caller would, and checks that the work stops at the limit.
func TestBuilderStopsEarly(t *testing.T) {
	b := Builder{Max: 20}
	_ = b.WriteByte('[')
	visited := 0
	for i := range 1_000_000 {
		if b.Full() {
			break
		}
		visited++
		if i > 0 {
			_, _ = b.WriteString(Sep)
		}
		b.WriteInt([]uint32{uint32(i)}, false)
	}
	if visited > 20 {
		t.Errorf("visited %d elements for a 20-rune limit", visited)
	}
	if got, want := b.String(), "[0, 1, 2, 3, 4, 5..."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(b.buf) > 40 {
		t.Errorf("kept %d bytes for a 20-rune limit", len(b.buf))
	}

	long := []rune(strings.Repeat("é\x00", 1_000_000))
	b = Builder{Max: 10}
	b.WriteStrRepr(long, Version{3, 12})
	if got, want := b.String(), `'é\x00é...`; got != want {
		t.Errorf("WriteStrRepr: got %q, want %q", got, want)
	}
	if len(b.buf) > 30 {
		t.Errorf("WriteStrRepr kept %d bytes for a 10-rune limit", len(b.buf))
	}

	b = Builder{Max: 8}
	b.WriteBytesRepr([]byte(strings.Repeat("\x01", 1_000_000)), false)
	if got, want := b.String(), `b'\x0...`; got != want {
		t.Errorf("WriteBytesRepr: got %q, want %q", got, want)
	}
}

func TestBuilderUnlimited(t *testing.T) {
	var b Builder
	_, _ = b.WriteString("[")
	b.WriteFloat(1.5)
	_, _ = b.Write([]byte(Sep))
	b.WriteStrRepr([]rune("it's"), Version{3, 11})
	_, _ = b.WriteString(Sep)
	b.WriteBytesRepr([]byte{0}, true)
	_, _ = b.WriteRune('…')
	_ = b.WriteByte(']')
	if got, want := b.String(), `[1.5, "it's", '\x00'…]`; got != want || b.Full() {
		t.Errorf("got %q (full %v), want %q", got, b.Full(), want)
	}
	b.Reset()
	if b.String() != "" || b.Full() {
		t.Error("Reset left text behind")
	}
}

func TestTupleClose(t *testing.T) {
	for n, want := range []string{")", ",)", ")", ")"} {
		if got := TupleClose(n); got != want {
			t.Errorf("TupleClose(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSetDelimiters(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		v    Version
		want string
	}{
		{"set", 0, Version{3, 13}, "set()"},
		{"set", 2, Version{3, 13}, "{...}"},
		{"frozenset", 0, Version{3, 6}, "frozenset()"},
		{"frozenset", 2, Version{3, 6}, "frozenset({...})"},
		{"MySet", 2, Version{3, 6}, "MySet({...})"},
		{"set", 0, Version{2, 7}, "set([])"},
		{"set", 2, Version{2, 7}, "set([...])"},
		{"frozenset", 0, Version{2, 7}, "frozenset([])"},
	} {
		inner := ""
		if tc.n > 0 {
			inner = "..."
		}
		if got := SetOpen(tc.name, tc.n, tc.v) + inner + SetClose(tc.name, tc.n, tc.v); got != tc.want {
			t.Errorf("%s of %d in %v: got %q, want %q", tc.name, tc.n, tc.v, got, tc.want)
		}
	}
}
