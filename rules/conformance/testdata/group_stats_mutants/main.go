// Command group_stats_mutants is the group_stats rule (group.cases.toml)
// with deliberate bugs, one per value of the parameter "mutant" (none when
// it is empty). TestGroupCasesCatchMutants checks that the golden cases
// fail every mutant: a case file that a wrong rule passes proves nothing.
package main

import (
	"fmt"
	"math"

	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{
  "abi": 1,
  "name": "group_stats_mutants",
  "version": "1.0.0",
  "kind": "group",
  "inputs": [
    {"name": "score", "type": "float64"},
    {"name": "label", "type": "utf8"}
  ],
  "outputs": [
    {"name": "rows",       "type": "int32"},
    {"name": "score_sum",  "type": "float64"},
    {"name": "last_label", "type": "utf8"}
  ],
  "params": [{"name": "mutant", "type": "utf8", "default": ""}]
}`

// Mutants lists the bugs, each a plausible mistake of a group rule.
var mutants = map[string]string{
	"rows_count_non_null":  "rows counts the rows whose score is not null",
	"zero_sum_not_null":    "a group with no score gets a sum of 0, not null",
	"nan_as_null":          "NaN scores are skipped like nulls",
	"empty_label_as_null":  "empty labels are skipped like nulls",
	"first_label":          "the first non-null label instead of the last",
	"last_row_label":       "the label of the last row, null when it is null",
	"drop_last_row":        "each group loses its last row (end - 1)",
	"even_groups":          "groups assumed equal: rows/num_groups each",
	"skip_empty_groups":    "empty groups get no output row (later groups move up)",
	"sum_backwards":        "scores added from the last row to the first",
	"rows_per_batch":       "rows is the batch's row count, not the group's",
	"label_of_other_group": "the last label is searched from the end of the batch",
}

var mutant string

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) error {
			mutant = p.String("mutant")
			if _, ok := mutants[mutant]; !ok && mutant != "" {
				return fmt.Errorf("unknown mutant %q", mutant)
			}
			return nil
		},
		Eval: eval,
	})
}

func eval(in *vigie.Input, out *vigie.Output) error {
	score, label := in.Float64(0), in.Utf8(1)
	rows, sum, last := out.Int32(0), out.Float64(1), out.Utf8(2)
	o := 0 // output row
	for g := range in.NumGroups() {
		start, end := in.GroupBounds(g)
		switch mutant {
		case "drop_last_row":
			if end > start {
				end--
			}
		case "even_groups":
			start, end = g*in.Len()/in.NumGroups(), (g+1)*in.Len()/in.NumGroups()
		case "skip_empty_groups":
			if start == end {
				continue
			}
		}
		n := int32(end - start)
		switch mutant {
		case "rows_count_non_null":
			n = 0
			for r := start; r < end; r++ {
				if !score.IsNull(r) {
					n++
				}
			}
		case "rows_per_batch":
			n = int32(in.Len())
		}
		rows.Set(o, n)

		s, seen := 0.0, false
		add := func(r int) {
			v := score.Value(r)
			if score.IsNull(r) || (mutant == "nan_as_null" && math.IsNaN(v)) {
				return
			}
			s += v
			seen = true
		}
		if mutant == "sum_backwards" {
			for r := end - 1; r >= start; r-- {
				add(r)
			}
		} else {
			for r := start; r < end; r++ {
				add(r)
			}
		}
		if seen || mutant == "zero_sum_not_null" {
			sum.Set(o, s)
		}

		valid := func(r int) bool {
			return !label.IsNull(r) && !(mutant == "empty_label_as_null" && label.Value(r) == "")
		}
		switch mutant {
		case "first_label":
			for r := start; r < end; r++ {
				if valid(r) {
					last.Set(o, label.Value(r))
					break
				}
			}
		case "last_row_label":
			if end > start && valid(end-1) {
				last.Set(o, label.Value(end-1))
			}
		case "label_of_other_group":
			for r := in.Len() - 1; r >= start; r-- {
				if valid(r) {
					last.Set(o, label.Value(r))
					break
				}
			}
		default:
			for r := end - 1; r >= start; r-- {
				if valid(r) {
					last.Set(o, label.Value(r))
					break
				}
			}
		}
		o++
	}
	return nil
}

func main() {}
