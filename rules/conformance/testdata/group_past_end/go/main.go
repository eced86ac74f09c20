// Command group_past_end is the Go port of group_past_end (see
// ../group_past_end.cases.toml): it asks for the bounds of one group past
// the last.
package main

import "github.com/vigie-edu/vigie/rules/sdk/vigie"

const manifest = `{"abi": 1, "name": "group_past_end_go", "version": "1.0.0", "kind": "group",
  "inputs": [{"name": "x", "type": "int32"}], "outputs": [{"name": "n", "type": "int32"}]}`

func init() { vigie.Register(vigie.Rule{Manifest: manifest, Eval: eval}) }

func eval(in *vigie.Input, out *vigie.Output) error {
	n := out.Int32(0)
	for g := 0; g <= in.NumGroups(); g++ { // the bug: <=
		start, end := in.GroupBounds(g)
		if g < in.NumGroups() {
			n.Set(g, int32(end-start))
		}
	}
	return nil
}

func main() {}
