// Command absence is an example Vigie map rule: the share of half-days a
// student missed, flagged when it reaches a threshold, with a reason a
// teaching team can read.
//
// Build it (from the repository root, `go generate ./...` does the same):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o absence.wasm .
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o absence.wasm .

import (
	"fmt"
	"strconv"

	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{
  "abi": 1,
  "name": "absence",
  "version": "1.0.0",
  "description": "Share of half-days missed, flagged at or above a threshold",
  "kind": "map",
  "inputs": [
    {"name": "absent_half_days", "type": "int32"},
    {"name": "half_days",        "type": "int32"}
  ],
  "outputs": [
    {"name": "absence_rate", "type": "float64"},
    {"name": "flag",         "type": "bool"},
    {"name": "reason",       "type": "utf8"}
  ],
  "params": [
    {"name": "threshold", "type": "float64", "default": 0.10,
     "description": "absence rate from which a student is flagged"}
  ]
}`

// Input and output positions, in manifest order.
const (
	inAbsent = iota
	inHalfDays
)

const (
	outRate = iota
	outFlag
	outReason
)

var threshold float64

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) error {
			threshold = p.Float64("threshold")
			if threshold < 0 || threshold > 1 {
				return fmt.Errorf("threshold %v is not between 0 and 1", threshold)
			}
			return nil
		},
		Eval: eval,
	})
}

func eval(in *vigie.Input, out *vigie.Output) error {
	absent, days := in.Int32(inAbsent), in.Int32(inHalfDays)
	rate, flag, reason := out.Float64(outRate), out.Bool(outFlag), out.Utf8(outReason)
	for row := range in.Len() {
		if absent.IsNull(row) || days.IsNull(row) || days.Value(row) == 0 {
			continue // every output row starts null
		}
		a, d := absent.Value(row), days.Value(row)
		r := float64(a) / float64(d)
		rate.Set(row, r)
		flag.Set(row, r >= threshold)
		if r >= threshold {
			reason.Set(row, fmt.Sprintf("absent %d of %d half-days (%s %%) >= %s %% threshold",
				a, d, percent(r), percent(threshold)))
		}
	}
	return nil
}

// percent formats a rate as a percentage with at most one decimal: 0.175 ->
// "17.5", 0.1 -> "10".
func percent(r float64) string {
	return strconv.FormatFloat(float64(int64(r*1000+0.5))/10, 'f', -1, 64)
}

func main() {}
