package indicators

import (
	"math"
	"slices"
	"testing"
)

// TestMinMaxMatchBuiltins: fmin, fmax and fmaxOf give the builtins' (and
// slices.Max's) results bit for bit, signed zeros and infinities
// included, in either order; a NaN gives a NaN (its payload is the
// runtime's, which with GOARCH=wasm is the builtin's, while amd64's
// instructions give another: no value of the pack is ever a NaN).
func TestMinMaxMatchBuiltins(t *testing.T) {
	nan2 := math.Float64frombits(0x7ff8000000000001) // another NaN payload
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1e-300, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), nan2, math.SmallestNonzeroFloat64, -math.MaxFloat64}
	bits := func(x float64) uint64 {
		if math.IsNaN(x) {
			return 1<<64 - 1 // any NaN
		}
		return math.Float64bits(x)
	}
	for _, x := range values {
		for _, y := range values {
			if got, want := fmin(x, y), min(x, y); bits(got) != bits(want) {
				t.Errorf("fmin(%v, %v) = %v (%#x), want %v (%#x)", x, y, got, bits(got), want, bits(want))
			}
			if got, want := fmax(x, y), max(x, y); bits(got) != bits(want) {
				t.Errorf("fmax(%v, %v) = %v (%#x), want %v (%#x)", x, y, got, bits(got), want, bits(want))
			}
			for _, z := range values {
				s := []float64{x, y, z}
				if got, want := fmaxOf(s), slices.Max(s); bits(got) != bits(want) {
					t.Errorf("fmaxOf(%v) = %v (%#x), want %v (%#x)", s, got, bits(got), want, bits(want))
				}
			}
		}
	}
}
