// Command oulad_due is a group rule for the OULAD evaluation
// (examples/pipelines/eval_oulad.toml): per module presentation, the
// number of assessments other than the exam due by cutoff_days after the
// module start.
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o oulad_due.wasm .

import (
	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{
  "abi": 1,
  "name": "oulad_due",
  "version": "1.0.0",
  "description": "Assessments (not exams) due by a cutoff day, per module presentation",
  "kind": "group",
  "inputs": [
    {"name": "date",            "type": "float64"},
    {"name": "assessment_type", "type": "utf8"}
  ],
  "outputs": [
    {"name": "due_by_cutoff", "type": "int32"}
  ],
  "params": [
    {"name": "cutoff_days", "type": "float64", "default": 56,
     "description": "days from the module start that are known: the first weeks"}
  ]
}`

var cutoff float64

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) error {
			cutoff = p.Float64("cutoff_days")
			return nil
		},
		Eval: func(in *vigie.Input, out *vigie.Output) error {
			date, typ := in.Float64(0), in.Utf8(1)
			due := out.Int32(0)
			for g := range in.NumGroups() {
				start, end := in.GroupBounds(g)
				n := int32(0)
				for r := start; r < end; r++ {
					if !date.IsNull(r) && date.Value(r) <= cutoff && (typ.IsNull(r) || typ.Value(r) != "Exam") {
						n++
					}
				}
				due.Set(g, n)
			}
			return nil
		},
	})
}

func main() {}
