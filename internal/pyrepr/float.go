package pyrepr

import (
	"math"
	"strconv"
)

// Float returns repr(f) as Python 2.7 and 3.x print it.
func Float(f float64) string {
	var buf [32]byte
	return string(AppendFloat(buf[:0], f))
}

// AppendFloat appends repr(f) to dst.
//
// Python 2.7 and 3 both use David Gay's shortest round-trip digits (mode 'r'
// of PyOS_double_to_string), which strconv's shortest formatting reproduces;
// only the layout around the digits is Python's own. Python switches to
// exponent notation when the decimal exponent is below -4 or at least 16,
// always shows ".0" on integral fixed-notation values, and prints the
// exponent with a sign and at least two digits. NaN's sign is dropped.
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	// Longest output of 'e' with -1 precision is 24 bytes
	// ("-2.2250738585072014e-308").
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	// e is d[.ddd]e±XX[X]: split it into the digit string and the exponent.
	mark := len(e) - 4
	if e[mark] != 'e' {
		mark--
	}
	exp := 0
	for _, c := range e[mark+2:] {
		exp = exp*10 + int(c-'0')
	}
	if e[mark+1] == '-' {
		exp = -exp
	}
	var digs [20]byte
	digits := append(digs[:0], e[0])
	if mark > 1 {
		digits = append(digits, e[2:mark]...)
	}

	if exp < -4 || exp >= 16 {
		dst = append(dst, digits[0])
		if len(digits) > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp < 0 {
		dst = append(dst, "0."...)
		for i := -1; i > exp; i-- {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	point := exp + 1
	if point >= len(digits) {
		dst = append(dst, digits...)
		for i := len(digits); i < point; i++ {
			dst = append(dst, '0')
		}
		return append(dst, ".0"...)
	}
	dst = append(dst, digits[:point]...)
	dst = append(dst, '.')
	return append(dst, digits[point:]...)
}
