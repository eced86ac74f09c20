// Command early_warning is the group rule of Vigie's default indicator
// pack: over each student's timeline (absent half-days, term marks and
// platform sessions, in one table with a common date column) it computes
// attendance, course-performance and engagement indicators day by day, a
// composite risk in [0,1] with reason codes and a readable reason, and
// alerts with hysteresis and ids stable across reruns. The logic is in
// package indicators; docs/indicators.md explains it for teachers.
//
// Rows are told apart by which columns are set: a row with a period is a
// mark (its date is the end of the term, see term_ends), a row with a half
// (AM/PM) is an absent half-day, any other row with a date is a platform
// session.
//
// Build it (from the repository root):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o examples/rules/early_warning/early_warning.wasm ./examples/rules/early_warning
package main

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o early_warning.wasm .

import (
	"math"
	"strings"

	"github.com/vigie-edu/vigie/indicators"
	"github.com/vigie-edu/vigie/rules/sdk/vigie"
)

var manifest = `{
  "abi": 1,
  "name": "early_warning",
  "version": "1.0.0",
  "description": "Per-student early-warning indicators (attendance, marks, platform), composite risk with reasons, alerts with hysteresis",
  "kind": "group",
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
  "outputs": [
    {"name": "risk",             "type": "float64"},
    {"name": "alert_level",      "type": "utf8"},
    {"name": "reason_codes",     "type": "utf8"},
    {"name": "reason",           "type": "utf8"},
    {"name": "open_alerts",      "type": "utf8"},
    {"name": "open_alert_count", "type": "int32"},
    {"name": "first_alert",      "type": "date32"},
    {"name": "alerts_opened",    "type": "int32"},
    {"name": "alert_history",    "type": "utf8"},
    {"name": "max_risk",         "type": "float64"},
    {"name": "drift_chance",     "type": "float64"}
  ],
  "params": ` + indicators.ParamsJSON(indicators.Params) + `
}`

const (
	inStudent = iota
	inDate
	inHalf
	inJustified
	inCorrects
	inRecordedAt
	inSubject
	inPeriod
	inMark
	inStatus
)

var (
	cfg  *indicators.Config
	memo *indicators.Memo
)

// memoBytes bounds the state kept between calls for continuous runs
// (as_of = "latest", emit = "per_row"): with each student's last replay
// state, the next call for the same student replays only from its newest
// day (indicators.Memo). About 10 KB a student: some 3,000 students; past
// that the least recently scored are replayed in full, as without a memo.
// The instance's memory is 256 MiB by default (rules/ABI.md).
const memoBytes = 32 << 20

func init() {
	vigie.Register(vigie.Rule{
		Manifest: manifest,
		Init: func(p vigie.Params) (err error) {
			if cfg, err = indicators.Load(p, indicators.Params); err != nil {
				return err
			}
			memo = cfg.NewMemo(memoBytes)
			return nil
		},
		Eval: eval,
	})
}

