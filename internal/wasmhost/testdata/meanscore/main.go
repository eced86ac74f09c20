// Command meanscore is a test group rule: for each group, the mean of its
// non-null scores (null when there are none) and their count.
package main

import "github.com/vigie-edu/vigie/rules/sdk/vigie"

const manifest = `{"abi": 1, "name": "mean_score", "version": "1.0.0", "kind": "group",
  "inputs": [{"name": "score", "type": "float64"}],
  "outputs": [{"name": "mean", "type": "float64"}, {"name": "n", "type": "int32"}]}`

func init() { vigie.Register(vigie.Rule{Manifest: manifest, Eval: eval}) }

func eval(in *vigie.Input, out *vigie.Output) error {
	score := in.Float64(0)
	vals := score.Values()
	mean, count := out.Float64(0), out.Int32(1)
	for g := range in.NumGroups() {
		start, end := in.GroupBounds(g)
		sum, n := 0.0, int32(0)
		for r := start; r < end; r++ {
			if !score.IsNull(r) {
				sum += vals[r]
				n++
			}
		}
		count.Set(g, n)
		if n > 0 {
			mean.Set(g, sum/float64(n))
		}
	}
	return nil
}

func main() {}
