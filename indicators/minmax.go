package indicators

import "math"

// fmin and fmax are the builtin min and max of two float64s, bit for bit
// (a NaN, and -0 against +0, as the Go specification says), written out
// as the runtime writes them (runtime/minmax.go) so that the compiler
// inlines them. Natively the builtins are a few instructions, but with
// GOARCH=wasm each one is a call to runtime.fmin64 or runtime.fmax64, and
// those calls were a sixth of the early-warning rule's time in
// WebAssembly (docs/performance.md). Used on the per-day and per-onset
// paths; TestMinMaxMatchBuiltins checks them against the builtins.
func fmin(x, y float64) float64 {
	if y != y || y < x {
		return y
	}
	if x != x || x < y || x != 0 {
		return x
	}
	// x and y are both ±0: -0 if either is.
	return math.Float64frombits(math.Float64bits(x) | math.Float64bits(y))
}

func fmax(x, y float64) float64 {
	if y != y || y > x {
		return y
	}
	if x != x || x > y || x != 0 {
		return x
	}
	// x and y are both ±0: +0 if either is.
	return math.Float64frombits(math.Float64bits(x) & math.Float64bits(y))
}

// fmaxOf is slices.Max(s) with fmax (slices.Max uses the builtin); s must
// not be empty. Not inlined: its loop costs less in a small function in
// WebAssembly than in Evaluate.
//
//go:noinline
func fmaxOf(s []float64) float64 {
	m := s[0]
	for _, v := range s[1:] {
		m = fmax(m, v)
	}
	return m
}
