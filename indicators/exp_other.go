//go:build !wasm

package indicators

import "math"

// expf is math.Exp (see exp_wasm.go for GOARCH=wasm).
func expf(x float64) float64 { return math.Exp(x) }
