package indicators

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpMatchesMath: expf is math.Exp bit for bit, over the range the
// drift model uses (exp(-mu), mu from 0 to a few hundred), around the
// special cases, and where results become subnormal or overflow. In
// WebAssembly (GOOS=wasip1 GOARCH=wasm go test -exec ... ./indicators, see
// docs/performance.md) this checks the written-out copy of exp_wasm.go;
// natively expf is math.Exp.
func TestExpMatchesMath(t *testing.T) {
	xs := []float64{0, math.Copysign(0, -1), 1e-300, -1e-300, 1.0 / (1 << 28), -1.0 / (1 << 28), 1e-9, -1e-9, 0.5, -0.5, 1, -1,
		-700, -708, -708.5, -709, -720, -740, -745, -745.2, -746, -1000, 700, 709, 709.78, 710, 1000,
		math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, -math.MaxFloat64}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		xs = append(xs, -rng.Float64()*80, -rng.Float64()*800, (rng.Float64()-0.5)*1500, -rng.ExpFloat64())
	}
	for _, x := range xs {
		got, want := expf(x), math.Exp(x)
		if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("expf(%v) = %v (%#x), math.Exp gives %v (%#x)", x, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
}
