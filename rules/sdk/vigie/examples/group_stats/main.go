// Command group_stats is the example group rule of the Go SDK: per group,
// the number of rows, the sum of the non-null scores (null when there is
// none) and the last non-null label. Every SDK has a port of it; golden
// cases: rules/conformance/group.cases.toml.
//
// Build it:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o group_stats.wasm .
package main

import "github.com/vigie-edu/vigie/rules/sdk/vigie"

const manifest = `{
  "abi": 1,
  "name": "group_stats",
  "version": "1.0.0",
  "description": "Per group: rows, sum of the non-null scores, last non-null label",
  "kind": "group",
  "inputs": [
    {"name": "score", "type": "float64"},
    {"name": "label", "type": "utf8"}
  ],
  "outputs": [
    {"name": "rows",       "type": "int32"},
    {"name": "score_sum",  "type": "float64"},
    {"name": "last_label", "type": "utf8"}
  ]
}`

// Input and output positions, in manifest order.
const (
	inScore = iota
	inLabel
)

const (
	outRows = iota
	outSum
	outLast
)

func init() { vigie.Register(vigie.Rule{Manifest: manifest, Eval: eval}) }

func eval(in *vigie.Input, out *vigie.Output) error {
	score, label := in.Float64(inScore), in.Utf8(inLabel)
	rows, sum, last := out.Int32(outRows), out.Float64(outSum), out.Utf8(outLast)
	// One output row per group, in group order (utf8 outputs are written
	// in row order).
	for g := range in.NumGroups() {
		start, end := in.GroupBounds(g)
		rows.Set(g, int32(end-start))
		s, seen := 0.0, false
		for r := start; r < end; r++ {
			if !score.IsNull(r) {
				s += score.Value(r)
				seen = true
			}
		}
		if seen {
			sum.Set(g, s) // else null: every output row starts null
		}
		for r := end - 1; r >= start; r-- {
			if !label.IsNull(r) {
				last.Set(g, label.Value(r))
				break
			}
		}
	}
	return nil
}

func main() {}
