// Command uci_risk scores the UCI Student Performance data (Cortez and
// Silva, 2008; CC BY 4.0) with the pack's snapshot risk
// (package indicators, Config.Score): MARK_LOW on G2, MARK_FALL from G1 to
// G2, ABS_RATE on absences over an assumed number of school days. Used by
// examples/pipelines/eval_uci.toml.
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o uci_risk.wasm .

import (
	"math"
	"strings"

	"github.com/vigie-edu/vigie/indicators"
	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

var params = append([]indicators.Param{
	{Name: "school_days", Type: "float64", Default: 180.0, Description: "school days in the year, to turn the absences count into a rate"},
}, indicators.Params...)

var manifest = `{
  "abi": 1,
  "name": "uci_risk",
  "version": "1.0.0",
  "description": "Early-warning risk from two period marks (G1, G2, /20) and a count of absences",
  "kind": "map",
  "inputs": [
    {"name": "G1",       "type": "float64"},
    {"name": "G2",       "type": "float64"},
    {"name": "absences", "type": "float64"}
  ],
  "outputs": [
    {"name": "risk",         "type": "float64"},
    {"name": "reason_codes", "type": "utf8"},
    {"name": "risk_reason",  "type": "utf8"}
  ],
  "params": ` + indicators.ParamsJSON(params) + `
}`

var (
	cfg        *indicators.Config
	schoolDays float64
)

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) (err error) {
			schoolDays = p.Float64("school_days")
			cfg, err = indicators.Load(p, indicators.Params)
			return err
		},
		Eval: func(in *vigie.Input, out *vigie.Output) error {
			g1, g2, abs := in.Float64(0), in.Float64(1), in.Float64(2)
			risk, codes, reason := out.Float64(0), out.Utf8(1), out.Utf8(2)
			for r := range in.Len() {
				val := func(c vigie.Column[float64]) float64 {
					if c.IsNull(r) {
						return math.NaN()
					}
					return c.Value(r)
				}
				s := indicators.Snapshot{Averages: []float64{val(g1), val(g2)}, AbsentRate: math.NaN()}
				if a := val(abs); !math.IsNaN(a) && schoolDays > 0 {
					s.AbsentRate = a / schoolDays
				}
				x, c, t := cfg.Score(s)
				risk.Set(r, x)
				codes.Set(r, strings.Join(c, ";"))
				reason.Set(r, t)
			}
			return nil
		},
	})
}

func main() {}
