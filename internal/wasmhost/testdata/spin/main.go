// Command spin is a hostile test rule written with the Go SDK: on a
// negative x it never returns (a busy loop, no call out of the guest);
// otherwise it copies x.
package main

import "github.com/vigie-edu/vigie/rules/sdk/vigie"

const manifest = `{"abi": 1, "name": "spin", "version": "1.0.0", "kind": "map",
  "inputs": [{"name": "x", "type": "int32"}], "outputs": [{"name": "y", "type": "int32"}]}`

func init() { vigie.Register(vigie.Rule{Manifest: manifest, Eval: eval}) }

var sink int32

func eval(in *vigie.Input, out *vigie.Output) error {
	x, y := in.Int32(0), out.Int32(0)
	for r, v := range x.Values() {
		for v < 0 {
			sink += v // never ends
		}
		y.Set(r, v)
	}
	return nil
}

func main() {}
