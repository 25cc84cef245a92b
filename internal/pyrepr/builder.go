package pyrepr

import "unicode/utf8"

// Ellipsis ends a truncated value.
const Ellipsis = "..."

// Truncate shortens s to at most limit runes: when s has more, it keeps
// the first limit-3 and appends "...". Limits below 3 leave only dots. A
// non-positive limit means no limit. Invalid UTF-8 bytes count
// as one rune each, as in utf8.RuneCountInString.
func Truncate(s string, limit int) string {
	if limit <= 0 {
		return s
	}
	keep := limit - len(Ellipsis)
	cut := 0
	n := 0
	for i := range s {
		if n == keep {
			cut = i
		}
		if n == limit {
			if keep < 0 {
				return Ellipsis[:limit]
			}
			return s[:cut] + Ellipsis
		}
		n++
	}
	return s
}

// Builder accumulates the repr of a container and stops accepting text
// once it holds more than Max runes, so that rendering a list with a
// million elements costs O(Max): callers check Full after each element and
// stop iterating. String then returns the text cut as Truncate would. A
// non-positive Max means no limit; the zero Builder is ready to use.
//
// The write methods never fail; they return errors only to satisfy
// io.Writer and io.StringWriter.
type Builder struct {
	Max int

	buf  []byte
	n    int // runes in buf
	full bool
}

// Full reports whether more than Max runes have been written.
func (b *Builder) Full() bool { return b.full }

// Reset empties b, keeping Max and the buffer's storage.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.n = 0
	b.full = false
}

// String returns the text written so far, truncated to Max runes.
func (b *Builder) String() string {
	if !b.full {
		return string(b.buf)
	}
	keep := b.Max - len(Ellipsis)
	if keep < 0 {
		return Ellipsis[:b.Max]
	}
	cut := 0
	for n := 0; n < keep; n++ {
		_, size := utf8.DecodeRune(b.buf[cut:])
		cut += size
	}
	return string(b.buf[:cut]) + Ellipsis
}

// WriteString appends s, keeping only the runes needed to know that the
// limit was passed.
func (b *Builder) WriteString(s string) (int, error) {
	if b.full {
		return len(s), nil
	}
	if b.Max <= 0 {
		b.buf = append(b.buf, s...)
		b.n += utf8.RuneCountInString(s)
		return len(s), nil
	}
	room := b.Max + 1 - b.n
	n := 0
	end := len(s)
	for i := range s {
		if n == room {
			end = i
			break
		}
		n++
	}
	b.buf = append(b.buf, s[:end]...)
	b.added(n)
	return len(s), nil
}

// Write is WriteString for byte slices.
func (b *Builder) Write(p []byte) (int, error) {
	if b.full {
		return len(p), nil
	}
	if b.Max <= 0 {
		b.buf = append(b.buf, p...)
		b.n += utf8.RuneCount(p)
		return len(p), nil
	}
	room := b.Max + 1 - b.n
	n := 0
	end := 0
	for end < len(p) && n < room {
		_, size := utf8.DecodeRune(p[end:])
		end += size
		n++
	}
	b.buf = append(b.buf, p[:end]...)
	b.added(n)
	return len(p), nil
}

// WriteByte appends one byte, counted as one rune.
func (b *Builder) WriteByte(c byte) error {
	if !b.full {
		b.buf = append(b.buf, c)
		b.added(1)
	}
	return nil
}

// WriteRune appends r encoded as UTF-8.
func (b *Builder) WriteRune(r rune) (int, error) {
	if !b.full {
		b.buf = utf8.AppendRune(b.buf, r)
		b.added(1)
	}
	return utf8.RuneLen(r), nil
}

// WriteStrRepr appends Str(cp, v), escaping only as much of cp as fits.
// Choosing the quote still scans all of cp, as repr() does, but that scan
// writes nothing.
func (b *Builder) WriteStrRepr(cp []rune, v Version) {
	if b.full {
		return
	}
	q, _ := strQuote(cp)
	if v.py2() {
		_ = b.WriteByte('u')
	}
	_ = b.WriteByte(q)
	esc := newStrEscaper(q, v)
	for _, c := range cp {
		if b.full {
			return
		}
		start := len(b.buf)
		b.buf = esc.append(b.buf, c)
		// An escape is all ASCII; anything else is one rune copied as-is.
		if b.buf[start] < utf8.RuneSelf {
			b.added(len(b.buf) - start)
		} else {
			b.added(1)
		}
	}
	_ = b.WriteByte(q)
}

// WriteBytesRepr appends Bytes(p, py2), escaping only as much of p as fits.
func (b *Builder) WriteBytesRepr(p []byte, py2 bool) {
	if b.full {
		return
	}
	q := bytesQuote(p)
	if !py2 {
		_ = b.WriteByte('b')
	}
	_ = b.WriteByte(q)
	for _, c := range p {
		if b.full {
			return
		}
		start := len(b.buf)
		b.buf = appendASCII(b.buf, c, q)
		b.added(len(b.buf) - start)
	}
	_ = b.WriteByte(q)
}

// WriteFloat appends Float(f) without allocating.
func (b *Builder) WriteFloat(f float64) {
	if !b.full {
		start := len(b.buf)
		b.buf = AppendFloat(b.buf, f)
		b.added(len(b.buf) - start)
	}
}

// WriteInt appends Int(mag, negative).
func (b *Builder) WriteInt(mag []uint32, negative bool) {
	if !b.full {
		start := len(b.buf)
		b.buf = AppendInt(b.buf, mag, negative)
		b.added(len(b.buf) - start)
	}
}

// added accounts for n runes just appended to buf. A write may overshoot
// Max by one escape or number; String cuts before it anyway.
func (b *Builder) added(n int) {
	b.n += n
	if b.Max > 0 && b.n > b.Max {
		b.full = true
	}
}
