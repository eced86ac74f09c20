// Command lastalerts is a test group rule shaped like the early-warning
// pack's output: per group, the open alerts, reason codes, level and risk
// of its last row, and a reason made of the codes. It lets the alerts
// stage's tests say which alerts are open run after run.
package main

import (
	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{"abi": 1, "name": "lastalerts", "version": "0.2.0", "kind": "group",
 "inputs": [{"name": "open", "type": "utf8"}, {"name": "codes", "type": "utf8"}, {"name": "level", "type": "utf8"}, {"name": "score", "type": "float64"}],
 "outputs": [{"name": "open_alerts", "type": "utf8"}, {"name": "reason_codes", "type": "utf8"}, {"name": "reason", "type": "utf8"},
  {"name": "risk", "type": "float64"}, {"name": "alert_level", "type": "utf8"}]}`

func init() {
	vigie.Register(vigie.Rule{Manifest: manifest, Eval: func(in *vigie.Input, out *vigie.Output) error {
		open, codes, level, score := in.Utf8(0), in.Utf8(1), in.Utf8(2), in.Float64(3)
		oOpen, oCodes, oReason, oRisk, oLevel := out.Utf8(0), out.Utf8(1), out.Utf8(2), out.Float64(3), out.Utf8(4)
		for g := range in.NumGroups() {
			_, end := in.GroupBounds(g)
			last := end - 1
			oOpen.Set(g, open.Value(last))
			oCodes.Set(g, codes.Value(last))
			oReason.Set(g, "because "+codes.Value(last))
			oRisk.Set(g, score.Value(last))
			oLevel.Set(g, level.Value(last))
		}
		return nil
	}})
}

func main() {}
