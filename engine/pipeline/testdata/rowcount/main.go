// Command rowcount is a test group rule with the early-warning pack's
// inputs (so the engine stores and ships the same columns) whose work is
// nearly nothing: per group, the number of rows. BenchmarkPerRowEngine
// uses it to measure the engine's per-row path without the pack's cost.
package main

import (
	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{"abi": 1, "name": "rowcount", "version": "0.1.0", "kind": "group",
 "inputs": [
    {"name": "student_id",  "type": "utf8"},
    {"name": "date",        "type": "date32"},
    {"name": "half",        "type": "utf8"},
    {"name": "justified",   "type": "bool"},
    {"name": "corrects",    "type": "utf8"},
    {"name": "recorded_at", "type": "utf8"},
    {"name": "subject",     "type": "utf8"},
    {"name": "period",      "type": "utf8"},
    {"name": "mark",        "type": "float64"},
    {"name": "status",      "type": "utf8"}
 ],
 "outputs": [{"name": "n", "type": "int32"}]}`

func init() {
	vigie.Register(vigie.Rule{Manifest: manifest, Eval: func(in *vigie.Input, out *vigie.Output) error {
		n := out.Int32(0)
		for g := range in.NumGroups() {
			start, end := in.GroupBounds(g)
			n.Set(g, int32(end-start))
		}
		return nil
	}})
}

func main() {}
