//go:build wasm

package indicators

import "math"

// expf is math.Exp, bit for bit, written out for GOARCH=wasm: there
// math.Exp is the portable Go code of package math (no assembly), three
// calls deep (exp, expmulti, ldexp), and the ABS_DRIFT model calls it once
// per onset and day. This is the same code, in one function, with
// ldexp's general case kept only for results that are not normal numbers
// (it is the same arithmetic: for a normal result, ldexp only sets the
// exponent). TestExpMatchesMath checks it against math.Exp when the tests
// run in WebAssembly (exp_test.go); on other architectures expf is
// math.Exp itself (exp_other.go), whose assembly may differ in the last
// bit from the portable code.
func expf(x float64) float64 {
	const (
		Ln2Hi = 6.93147180369123816490e-01
		Ln2Lo = 1.90821492927058770002e-10
		Log2e = 1.44269504088896338700e+00

		Overflow  = 7.09782712893383973096e+02
		Underflow = -7.45133219101941108420e+02
		NearZero  = 1.0 / (1 << 28) // 2**-28

		P1 = 1.66666666666666657415e-01  /* 0x3FC55555; 0x55555555 */
		P2 = -2.77777777770155933842e-03 /* 0xBF66C16C; 0x16BEBD93 */
		P3 = 6.61375632143793436117e-05  /* 0x3F11566A; 0xAF25DE2C */
		P4 = -1.65339022054652515390e-06 /* 0xBEBBBD41; 0xC5D26BF1 */
		P5 = 4.13813679705723846039e-08  /* 0x3E663769; 0x72BEA4D0 */
	)
	// special cases
	switch {
	case x != x: // NaN
		return x
	case x > Overflow: // handles case where x is +∞
		return math.Inf(1)
	case x < Underflow: // handles case where x is -∞
		return 0
	case math.Abs(x) < NearZero: // -NearZero < x && x < NearZero, one test
		return 1 + x
	}
	// reduce; computed as r = hi - lo for extra precision. x is not 0
	// here: Log2e*x - 0.5 when x < 0 and Log2e*x + 0.5 when x > 0, without
	// a branch (a - 0.5 is a + -0.5 in IEEE arithmetic).
	k := int(Log2e*x + math.Copysign(0.5, x))
	hi := x - float64(k)*Ln2Hi
	lo := float64(k) * Ln2Lo
	// compute (expmulti)
	r := hi - lo
	t := r * r
	c := r - t*(P1+t*(P2+t*(P3+t*(P4+t*P5))))
	y := 1 - ((lo - (r*c)/(2-c)) - hi)
	// ldexp(y, k): y is a positive normal number near 1; when y×2^k is
	// normal too, only the exponent changes.
	b := math.Float64bits(y)
	if e := int(b>>52&0x7ff) + k; b>>63 == 0 && e > 0 && e < 0x7ff && int(b>>52&0x7ff) != 0 {
		return math.Float64frombits(b&^(0x7ff<<52) | uint64(e)<<52)
	}
	return math.Ldexp(y, k)
}
