// Command xapi_day is a map rule that turns xAPI statements, as the
// built-in "xapi" source reads them (actor, timestamp), into platform
// sessions of the early-warning timeline: student_id and date, the day
// of the statement in the school's time zone (Europe/Paris by default:
// UTC+1, UTC+2 from the last Sunday of March to the last Sunday of
// October, computed without a time zone database, which the sandbox does
// not have). See examples/pipelines/term_xapi.toml.
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o xapi_day.wasm .

import (
	"fmt"
	"time"

	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

const manifest = `{
  "abi": 1,
  "name": "xapi_day",
  "version": "1.0.0",
  "description": "student_id and local date of an xAPI statement",
  "kind": "map",
  "inputs": [
    {"name": "actor",     "type": "utf8"},
    {"name": "timestamp", "type": "timestamp_us"}
  ],
  "outputs": [
    {"name": "student_id", "type": "utf8"},
    {"name": "date",       "type": "date32"}
  ],
  "params": [
    {"name": "utc_offset_hours", "type": "int32", "default": 1,
     "description": "standard offset of the school's time zone from UTC"},
    {"name": "eu_summer_time", "type": "bool", "default": true,
     "description": "add one hour from the last Sunday of March to the last Sunday of October (01:00 UTC), as in the EU"}
  ]
}`

var (
	offset int64
	summer bool
)

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) error {
			h := p.Int64("utc_offset_hours")
			if h < -12 || h > 14 {
				return fmt.Errorf("utc_offset_hours %d is not between -12 and 14", h)
			}
			offset, summer = h*3600, p.Bool("eu_summer_time")
			return nil
		},
		Eval: func(in *vigie.Input, out *vigie.Output) error {
			actor, ts := in.Utf8(0), in.TimestampUS(1)
			id, date := out.Utf8(0), out.Date32(1)
			for r := range in.Len() {
				if actor.IsNull(r) || ts.IsNull(r) {
					id.SetNull(r)
					continue
				}
				id.Set(r, actor.Value(r))
				date.Set(r, LocalDay(ts.Value(r), offset, summer))
			}
			return nil
		},
	})
}

// LocalDay is the local day (days since 1970-01-01) of a UTC time in
// microseconds.
func LocalDay(us, offset int64, summer bool) int32 {
	sec := us / 1e6
	if summer {
		t := time.Unix(sec, 0).UTC()
		if y := t.Year(); sec >= lastSunday(y, time.March) && sec < lastSunday(y, time.October) {
			sec += 3600
		}
	}
	sec += offset
	d := sec / 86400
	if sec < 0 && sec%86400 != 0 {
		d--
	}
	return int32(d)
}

// lastSunday is 01:00 UTC on the last Sunday of month m of year y.
func lastSunday(y int, m time.Month) int64 {
	t := time.Date(y, m+1, 1, 1, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	for t.Weekday() != time.Sunday {
		t = t.AddDate(0, 0, -1)
	}
	return t.Unix()
}

func main() {}
