// Command platform_health is a group rule over a digital platform's logs
// (vigie gen --format platform: requests, 5xx and p95 latency per school
// and minute), grouped by platform and ordered by minute: it detects the
// platform's incidents (outage, 5xx burst, slowdown, silence) and each
// school's (no request from it: its network is down) against a seasonal
// baseline, and lists the incidents open with a reason, in the columns the
// alerts stage reads (open_alerts, reason_codes, reason, risk,
// alert_level), so that [[alerts]] announces each incident opened and
// cleared. The logic is in package health; docs/platform-health.md
// explains it and gives its figures.
//
// With emit = "per_row" it answers as of each row; a minute is read once a
// row of a later minute has arrived, so the incidents, and their ids, are
// those a batch run over the same rows finds.
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o platform_health.wasm .

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vigie-edu/vigie/examples/rules/platform_health/health"
	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{
  "abi": 1,
  "name": "platform_health",
  "version": "1.0.0",
  "description": "Incidents of a digital platform (outage, 5xx burst, slowdown, a school's network down) against a seasonal baseline, with reasons and stable ids",
  "kind": "group",
  "inputs": [
    {"name": "platform",       "type": "utf8"},
    {"name": "minute",         "type": "timestamp_us"},
    {"name": "school_id",      "type": "utf8"},
    {"name": "requests",       "type": "int64"},
    {"name": "status_5xx",     "type": "int64"},
    {"name": "latency_p95_ms", "type": "float64"},
    {"name": "holiday",        "type": "utf8"}
  ],
  "outputs": [
    {"name": "open_alerts",    "type": "utf8"},
    {"name": "reason_codes",   "type": "utf8"},
    {"name": "reason",         "type": "utf8"},
    {"name": "risk",           "type": "float64"},
    {"name": "alert_level",    "type": "utf8"},
    {"name": "open_incidents", "type": "int32"},
    {"name": "incidents",      "type": "utf8"},
    {"name": "last_minute",    "type": "timestamp_us"}
  ],
  "params": [
    {"name": "utc_offset_hours", "type": "int32", "default": 1, "description": "standard offset of the schools' time zone from UTC"},
    {"name": "eu_summer_time", "type": "bool", "default": true, "description": "one more hour from the last Sunday of March to the last Sunday of October"},
    {"name": "lookback_days", "type": "int32", "default": 28, "description": "days of history of the seasonal baseline"},
    {"name": "error_min_rate", "type": "float64", "default": 0.02, "description": "lowest 5xx rate that opens an incident"},
    {"name": "error_factor", "type": "float64", "default": 10, "description": "burn rate: the 5xx rate must be this many times the usual rate"},
    {"name": "latency_factor", "type": "float64", "default": 2, "description": "p95 latency over its baseline that opens a slowdown"},
    {"name": "silence_min_expected", "type": "float64", "default": 20, "description": "requests expected over a silent run that open a silence incident"},
    {"name": "quiet_minutes", "type": "int32", "default": 10, "description": "minutes without the condition before an incident clears"}
  ]
}`

var cfg = health.Default

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) error {
			cfg.UTCOffsetHours = int(p.Int32("utc_offset_hours"))
			cfg.EUSummerTime = p.Bool("eu_summer_time")
			cfg.LookbackDays = int(p.Int32("lookback_days"))
			cfg.ErrMinRate = p.Float64("error_min_rate")
			cfg.ErrFactor = p.Float64("error_factor")
			cfg.LatFactor = p.Float64("latency_factor")
			cfg.SilenceMin = p.Float64("silence_min_expected")
			cfg.Quiet = int(p.Int32("quiet_minutes"))
			switch {
			case cfg.UTCOffsetHours < -12 || cfg.UTCOffsetHours > 14:
				return fmt.Errorf("utc_offset_hours %d is not between -12 and 14", cfg.UTCOffsetHours)
			case cfg.LookbackDays < 7:
				return fmt.Errorf("lookback_days %d: want at least 7", cfg.LookbackDays)
			case cfg.Quiet < 1:
				return fmt.Errorf("quiet_minutes %d: want at least 1", cfg.Quiet)
			case cfg.LatFactor <= 1 || cfg.ErrFactor <= 1:
				return fmt.Errorf("latency_factor and error_factor must be above 1")
			}
			return nil
		},
		Eval: eval,
	})
}

func eval(in *vigie.Input, out *vigie.Output) error {
	platform, minute, school := in.Utf8(0), in.TimestampUS(1), in.Utf8(2)
	requests, e5, p95, holiday := in.Int64(3), in.Int64(4), in.Float64(5), in.Utf8(6)
	openAlerts, codes, reason, risk, level := out.Utf8(0), out.Utf8(1), out.Utf8(2), out.Float64(3), out.Utf8(4)
	openCount, history, last := out.Int32(5), out.Utf8(6), out.TimestampUS(7)
	for g := range in.NumGroups() {
		start, end := in.GroupBounds(g)
		name := ""
		var newest int64
		seen := false
		for r := start; r < end; r++ {
			if name == "" && !platform.IsNull(r) {
				name = platform.Value(r)
			}
			if !minute.IsNull(r) {
				if t := minute.Value(r); !seen || t > newest {
					newest, seen = t, true
				}
			}
		}
		if !seen {
			continue
		}
		// The rows are read where they are, twice, never copied: a
		// platform's term is millions of rows.
		incs := health.DetectFunc(cfg, name, end-start, func(i int, row *health.Row) bool {
			r := start + i
			if minute.IsNull(r) || school.IsNull(r) {
				return false
			}
			*row = health.Row{Minute: floorDiv(minute.Value(r), 1e6), School: school.Value(r), P95: math.NaN()}
			if !requests.IsNull(r) {
				row.Requests = requests.Value(r)
			}
			if !e5.IsNull(r) {
				row.S5xx = e5.Value(r)
			}
			if !p95.IsNull(r) {
				row.P95 = p95.Value(r)
			}
			row.Holiday = !holiday.IsNull(r) && holiday.Value(r) != ""
			return true
		})
		var o, c, rs, h []string
		for _, x := range incs {
			opened := stamp(x.Opened)
			cleared := ""
			if x.Cleared == 0 {
				o = append(o, x.ID+":"+x.Code+":"+opened)
				c = append(c, x.Code)
				rs = append(rs, x.Reason)
			} else {
				cleared = stamp(x.Cleared)
			}
			h = append(h, x.ID+":"+x.Code+":"+x.School+":"+opened+":"+cleared)
		}
		openAlerts.Set(g, strings.Join(o, ";"))
		codes.Set(g, strings.Join(c, ";"))
		reason.Set(g, strings.Join(rs, "; "))
		risk.Set(g, float64(len(o)))
		if len(o) > 0 {
			level.Set(g, "incident")
		} else {
			level.Set(g, "ok")
		}
		openCount.Set(g, int32(len(o)))
		history.Set(g, strings.Join(h, ";"))
		last.Set(g, newest)
	}
	return nil
}

// stamp formats Unix seconds as 20250916T0801Z (no colon: the alerts
// stage splits open alerts on colons).
func stamp(t int64) string { return time.Unix(t, 0).UTC().Format("20060102T1504Z") }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func main() {}
