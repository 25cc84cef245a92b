package pyrepr

import (
	"math/big"
	"strconv"
)

// DigitBits is the width of one CPython long digit on 64-bit builds
// (sys.int_info.bits_per_digit; also sys.long_info in Python 2.7).
const DigitBits = 30

const digitMask = 1<<DigitBits - 1

// Int returns repr() of a Python 3 int, or of a Python 2 long without its
// "L" suffix, from the magnitude's base-2**30 digits (least significant
// first, as in ob_digit) and its sign. A Python 2 int is a C long; format
// it with strconv.
//
// Bits above the low 30 of a digit never occur in a valid object, so they
// are ignored rather than reported: a profiler should show something for a
// value caught mid-update. Use ValidDigits to detect them. Leading zero
// digits are allowed, and a negative zero prints as "0", since Python has
// no negative zero int.
//
// Python 3.11, 3.10.7, 3.9.14, 3.8.14 and 3.7.14 raise ValueError instead
// of printing more than sys.get_int_max_str_digits() (default 4300) digits;
// Int prints them all and leaves the limit to the caller.
func Int(mag []uint32, negative bool) string {
	return string(AppendInt(nil, mag, negative))
}

// AppendInt appends Int(mag, negative) to dst.
func AppendInt(dst []byte, mag []uint32, negative bool) []byte {
	for len(mag) > 0 && mag[len(mag)-1]&digitMask == 0 {
		mag = mag[:len(mag)-1]
	}
	if len(mag) == 0 {
		return append(dst, '0')
	}
	if negative {
		dst = append(dst, '-')
	}
	if len(mag) <= 2 {
		var u uint64
		for i := len(mag) - 1; i >= 0; i-- {
			u = u<<DigitBits | uint64(mag[i]&digitMask)
		}
		return strconv.AppendUint(dst, u, 10)
	}
	return new(big.Int).SetBits(words(mag)).Append(dst, 10)
}

// ValidDigits reports whether every digit fits in 30 bits, as CPython
// guarantees for a live object.
func ValidDigits(mag []uint32) bool {
	for _, d := range mag {
		if d > digitMask {
			return false
		}
	}
	return true
}

// words repacks 30-bit digits into big.Words.
func words(mag []uint32) []big.Word {
	const wordBits = 32 << (^uint(0) >> 63)
	out := make([]big.Word, 0, (len(mag)*DigitBits+wordBits-1)/wordBits)
	var acc big.Word
	n := 0 // bits held in acc
	for _, d := range mag {
		v := big.Word(d & digitMask)
		acc |= v << uint(n)
		n += DigitBits
		if n >= wordBits {
			out = append(out, acc)
			n -= wordBits
			// Keep the digit's bits that did not fit in the full word.
			acc = v >> uint(DigitBits-n)
		}
	}
	if n > 0 {
		out = append(out, acc)
	}
	return out
}
