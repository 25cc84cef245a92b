package pyrepr

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var fuzzVersions = []Version{
	{2, 7}, {3, 6}, {3, 7}, {3, 8}, {3, 9}, {3, 10}, {3, 11}, {3, 12}, {3, 13}, {3, 14},
}

// maxFuzzLen bounds the inputs worth running: longer ones reach no new
// code, yet each new one would make the fuzzer minimize it for a minute.
const maxFuzzLen = 1024

// fuzzRunes reads each 3 bytes as one code point, reduced modulo 0x110000
// so that all of Unicode, surrogates included, is reachable.
func fuzzRunes(data []byte) []rune {
	cp := make([]rune, 0, len(data)/3)
	for i := 0; i+3 <= len(data); i += 3 {
		u := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16
		cp = append(cp, rune(u%0x110000))
	}
	return cp
}

// unquote parses a repr() literal back into code points, independently of
// the escaping code, so that a round trip proves nothing was lost.
func unquote(t *testing.T, lit, prefix string) []rune {
	t.Helper()
	if !strings.HasPrefix(lit, prefix) || len(lit) < len(prefix)+2 {
		t.Fatalf("%q lacks prefix %q or quotes", lit, prefix)
	}
	body := lit[len(prefix):]
	q := body[0]
	if (q != '\'' && q != '"') || body[len(body)-1] != q {
		t.Fatalf("%q is not quoted", lit)
	}
	body = body[1 : len(body)-1]
	var out []rune
	for len(body) > 0 {
		r, size := utf8.DecodeRuneInString(body)
		if r == utf8.RuneError && size <= 1 {
			t.Fatalf("%q: invalid UTF-8", lit)
		}
		body = body[size:]
		if r == rune(q) {
			t.Fatalf("%q: unescaped quote", lit)
		}
		if r != '\\' {
			out = append(out, r)
			continue
		}
		if body == "" {
			t.Fatalf("%q: dangling backslash", lit)
		}
		e := body[0]
		body = body[1:]
		width := 0
		switch e {
		case '\\', '\'', '"':
			if e != '\\' && e != q {
				t.Fatalf("%q: needless escape of %c", lit, e)
			}
			out = append(out, rune(e))
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'x':
			width = 2
		case 'u':
			width = 4
		case 'U':
			width = 8
		default:
			t.Fatalf("%q: unknown escape \\%c", lit, e)
		}
		if width == 0 {
			continue
		}
		if len(body) < width {
			t.Fatalf("%q: short escape", lit)
		}
		h := body[:width]
		if strings.ToLower(h) != h {
			t.Fatalf("%q: upper-case hex", lit)
		}
		u, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			t.Fatalf("%q: %v", lit, err)
		}
		if width == 4 && u <= 0xff || width == 8 && u <= 0xffff {
			t.Fatalf("%q: escape \\%c%s is wider than needed", lit, e, h)
		}
		body = body[width:]
		out = append(out, rune(u))
	}
	return out
}

func FuzzStr(f *testing.F) {
	f.Add([]byte("a\x00\x00'\x00\x00\"\x00\x00"), uint8(0))
	f.Add([]byte("\x00\xd8\x00\x1e\xd1\x01\xf0\xeb\x02"), uint8(7))
	f.Add([]byte("\xff\xff\x10\xad\x00\x00"), uint8(8))
	f.Fuzz(checkStr)
}

// checkStr is FuzzStr's body: Str must lose nothing, escape exactly the
// unprintable code points, and agree with Builder and Truncate.
func checkStr(t *testing.T, data []byte, which uint8) {
	if len(data) > maxFuzzLen {
		return
	}
	cp := fuzzRunes(data)
	v := fuzzVersions[int(which)%len(fuzzVersions)]
	got := Str(cp, v)
	prefix := ""
	if v.Major == 2 {
		prefix = "u"
		for i := 0; i < len(got); i++ {
			if got[i] >= utf8.RuneSelf {
				t.Fatalf("Python 2 repr %q is not ASCII", got)
			}
		}
	}
	back := unquote(t, got, prefix)
	if !slices.Equal(back, cp) {
		t.Fatalf("Str(%U, %v) = %q decodes to %U", cp, v, got, back)
	}
	// Go's unicode tables are an independent oracle for the one
	// version whose Unicode they share.
	if v == (Version{3, 12}) && unicode.Version == "15.0.0" {
		for _, r := range cp {
			raw := utf8.RuneCountInString(Str([]rune{r}, v)) == 3
			if r >= utf8.RuneSelf && raw != unicode.IsPrint(r) {
				t.Fatalf("Str(%U, 3.12): U+%04X raw=%v, unicode.IsPrint=%v", cp, r, raw, !raw)
			}
		}
	}
	limit := (int(which)*7+len(data))%(len(got)+2) + 1
	b := Builder{Max: limit}
	b.WriteStrRepr(cp, v)
	if want := Truncate(got, limit); b.String() != want {
		t.Fatalf("Builder{Max: %d}.WriteStrRepr = %q, want %q", limit, b.String(), want)
	}
	if b.Full() != (utf8.RuneCountInString(got) > limit) {
		t.Fatalf("Full() = %v for %q with Max %d", b.Full(), got, limit)
	}
}