func eval(in *vigie.Input, out *vigie.Output) error {
	student, date, half, justified := in.Utf8(inStudent), in.Date32(inDate), in.Utf8(inHalf), in.Bool(inJustified)
	corrects, recorded := in.Utf8(inCorrects), in.Utf8(inRecordedAt)
	subject, period, mark, status := in.Utf8(inSubject), in.Utf8(inPeriod), in.Float64(inMark), in.Utf8(inStatus)
	risk, level, codes, reason := out.Float64(0), out.Utf8(1), out.Utf8(2), out.Utf8(3)
	openAlerts, openCount, first, opened, history, maxRisk := out.Utf8(4), out.Int32(5), out.Date32(6), out.Int32(7), out.Utf8(8), out.Float64(9)
	chance := out.Float64(10)
	var events []indicators.Event
	for g := range in.NumGroups() {
		start, end := in.GroupBounds(g)
		events = events[:0]
		id := ""
		// The student: the group's last non-null student_id (rows are read
		// with Bytes, without a string per value, the rule's main cost
		// after Evaluate: see docs/performance.md).
		for r := end - 1; r >= start; r-- {
			if !student.IsNull(r) {
				id = student.Value(r)
				break
			}
		}
		// Late corrections: the id of the corrected record -> the day the
		// correction was recorded.
		var corrected map[int64]int32
		for r := start; r < end; r++ {
			if !half.IsNull(r) && !date.IsNull(r) && !corrects.IsNull(r) && len(corrects.Bytes(r)) > 0 && !recorded.IsNull(r) {
				if d, err := indicators.ParseDay(first10(recorded.Value(r))); err == nil {
					if corrected == nil {
						corrected = map[int64]int32{}
					}
					corrected[halfDay(date.Value(r), half.Bytes(r))] = d
				}
			}
		}
		for r := start; r < end; r++ {
			switch {
			case !period.IsNull(r):
				t, ok := termBytes(period.Bytes(r))
				if !ok {
					continue
				}
				e := indicators.Event{Kind: indicators.Mark, Term: t, Mark: math.NaN()}
				if !subject.IsNull(r) {
					e.Subject = subjects.intern(subject.Bytes(r))
				}
				st := okStatus
				if !status.IsNull(r) {
					st = status.Bytes(r)
				}
				switch st := string(st); { // not escaping: no allocation
				case st == "ok" && !mark.IsNull(r):
					e.Mark = mark.Value(r)
				case st == "absent" || st == "not_graded" || st == "missing":
				default:
					continue // exempt: neither a mark nor a missing one
				}
				events = append(events, e)
			case date.IsNull(r):
				continue
			case !half.IsNull(r):
				if !corrects.IsNull(r) && len(corrects.Bytes(r)) > 0 {
					continue // the correction itself: applied to the record it corrects
				}
				e := indicators.Event{Kind: indicators.Absence, Day: date.Value(r)}
				e.Justified = !justified.IsNull(r) && justified.Value(r)
				if d, ok := corrected[halfDay(date.Value(r), half.Bytes(r))]; ok {
					e.CorrectedDay = d
				}
				events = append(events, e)
			default:
				events = append(events, indicators.Event{Kind: indicators.Activity, Day: date.Value(r)})
			}
		}
		res := memo.Evaluate(id, events) // cfg.Evaluate, resumed when it can be
		risk.Set(g, res.Risk)
		level.Set(g, res.Level)
		codes.Set(g, strings.Join(res.Codes, ";"))
		reason.Set(g, res.Reason)
		var o, h []string
		for _, a := range res.Alerts {
			closed := ""
			if a.Closed >= 0 {
				closed = indicators.FormatDay(a.Closed)
			} else {
				o = append(o, a.ID+":"+a.Code+":"+indicators.FormatDay(a.Opened))
			}
			h = append(h, a.ID+":"+a.Code+":"+indicators.FormatDay(a.Opened)+":"+closed)
		}
		openAlerts.Set(g, strings.Join(o, ";"))
		openCount.Set(g, int32(len(o)))
		if res.FirstAlert >= 0 {
			first.Set(g, res.FirstAlert)
		}
		opened.Set(g, int32(len(res.Alerts)))
		history.Set(g, strings.Join(h, ";"))
		maxRisk.Set(g, res.MaxRisk)
		chance.Set(g, res.Chance)
	}
	return nil
}

// halfDay identifies an absent half-day: a correction row has the date and
// half of the record it corrects.
func halfDay(day int32, half []byte) int64 {
	k := int64(day) * 2
	if string(half) == "PM" {
		k++
	}
	return k
}

func first10(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

var okStatus = []byte("ok")

// interner keeps one string per distinct subject, so that a mark's
// subject is not a new string per row; it stops adding past maxInterned
// distinct values (a column that is not a short list of subjects).
type interner map[string]string

const maxInterned = 4096

var subjects = interner{}

func (in interner) intern(b []byte) string {
	if s, ok := in[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(in) < maxInterned {
		in[s] = s
	}
	return s
}

// termBytes is term without a string per row: ASCII periods are read in
// place, anything else goes through term.
func termBytes(p []byte) (int, bool) {
	for _, c := range p {
		if c >= 0x80 {
			return term(string(p))
		}
	}
	for len(p) > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\v' || p[0] == '\f' || p[0] == '\r') {
		p = p[1:]
	}
	for len(p) > 0 && (p[len(p)-1] == ' ' || p[len(p)-1] == '\t' || p[len(p)-1] == '\n' || p[len(p)-1] == '\v' || p[len(p)-1] == '\f' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	if len(p) > 0 && (p[0] == 'T' || p[0] == 't') {
		p = p[1:]
	}
	if len(p) == 1 && p[0] >= '1' && p[0] <= '9' {
		return int(p[0] - '1'), true
	}
	return 0, false
}

// term maps T1, T2, T3 (or 1, 2, 3) to 0, 1, 2.
func term(p string) (int, bool) {
	p = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(p)), "T")
	if len(p) == 1 && p[0] >= '1' && p[0] <= '9' {
		return int(p[0] - '1'), true
	}
	return 0, false
}

func main() {}
