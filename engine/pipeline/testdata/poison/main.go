// Command poison is a test rule: y = x, except that it fails the whole
// batch when any row has x == 4, so the engine must bisect to find them.
package main

import (
	"fmt"

	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{"abi": 1, "name": "poison", "version": "0.1.0", "kind": "map",
 "inputs": [{"name": "x", "type": "int32"}],
 "outputs": [{"name": "y", "type": "int32"}]}`

func init() {
	vigie.Register(vigie.Rule{Manifest: manifest, Eval: func(in *vigie.Input, out *vigie.Output) error {
		x, y := in.Int32(0), out.Int32(0)
		for row := range in.Len() {
			if x.Value(row) == 4 {
				return fmt.Errorf("x is 4 at row %d", row)
			}
			y.Set(row, x.Value(row))
		}
		return nil
	}})
}

func main() {}
