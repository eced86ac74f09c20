// Command trend is a test group rule: per group, the first and last x in
// the order given and the number of rows. A group holding x == -1 makes the
// whole call fail, so the engine must isolate that group.
package main

import (
	"errors"

	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{"abi": 1, "name": "trend", "version": "0.1.0", "kind": "group",
 "inputs": [{"name": "x", "type": "int32"}],
 "outputs": [{"name": "first", "type": "int32"}, {"name": "last", "type": "int32"}, {"name": "n", "type": "int32"}]}`

func init() {
	vigie.Register(vigie.Rule{Manifest: manifest, Eval: func(in *vigie.Input, out *vigie.Output) error {
		x := in.Int32(0)
		first, last, n := out.Int32(0), out.Int32(1), out.Int32(2)
		for g := range in.NumGroups() {
			start, end := in.GroupBounds(g)
			for r := start; r < end; r++ {
				if x.Value(r) == -1 {
					return errors.New("poison group")
				}
			}
			first.Set(g, x.Value(start))
			last.Set(g, x.Value(end-1))
			n.Set(g, int32(end-start))
		}
		return nil
	}})
}

func main() {}
