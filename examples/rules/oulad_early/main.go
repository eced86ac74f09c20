// Command oulad_early scores each OULAD registration (Kuzilek, Hlosta and
// Zdrahal, 2017; CC BY 4.0) with the pack's snapshot risk
// (package indicators, Config.Score) from what is known cutoff_days after
// the module start: assessments due and not submitted (MISSING, late ones
// count half), and the average score of those submitted (MARK_LOW, scores
// /100 turned to /20). Its timeline is the union of the registration (with
// due_by_cutoff, from oulad_due) and the student's submissions (with the
// assessment's due date and type). See examples/pipelines/eval_oulad.toml.
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o oulad_early.wasm .

import (
	"math"
	"strings"

	"github.com/vigie-edu/vigie/indicators"
	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

var params = append([]indicators.Param{
	{Name: "cutoff_days", Type: "float64", Default: 56.0, Description: "days from the module start that are known: the first weeks"},
}, indicators.Params...)

var manifest = `{
  "abi": 1,
  "name": "oulad_early",
  "version": "1.0.0",
  "description": "Early-warning risk of an OULAD registration from its first weeks: missing and late assessments, scores",
  "kind": "group",
  "inputs": [
    {"name": "due_by_cutoff",   "type": "int32"},
    {"name": "final_result",    "type": "utf8"},
    {"name": "date",            "type": "float64"},
    {"name": "date_submitted",  "type": "float64"},
    {"name": "score",           "type": "float64"},
    {"name": "assessment_type", "type": "utf8"}
  ],
  "outputs": [
    {"name": "risk",         "type": "float64"},
    {"name": "reason_codes", "type": "utf8"},
    {"name": "risk_reason",  "type": "utf8"},
    {"name": "submitted",    "type": "int32"},
    {"name": "missing",      "type": "int32"},
    {"name": "late",         "type": "int32"},
    {"name": "final_result", "type": "utf8"}
  ],
  "params": ` + indicators.ParamsJSON(params) + `
}`

var (
	cfg    *indicators.Config
	cutoff float64
)

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) (err error) {
			cutoff = p.Float64("cutoff_days")
			cfg, err = indicators.Load(p, indicators.Params)
			return err
		},
		Eval: eval,
	})
}

func eval(in *vigie.Input, out *vigie.Output) error {
	dueN, result, date, submittedAt, score, typ := in.Int32(0), in.Utf8(1), in.Float64(2), in.Float64(3), in.Float64(4), in.Utf8(5)
	risk, codes, reason := out.Float64(0), out.Utf8(1), out.Utf8(2)
	submittedOut, missingOut, lateOut, resultOut := out.Int32(3), out.Int32(4), out.Int32(5), out.Utf8(6)
	for g := range in.NumGroups() {
		start, end := in.GroupBounds(g)
		due, sub, late := 0, 0, 0
		res := ""
		var sum float64
		var n int
		for r := start; r < end; r++ {
			if !dueN.IsNull(r) { // the registration row
				due = int(dueN.Value(r))
				if !result.IsNull(r) {
					res = result.Value(r)
				}
				continue
			}
			if date.IsNull(r) || date.Value(r) > cutoff || submittedAt.IsNull(r) || submittedAt.Value(r) > cutoff ||
				(!typ.IsNull(r) && typ.Value(r) == "Exam") {
				continue // not due yet, not known yet, or the exam
			}
			sub++
			if submittedAt.Value(r) > date.Value(r) {
				late++
			}
			if !score.IsNull(r) {
				sum += score.Value(r)
				n++
			}
		}
		s := indicators.Snapshot{Averages: []float64{math.NaN()}, AbsentRate: math.NaN(), Missing: max(0, due-sub), Late: late}
		if n > 0 {
			s.Averages[0] = sum / float64(n) / 5 // /100 -> /20
		}
		x, c, t := cfg.Score(s)
		risk.Set(g, x)
		codes.Set(g, strings.Join(c, ";"))
		reason.Set(g, t)
		submittedOut.Set(g, int32(sub))
		missingOut.Set(g, int32(s.Missing))
		lateOut.Set(g, int32(late))
		resultOut.Set(g, res)
	}
	return nil
}

func main() {}
