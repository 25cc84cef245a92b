package pyrepr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Str returns repr() of a Python 3 str, or of a Python 2.7 unicode when
// v.Major is 2.
//
// The string is given as code points rather than a Go string because
// CPython strings may hold lone surrogates (U+D800–U+DFFF), which Go
// strings cannot carry. Callers decoding a PEP 393 string widen its 1-, 2-
// or 4-byte units into runes. Python 2.7 narrow (UCS-2) builds print a
// surrogate pair as one \U escape, so decoders for those builds should
// join pairs into one rune first; wide builds print each surrogate alone,
// which is what Str does with unjoined input. Values that are not code
// points (negative or above U+10FFFF) cannot occur in a valid string; they
// are printed as \U escapes of their 32-bit value so corruption stays
// visible.
func Str(cp []rune, v Version) string {
	q, wide := strQuote(cp)
	// Sized for printable BMP text, 3 bytes a code point; escapes and
	// astral code points may still grow it.
	dst := make([]byte, 0, len(cp)+2*wide+3)
	return string(appendStr(dst, cp, q, v))
}

// AppendStr appends Str(cp, v) to dst.
func AppendStr(dst []byte, cp []rune, v Version) []byte {
	q, _ := strQuote(cp)
	return appendStr(dst, cp, q, v)
}

func appendStr(dst []byte, cp []rune, q byte, v Version) []byte {
	if v.py2() {
		dst = append(dst, 'u')
	}
	dst = append(dst, q)
	esc := newStrEscaper(q, v)
	for _, c := range cp {
		if uint32(c) < utf8.RuneSelf && plain[c] && byte(c) != q {
			dst = append(dst, byte(c))
			continue
		}
		dst = esc.append(dst, c)
	}
	return append(dst, q)
}

// plain marks the ASCII bytes that every repr copies as-is, apart from
// whichever quote it chose.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < 0x7f; c++ {
		t[c] = c != '\\'
	}
	return t
}()

// strQuote implements CPython's quote choice: single quotes unless the
// text has a single quote and no double quote. It also counts the
// non-ASCII code points, to size the output.
func strQuote(cp []rune) (q byte, wide int) {
	single, double := false, false
	for _, c := range cp {
		switch {
		case c == '"':
			double = true
		case c == '\'':
			single = true
		case uint32(c) >= utf8.RuneSelf:
			wide++
		}
	}
	if single && !double {
		return '"', wide
	}
	return '\'', wide
}

func bytesQuote(b []byte) byte {
	single := false
	for _, c := range b {
		switch c {
		case '"':
			return '\''
		case '\'':
			single = true
		}
	}
	if single {
		return '"'
	}
	return '\''
}

type strEscaper struct {
	quote byte
	table *unicodeTable // nil for Python 2, which escapes all non-ASCII

	// Code points in [lo, hi] are all printable or all not, as p says.
	// Text tends to stay within one script, so this saves most searches.
	lo, hi uint32
	p      bool
}

func newStrEscaper(q byte, v Version) strEscaper {
	e := strEscaper{quote: q, lo: 1, hi: 0}
	if !v.py2() {
		e.table = tableFor(v)
	}
	return e
}

func (e *strEscaper) printable(u uint32) bool {
	// Latin-1 never changed across the supported versions: C1 controls,
	// NO-BREAK SPACE and SOFT HYPHEN are the only unprintable ones.
	if u < 0x100 {
		return u > 0xa0 && u != 0xad
	}
	if u < e.lo || u > e.hi {
		e.p, e.lo, e.hi = printableRange(u, e.table)
	}
	return e.p
}

// append writes one code point as it appears inside the quotes. The
// output is ASCII except for a printable code point copied as-is.
func (e *strEscaper) append(dst []byte, c rune) []byte {
	u := uint32(c)
	if u < utf8.RuneSelf {
		return appendASCII(dst, byte(u), e.quote)
	}
	switch {
	case e.table != nil && u <= utf8.MaxRune && e.printable(u):
		return utf8.AppendRune(dst, c)
	case u <= 0xff:
		return append(dst, '\\', 'x', hexDigits[u>>4], hexDigits[u&0xf])
	case u <= 0xffff:
		return append(dst, '\\', 'u',
			hexDigits[u>>12], hexDigits[u>>8&0xf], hexDigits[u>>4&0xf], hexDigits[u&0xf])
	default:
		dst = append(dst, '\\', 'U')
		for shift := 28; shift >= 0; shift -= 4 {
			dst = append(dst, hexDigits[u>>uint(shift)&0xf])
		}
		return dst
	}
}

// appendASCII escapes one ASCII byte the way str, unicode and bytes reprs
// all agree on.
func appendASCII(dst []byte, c, quote byte) []byte {
	switch {
	case c == quote || c == '\\':
		return append(dst, '\\', c)
	case c == '\t':
		return append(dst, '\\', 't')
	case c == '\n':
		return append(dst, '\\', 'n')
	case c == '\r':
		return append(dst, '\\', 'r')
	case c < ' ' || c >= 0x7f:
		return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(dst, c)
}

// Bytes returns repr() of a Python 3 bytes, or of a Python 2 str when py2
// is set (the same text without the b prefix).
func Bytes(b []byte, py2 bool) string {
	return string(AppendBytes(make([]byte, 0, len(b)+3), b, py2))
}

// AppendBytes appends Bytes(b, py2) to dst.
func AppendBytes(dst, b []byte, py2 bool) []byte {
	q := bytesQuote(b)
	if !py2 {
		dst = append(dst, 'b')
	}
	dst = append(dst, q)
	for _, c := range b {
		if c < utf8.RuneSelf && plain[c] && c != q {
			dst = append(dst, c)
			continue
		}
		dst = appendASCII(dst, c, q)
	}
	return append(dst, q)
}
