// Command bench_map is the benchmark map rule written with the Go SDK:
//
//	score = 0.5*a + 0.3*b + 0.2*c   (float64)
//	flag  = score > 0.5             (bool)
//
// both null on a row where any input is null. The same rule is written by
// hand in WAT in ../bench_map_wat. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bench_map.wasm .
package main

import "github.com/vigie-edu/vigie/rules/sdk/vigie"

const manifest = `{"abi": 1, "name": "bench_map", "version": "1.0.0", "kind": "map",
  "description": "score = 0.5a + 0.3b + 0.2c; flag = score > 0.5; null when an input is null",
  "inputs": [{"name": "a", "type": "float64"}, {"name": "b", "type": "float64"}, {"name": "c", "type": "float64"}],
  "outputs": [{"name": "score", "type": "float64"}, {"name": "flag", "type": "bool"}]}`

func init() { vigie.Register(vigie.Rule{Manifest: manifest, Eval: eval}) }

func eval(in *vigie.Input, out *vigie.Output) error {
	ca, cb, cc := in.Float64(0), in.Float64(1), in.Float64(2)
	a, b, c := ca.Values(), cb.Values(), cc.Values()
	score, flag := out.Float64(0), out.Bool(1)
	s := score.Values()
	nulls := ca.HasNulls() || cb.HasNulls() || cc.HasNulls()
	b, c = b[:len(a)], c[:len(a)] // one bounds check for the loop
	if !nulls {
		for r := range a {
			s[r] = 0.5*a[r] + 0.3*b[r] + 0.2*c[r]
		}
		score.SetAllValid()
		// the flags, eight rows a byte, with no call per row
		bits := flag.Bits()
		var acc byte
		for r, v := range s {
			if v > 0.5 {
				acc |= 1 << (r & 7)
			}
			if r&7 == 7 {
				bits[r>>3], acc = acc, 0
			}
		}
		if len(s)&7 != 0 {
			bits[len(s)>>3] = acc
		}
		flag.SetAllValid()
		return nil
	}
	for r := range a {
		if ca.IsNull(r) || cb.IsNull(r) || cc.IsNull(r) {
			continue // both outputs stay null
		}
		v := 0.5*a[r] + 0.3*b[r] + 0.2*c[r]
		s[r] = v
		score.SetValid(r)
		flag.Set(r, v > 0.5)
	}
	return nil
}

func main() {}
