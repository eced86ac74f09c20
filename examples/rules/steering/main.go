// Command steering is the rule pack of the resources pipeline
// (examples/pipelines/resources.toml): it flags a school, with a reason a
// staffing service can read, when its enrolment moved away from the
// projection the year's posts were allotted on, or when a week lost many
// teaching hours to absences nobody replaced.
//
// Each input row is one school: an école with its enrolment and projection,
// or a collège or lycée with its worst week of unreplaced hours; the
// inputs that do not apply are null.
//
// Build it (from the repository root, `go generate ./...` does the same):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o steering.wasm .
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o steering.wasm .

import (
	"fmt"
	"math"
	"strings"

	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{
  "abi": 1,
  "name": "steering",
  "version": "1.0.0",
  "description": "Schools whose enrolment left its projection or whose teaching hours went unreplaced, with the reason",
  "kind": "map",
  "inputs": [
    {"name": "enrolment",       "type": "float64"},
    {"name": "projected",       "type": "int64"},
    {"name": "peak_unreplaced", "type": "float64"}
  ],
  "outputs": [
    {"name": "enrolment_gap", "type": "float64"},
    {"name": "flag",          "type": "bool"},
    {"name": "reason",        "type": "utf8"}
  ],
  "params": [
    {"name": "gap", "type": "float64", "default": 0.10,
     "description": "relative gap between enrolment and projection from which a school is flagged"},
    {"name": "min_pupils", "type": "int64", "default": 3,
     "description": "smallest gap in pupils that is flagged, so that a small école is not flagged for one pupil"},
    {"name": "peak_hours", "type": "float64", "default": 40,
     "description": "unreplaced teaching hours in one week from which a school is flagged"}
  ]
}`

// Input and output positions, in manifest order.
const (
	inEnrolment = iota
	inProjected
	inPeak
)

const (
	outGap = iota
	outFlag
	outReason
)

var (
	gapThreshold float64
	minPupils    int64
	peakHours    float64
)

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) error {
			gapThreshold, minPupils, peakHours = p.Float64("gap"), p.Int64("min_pupils"), p.Float64("peak_hours")
			if gapThreshold <= 0 || minPupils < 0 || peakHours <= 0 {
				return fmt.Errorf("gap %v and peak_hours %v must be positive, min_pupils %d at least 0", gapThreshold, peakHours, minPupils)
			}
			return nil
		},
		Eval: eval,
	})
}

func eval(in *vigie.Input, out *vigie.Output) error {
	enrol, proj, peak := in.Float64(inEnrolment), in.Int64(inProjected), in.Float64(inPeak)
	gap, flag, reason := out.Float64(outGap), out.Bool(outFlag), out.Utf8(outReason)
	for row := range in.Len() {
		var s school
		if !enrol.IsNull(row) && !proj.IsNull(row) {
			s.enrolment, s.projected, s.hasEnrolment = enrol.Value(row), proj.Value(row), true
		}
		if !peak.IsNull(row) {
			s.peak, s.hasPeak = peak.Value(row), true
		}
		v := judge(s, gapThreshold, minPupils, peakHours)
		if v.hasGap {
			gap.Set(row, v.gap)
		}
		flag.Set(row, v.reason != "")
		if v.reason != "" {
			reason.Set(row, v.reason)
		}
	}
	return nil
}

// school is one input row.
type school struct {
	enrolment    float64
	projected    int64
	hasEnrolment bool
	peak         float64
	hasPeak      bool
}

// verdict is one output row: the relative gap to the projection (when
// there is one) and the reason of the flag ("" when not flagged).
type verdict struct {
	gap    float64
	hasGap bool
	reason string
}

// judge applies the rules to one school.
func judge(s school, gapThreshold float64, minPupils int64, peakHours float64) verdict {
	var v verdict
	var why []string
	if s.hasEnrolment && s.projected > 0 {
		e, p := s.enrolment, s.projected
		v.gap, v.hasGap = (e-float64(p))/float64(p), true
		if math.Abs(v.gap) >= gapThreshold && math.Abs(e-float64(p)) >= float64(minPupils) {
			dir := "above"
			if v.gap < 0 {
				dir = "below"
			}
			why = append(why, fmt.Sprintf("enrolment %.0f, %.0f %% %s the %d projected", e, math.Abs(100*v.gap), dir, p))
		}
	}
	if s.hasPeak && s.peak >= peakHours {
		why = append(why, fmt.Sprintf("%.0f teaching hours unreplaced in one week (threshold %.0f)", s.peak, peakHours))
	}
	v.reason = strings.Join(why, "; ")
	return v
}

func main() {}