func FuzzBytes(f *testing.F) {
	f.Add([]byte("it's"), false)
	f.Add([]byte("\x00\x7f\x80\xff\\\"'"), true)
	f.Fuzz(func(t *testing.T, data []byte, py2 bool) {
		if len(data) > maxFuzzLen {
			return
		}
		got := Bytes(data, py2)
		prefix := "b"
		if py2 {
			prefix = ""
		}
		for i := 0; i < len(got); i++ {
			if got[i] >= utf8.RuneSelf {
				t.Fatalf("Bytes(%q) = %q is not ASCII", data, got)
			}
		}
		back := unquote(t, got, prefix)
		if len(back) != len(data) {
			t.Fatalf("Bytes(%q) = %q decodes to %U", data, got, back)
		}
		for i, r := range back {
			if r != rune(data[i]) {
				t.Fatalf("Bytes(%q) = %q decodes to %U", data, got, back)
			}
		}
		limit := len(data)%(len(got)+2) + 1
		b := Builder{Max: limit}
		b.WriteBytesRepr(data, py2)
		if want := Truncate(got, limit); b.String() != want {
			t.Fatalf("Builder{Max: %d}.WriteBytesRepr = %q, want %q", limit, b.String(), want)
		}
	})
}

var floatShape = regexp.MustCompile(`^-?(?:\d+\.\d+|\d(?:\.\d+)?e[+-]\d\d\d?|inf|nan)$`)

func FuzzFloat(f *testing.F) {
	for _, x := range []float64{0, 1e16, 1e-5, 9999999999999998, 5e-324, math.MaxFloat64} {
		f.Add(math.Float64bits(x))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		got := Float(x)
		if !floatShape.MatchString(got) {
			t.Fatalf("Float(%016x) = %q has an impossible shape", bits, got)
		}
		var b Builder
		b.WriteFloat(x)
		if b.String() != got {
			t.Fatalf("WriteFloat(%016x) = %q, Float = %q", bits, b.String(), got)
		}
		if math.IsNaN(x) {
			if got != "nan" {
				t.Fatalf("Float(%016x) = %q", bits, got)
			}
			return
		}
		y, err := strconv.ParseFloat(got, 64)
		if err != nil || math.Float64bits(y) != bits {
			t.Fatalf("Float(%016x) = %q does not round-trip: %v %v", bits, got, y, err)
		}
		if math.IsInf(x, 0) {
			return
		}
		a := math.Abs(x)
		if fixed := !strings.Contains(got, "e"); fixed != (a == 0 || a >= 1e-4 && a < 1e16) {
			t.Fatalf("Float(%v) = %q uses the wrong notation", x, got)
		}
		// Shortest: no shorter digit string of the same notation round-trips.
		if want := strconv.FormatFloat(x, 'e', -1, 64); digitCount(got) != digitCount(want) {
			t.Fatalf("Float(%v) = %q, not as short as %q", x, got, want)
		}
	})
}

// digitCount counts significant digits, ignoring leading zeros, trailing
// fixed-notation zeros and the exponent.
func digitCount(s string) int {
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimLeft(strings.NewReplacer("-", "", ".", "").Replace(s), "0")
	s = strings.TrimRight(s, "0")
	return max(len(s), 1)
}

func FuzzInt(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0xff, 0x3f}, true)
	f.Add([]byte{0, 0, 0, 0x40, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, false)
	f.Fuzz(func(t *testing.T, data []byte, neg bool) {
		if len(data) > maxFuzzLen {
			return
		}
		mag := make([]uint32, len(data)/4)
		valid := true
		for i := range mag {
			mag[i] = uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24
			valid = valid && mag[i] < 1<<30
		}
		// Only the low 30 bits of each digit count: see Int. Spelling the
		// value in binary keeps the oracle linear and independent of Int.
		var bin strings.Builder
		bin.WriteString("0")
		for i := len(mag) - 1; i >= 0; i-- {
			fmt.Fprintf(&bin, "%030b", mag[i]&(1<<30-1))
		}
		want, _ := new(big.Int).SetString(bin.String(), 2)
		if neg {
			want.Neg(want)
		}
		if got := Int(mag, neg); got != want.String() {
			t.Fatalf("Int(%x, %v) = %q, want %s", mag, neg, got, want)
		}
		if ValidDigits(mag) != valid {
			t.Fatalf("ValidDigits(%x) = %v", mag, !valid)
		}
	})
}
