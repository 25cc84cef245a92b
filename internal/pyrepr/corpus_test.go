package pyrepr

import (
	"math"
	"math/big"
	"math/rand/v2"
)

// The corpus is shared by the interpreter comparison and the benchmarks.
// Everything random comes from fixed seeds so failures reproduce.

func corpusFloats() []float64 {
	fs := []float64{
		0, math.Copysign(0, -1), 1, -1, 1.5, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3,
		1e-07, 1e-05, 1.5e-05, 0.0001, 0.00012345, 0.001, 1e+16, 1e15, 1.5e15,
		9999999999999998.0, 1e16 - 2, 123456789.123, 5e-324, math.SmallestNonzeroFloat64 * 3,
		2.2250738585072014e-308, 2.225073858507201e-308, math.MaxFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), -math.NaN(),
		1 << 53, 1<<53 + 2, -(1 << 53), 1 << 62, 1e22, 1e23, 100, 1e100, 1.5e300,
		-2.5, 3.141592653589793, 2.718281828459045, 0.5, 0.25, 12345678901234567890,
	}
	for e := -330; e <= 310; e++ {
		p := math.Pow(10, float64(e))
		fs = append(fs, p, math.Nextafter(p, 0), math.Nextafter(p, math.Inf(1)), -p)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		fs = append(fs, math.Float64frombits(r.Uint64()))
	}
	// Values with few digits exercise fixed notation more than random bits.
	for range 10000 {
		m := float64(r.Int64N(1_000_000_000_000))
		fs = append(fs, m/math.Pow(10, float64(r.IntN(40)-10)))
	}
	for range 2000 {
		fs = append(fs, r.Float64(), -r.NormFloat64()*1e15)
	}
	return fs
}

func corpusInts() []*big.Int {
	var xs []*big.Int
	add := func(x *big.Int) { xs = append(xs, x, new(big.Int).Neg(x)) }
	pow := func(b, e int64) *big.Int { return new(big.Int).Exp(big.NewInt(b), big.NewInt(e), nil) }
	sum := func(a *big.Int, b int64) *big.Int { return new(big.Int).Add(a, big.NewInt(b)) }
	xs = append(xs, big.NewInt(0))
	add(big.NewInt(1))
	add(big.NewInt(12345))
	add(sum(pow(2, 30), -1))
	add(pow(2, 30))
	add(sum(pow(2, 30), 1))
	add(sum(pow(2, 60), -1))
	add(pow(2, 60))
	add(pow(2, 63))
	add(sum(pow(2, 64), -1))
	add(pow(2, 64))
	add(sum(pow(2, 90), -1))
	add(pow(10, 100))
	add(sum(pow(2, 300), 12345))
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		bits := r.IntN(4000) + 1
		x := new(big.Int)
		for x.BitLen() < bits {
			x.Lsh(x, 64).Or(x, new(big.Int).SetUint64(r.Uint64()))
		}
		add(x.Rsh(x, uint(x.BitLen()-bits)))
	}
	for range 300 {
		add(new(big.Int).SetUint64(r.Uint64() >> r.IntN(64)))
	}
	return xs
}

// digitsOf splits |x| into CPython's 30-bit digits, the form Int takes.
func digitsOf(x *big.Int) (mag []uint32, negative bool) {
	a := new(big.Int).Abs(x)
	mask := big.NewInt(1<<30 - 1)
	for a.Sign() != 0 {
		mag = append(mag, uint32(new(big.Int).And(a, mask).Uint64()))
		a.Rsh(a, 30)
	}
	return mag, x.Sign() < 0
}

func runes(s string) []rune { return []rune(s) }

func corpusStrs() [][]rune {
	var ctl []rune
	for c := rune(0); c < 0x20; c++ {
		ctl = append(ctl, c)
	}
	ctl = append(ctl, 0x7f)
	ss := [][]rune{
		{}, runes("a"), runes("hello world"), ctl,
		runes("'"), runes(`"`), runes(`'"`), runes(`"'`), runes("it's"), runes(`say "hi"`),
		runes(`it's "x"`), runes(`\`), runes(`a\b\\c`), runes("tab\there\nnl\rcr"),
		runes("caf\u00e9 \u00a0nbsp \u00adshy \u00ff"),
		{0x200b}, {0x2028}, {0x2029}, {0xd800}, {0xdfff}, {0xdbff, 0xdc00}, {0xd834, 0xdd1e},
		{0xfeff}, {0xfffe}, {0xffff}, runes("\u4e2d\u6587"), {0x3000},
		{0x1d11e}, {0xe0001}, {0x10ffff}, {0xf0000}, {0x1f97a}, {0x1fae8}, {0x2ebf0}, {0x31ef},
		runes("mixed 'q' \U0001f600 \u200b \x00 \\"),
	}
	for c := rune(0); c <= 0x3000; c++ {
		ss = append(ss, []rune{c})
	}
	// Every code point, in chunks, so each interpreter's whole Unicode
	// table is compared.
	for lo := rune(0); lo < 0x110000; lo += 256 {
		chunk := make([]rune, 256)
		for i := range chunk {
			chunk[i] = lo + rune(i)
		}
		ss = append(ss, chunk)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		s := make([]rune, r.IntN(40))
		for i := range s {
			s[i] = r.Int32N(0x110000)
		}
		ss = append(ss, s)
	}
	return ss
}

func corpusBytes() [][]byte {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	bs := [][]byte{
		{}, all, []byte("'"), []byte(`"`), []byte(`'"`), []byte("it's"), []byte(`say "hi"`),
		[]byte(`\`), []byte("\t\n\r\x00\x7f\x80\xff"),
	}
	for i := range 256 {
		bs = append(bs, []byte{byte(i)})
	}
	return bs
}
