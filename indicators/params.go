// Package indicators is the logic of Vigie's default early-warning rule
// pack: per-student indicators of attendance, course performance and
// platform engagement, a composite risk in [0,1] with reason codes and a
// readable reason, and the alert policy (hysteresis, one open alert per
// student and reason, ids stable across reruns).
//
// It uses only the standard library so that the rules of examples/rules
// (compiled with GOOS=wasip1 GOARCH=wasm) can share it, and it compiles
// natively for its tests. Everything is computed causally: the state of a
// student at day d depends only on the events dated up to d, so one run over
// a term or a year gives, for every day, what a run on that day would have
// given, and a rerun on the same data gives the same alerts.
package indicators

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Param describes one parameter of the pack, as it appears in a rule
// manifest.
type Param struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // float64, int32 or utf8
	Default     any    `json:"default"`
	Description string `json:"description"`
}

// Params are the parameters of the timeline rule (early_warning), in
// manifest order. Config.Set accepts each of them.
var Params = []Param{
	// Calendar.
	{"no_school", "utf8", DefaultNoSchool, "days without lessons besides weekends, comma-separated: yyyy-mm-dd or yyyy-mm-dd/yyyy-mm-dd ranges (default: 2025-2026, zone C)"},
	{"half_days_week", "utf8", "2,2,1,2,2,0,0", "school half-days on Monday..Sunday (French timetable: no lessons on Wednesday afternoon)"},
	{"term_ends", "utf8", DefaultTermEnds, "last day of each term (T1,T2,T3), comma-separated yyyy-mm-dd: term marks become known on that day"},
	{"as_of", "utf8", "", "day of the report, yyyy-mm-dd (default: the last term end), or \"latest\": the newest event day of the timeline evaluated (continuous runs, emit = \"per_row\"); the timeline is replayed day by day up to it"},
	// Attendance.
	{"window_days", "int32", 28, "length of the recent window, in days, of the attendance and platform indicators"},
	{"chronic_rate", "float64", 0.10, "ABS_RATE: share of school half-days missed (justified or not) over the window from which absence is chronic"},
	{"unjustified_days", "int32", 30, "ABS_UNJ: length in days of the 'month' of unjustified absences"},
	{"unjustified_min", "int32", 4, "ABS_UNJ: unjustified half-days over unjustified_days from which it is reported (4, the French reporting threshold)"},
	{"trend_days", "int32", 49, "ABS_TREND: length in days of the recent window compared with the student's own usual rate"},
	{"trend_factor", "float64", 3.0, "ABS_TREND: unjustified half-days over the window at least this many times the student's own usual rate"},
	{"trend_min", "int32", 18, "ABS_TREND: and at least this many unjustified half-days over trend_days"},
	{"baseline_min_days", "int32", 28, "days of history needed before the window for a baseline (ABS_TREND, PLATFORM_DROP)"},
	{"streak_weeks", "int32", 0, "ABS_STREAK: consecutive school weeks (holiday weeks skipped) with at least one unjustified half-day from which it is raised (0: off)"},
	{"streak_min_half_days", "int32", 0, "ABS_STREAK: and at least this many unjustified half-days over those weeks"},
	{"cusum_min", "float64", 0.0, "ABS_CUSUM: CUSUM score (log-likelihood ratio of a drift against the student's usual rate of unjustified half-days) from which it is raised (0: off)"},
	{"cusum_rate", "float64", 0.15, "ABS_CUSUM: rate of unjustified half-days of a drift (per school half-day)"},
	{"cusum_prior_rate", "float64", 0.01, "ABS_CUSUM: usual rate of unjustified half-days assumed before the student's own history counts"},
	{"cusum_prior_half_days", "float64", 100, "ABS_CUSUM: weight of cusum_prior_rate, in school half-days, against the student's own history"},
	{"months_min", "int32", 0, "ABS_MONTHS: calendar months, among the last months_span (the current one included), with month_min_half_days unjustified half-days or more, from which it is raised (0: off)"},
	{"month_min_half_days", "int32", 3, "ABS_MONTHS: unjustified half-days in a calendar month from which the month counts"},
	{"months_span", "int32", 2, "ABS_MONTHS: calendar months looked at, the current one included"},
	{"months_usual_max", "float64", 0.2, "ABS_MONTHS: not raised when, before the span, the student already had such months this often (share of the months with 16 school half-days or more; the student's own baseline)"},
	{"use_corrections", "int32", 1, "1: a late correction justifies the half-day it corrects from the day it is recorded; 0: the unjustified indicators keep the reason as first recorded"},
	{"drift_min", "float64", 0.6, "ABS_DRIFT: posterior probability that a drift of unjustified absences has started (model in docs/indicators.md) from which it is raised; its severity is that probability (0: off)"},
	{"drift_prior", "float64", 0.03, "ABS_DRIFT: prior chance that a student drifts during the year"},
	{"drift_from", "utf8", "2025-11-01", "ABS_DRIFT: first day a drift may start (yyyy-mm-dd)"},
	{"drift_to", "utf8", "2026-03-15", "ABS_DRIFT: last day a drift may start (yyyy-mm-dd)"},
	{"history_from", "utf8", "2025-09-01", "ABS_DRIFT: first day of the student's history (the school year's start)"},
	{"drift_rate", "float64", 0.2, "ABS_DRIFT: a drift's rate of unjustified half-days per school half-day once it has ramped up"},
	{"drift_ramp_half_days", "float64", 80, "ABS_DRIFT: school half-days a drift's rate takes to ramp up from 0"},
	{"drift_episode", "float64", 0.85, "ABS_DRIFT: chance of an episode of unjustified absences in each month of a drift"},
	{"episode_prior", "float64", 0.05, "ABS_DRIFT: usual chance of a month with an episode of unjustified absences (a truant's), before the student's own months count"},
	{"episode_prior_months", "float64", 4, "ABS_DRIFT: weight of episode_prior, in months, against the student's own months before the onset"},
	{"episode_min", "int32", 4, "ABS_DRIFT: unjustified half-days of an episode, at least"},
	{"episode_more", "float64", 0.6, "ABS_DRIFT: chance of each further half-day of an episode"},
	{"sporadic_rate", "float64", 0.003, "ABS_DRIFT: rate of unjustified half-days outside episodes and drifts, per school half-day"},
	// Course performance.
	{"low_average", "float64", 8.0, "MARK_LOW: average of the last term (all subjects, /20) below which it is raised"},
	{"fall_points", "float64", 5.0, "MARK_FALL: fall of the average between two consecutive terms, in points /20, from which it is raised"},
	{"core_subjects", "utf8", "maths,francais", "CORE_FAIL: core subjects, comma-separated"},
	{"core_fail_mark", "float64", 8.0, "CORE_FAIL: a core subject's term average below this fails"},
	{"core_fail_count", "int32", 2, "CORE_FAIL: failed core subjects in the last term from which it is raised"},
	{"missing_min", "int32", 2, "MISSING: marks missing (absent from the test, not graded) in the last term from which it is raised"},
	// Engagement.
	{"drop_ratio", "float64", 0.10, "PLATFORM_DROP: sessions over the window at most this share of what the student's own baseline predicts"},
	{"drop_min_expected", "float64", 5.0, "PLATFORM_DROP: only when the baseline predicts at least this many sessions over the window"},
	{"inactive_days", "int32", 42, "INACTIVE: days without platform activity from which it is raised"},
	{"inactive_min_sessions", "int32", 6, "INACTIVE: only for students with at least this many sessions before"},
	// Composite risk: 1 - prod(1 - weight * severity), severity 0.5 at the threshold up to 1.
	{"w_abs_rate", "float64", 0.10, "weight of ABS_RATE in the risk"},
	{"w_abs_unj", "float64", 0.0, "weight of ABS_UNJ in the risk"},
	{"w_abs_trend", "float64", 0.70, "weight of ABS_TREND in the risk"},
	{"w_mark_low", "float64", 0.10, "weight of MARK_LOW in the risk"},
	{"w_mark_fall", "float64", 0.45, "weight of MARK_FALL in the risk"},
	{"w_core_fail", "float64", 0.10, "weight of CORE_FAIL in the risk"},
	{"w_missing", "float64", 0.20, "weight of MISSING in the risk"},
	{"w_platform_drop", "float64", 0.30, "weight of PLATFORM_DROP in the risk"},
	{"w_inactive", "float64", 0.15, "weight of INACTIVE in the risk"},
	{"w_abs_streak", "float64", 0.0, "weight of ABS_STREAK in the risk"},
	{"w_abs_cusum", "float64", 0.0, "weight of ABS_CUSUM in the risk"},
	{"w_abs_months", "float64", 0.0, "weight of ABS_MONTHS in the risk"},
	{"w_abs_drift", "float64", 1.0, "weight of ABS_DRIFT in the risk"},
	{"w_combo", "float64", 0.0, "extra part of the risk when indicators of two or more families (attendance, marks, platform) are on together"},
	// Alerts.
	{"raise_at", "float64", 0.65, "an alert opens when the risk reaches this level (level 'alert')"},
	{"clear_below", "float64", 0.30, "an open alert clears when the risk falls below this level (hysteresis); from it up to raise_at the level is 'watch'"},
	{"alert_share", "float64", 0.5, "when the risk reaches raise_at, an alert opens for each reason whose part of the risk is at least this share of the largest part"},
	{"raise_days", "int32", 1, "an alert opens only when the risk has been at least raise_at this many days in a row (persistence)"},
	{"lang", "utf8", "en", "language of the reasons: en (English) or fr (French)"},
	{"calib_a", "float64", 0.0, "calibration: the chance that a student drifts this year (output drift_chance) is 1/(1+exp(-(calib_a + calib_b × logit(x)))), x the year's highest ABS_DRIFT posterior (max_risk when ABS_DRIFT is off)"},
	{"calib_b", "float64", 1.0, "calibration: see calib_a (0 and 1: x itself)"},
	{"calib_points", "utf8", DefaultCalibPoints, "calibration: an isotonic map x:chance,x:chance,... (x increasing) from the same x, interpolated linearly; when set it replaces calib_a, calib_b (examples/indicators/tune --calibration fits it)"},
	{"clear_days", "int32", 14, "an open alert also clears when its own indicator has been off for this many days"},
}

// DefaultNoSchool are the weekdays without lessons of 2025-2026 in zone C
// (holidays and public holidays), as in examples/data/calendar.csv.
const DefaultNoSchool = "2025-10-20/2025-10-31,2025-11-11,2025-12-22/2026-01-02,2026-02-23/2026-03-06," +
	"2026-04-06,2026-04-20/2026-05-01,2026-05-08,2026-05-14/2026-05-15,2026-05-25,2026-07-04/2026-08-31"

// DefaultTermEnds are the ends of the trimesters of 2025-2026.
const DefaultTermEnds = "2025-11-30,2026-03-15,2026-07-03"

// ParamsJSON returns params as the JSON array of a manifest's "params".
func ParamsJSON(params []Param) string {
	b, err := json.MarshalIndent(params, "  ", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Getter reads a parameter of the given type (float64, int32 or utf8) with
// its default filled in: the SDK's vigie.Params does that.
type Getter interface {
	Float64(name string) float64
	Int64(name string) int64
	String(name string) string
}

// Load fills a Config from a Getter over the params of the manifest.
func Load(g Getter, params []Param) (*Config, error) {
	c := DefaultConfig()
	for _, p := range params {
		var v any
		switch p.Type {
		case "float64":
			v = g.Float64(p.Name)
		case "int32", "int64":
			v = float64(g.Int64(p.Name))
		default:
			v = g.String(p.Name)
		}
		if err := c.Set(p.Name, v); err != nil {
			return nil, err
		}
	}
	return c, c.check()
}

// DefaultConfig returns the configuration of the defaults of Params.
func DefaultConfig() *Config {
	c := &Config{}
	for _, p := range Params {
		v := p.Default
		if i, ok := v.(int); ok {
			v = float64(i)
		}
		if err := c.Set(p.Name, v); err != nil {
			panic(err)
		}
	}
	return c
}

// Set sets the parameter name to v (a float64 for numbers, a string for
// utf8 parameters).
func (c *Config) Set(name string, v any) error {
	f, isNum := v.(float64)
	s, _ := v.(string)
	num := map[string]*float64{
		"chronic_rate": &c.ChronicRate, "trend_factor": &c.TrendFactor, "low_average": &c.LowAverage,
		"fall_points": &c.FallPoints, "core_fail_mark": &c.CoreFailMark, "drop_ratio": &c.DropRatio,
		"drop_min_expected": &c.DropMinExpected, "raise_at": &c.RaiseAt, "w_combo": &c.Combo, "cusum_min": &c.CusumMin, "cusum_rate": &c.CusumRate,
		"cusum_prior_rate": &c.CusumPriorRate, "cusum_prior_half_days": &c.CusumPriorHalfDays, "alert_share": &c.AlertShare, "clear_below": &c.ClearBelow,
		"months_usual_max": &c.MonthsUsualMax, "drift_min": &c.DriftMin, "drift_prior": &c.DriftPrior,
		"drift_rate": &c.DriftRate, "drift_ramp_half_days": &c.DriftRampHalfDays, "drift_episode": &c.DriftEpisode,
		"episode_prior": &c.EpisodePrior, "episode_prior_months": &c.EpisodePriorMonths, "episode_more": &c.EpisodeMore,
		"sporadic_rate": &c.SporadicRate, "calib_a": &c.CalibA, "calib_b": &c.CalibB,
	}
	ints := map[string]*int{
		"window_days": &c.WindowDays, "unjustified_days": &c.UnjustifiedDays, "unjustified_min": &c.UnjustifiedMin,
		"trend_min": &c.TrendMin, "trend_days": &c.TrendDays, "baseline_min_days": &c.BaselineMinDays, "core_fail_count": &c.CoreFailCount,
		"missing_min": &c.MissingMin, "inactive_days": &c.InactiveDays, "inactive_min_sessions": &c.InactiveMinSessions,
		"clear_days": &c.ClearDays, "raise_days": &c.RaiseDays, "streak_weeks": &c.StreakWeeks,
		"streak_min_half_days": &c.StreakMinHalfDays, "months_min": &c.MonthsMin, "month_min_half_days": &c.MonthMinHalfDays,
		"months_span": &c.MonthsSpan, "episode_min": &c.EpisodeMin,
	}
	if strings.HasPrefix(name, "w_") {
		code := strings.ToUpper(strings.TrimPrefix(name, "w_"))
		for i, k := range Codes {
			if k == code && isNum {
				c.Weights[i] = f
				return nil
			}
		}
	}
	if p, ok := num[name]; ok && isNum {
		*p = f
		return nil
	}
	if p, ok := ints[name]; ok && isNum {
		*p = int(f)
		return nil
	}
	var err error
	switch name {
	case "calib_points":
		c.CalibPoints = nil
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			a, b, _ := strings.Cut(f, ":")
			x, err1 := strconv.ParseFloat(a, 64)
			y, err2 := strconv.ParseFloat(b, 64)
			if err1 != nil || err2 != nil || (len(c.CalibPoints) > 0 && x <= c.CalibPoints[len(c.CalibPoints)-1][0]) {
				return fmt.Errorf("param \"calib_points\": %q is not x:chance with x increasing", f)
			}
			c.CalibPoints = append(c.CalibPoints, [2]float64{x, y})
		}
	case "lang":
		if s != "en" && s != "fr" {
			return fmt.Errorf("param \"lang\": %q is not en or fr", s)
		}
		c.Lang = s
	case "drift_from":
		c.DriftFrom, err = ParseDay(s)
	case "drift_to":
		c.DriftTo, err = ParseDay(s)
	case "history_from":
		c.HistoryFrom, err = ParseDay(s)
	case "use_corrections":
		c.UseCorrections = f != 0
	case "no_school":
		c.NoSchool, err = parseDaySet(s)
	case "half_days_week":
		c.HalfDaysWeek, err = parseWeek(s)
	case "term_ends":
		c.TermEnds, err = parseDays(s)
	case "as_of":
		c.AsOf = -1
		if s == "latest" {
			c.AsOf = AsOfLatest
		} else if s != "" {
			c.AsOf, err = ParseDay(s)
		}
	case "core_subjects":
		c.CoreSubjects = nil
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				c.CoreSubjects = append(c.CoreSubjects, x)
			}
		}
	default:
		return fmt.Errorf("unknown parameter %q or wrong type %T", name, v)
	}
	if err != nil {
		return fmt.Errorf("param %q: %w", name, err)
	}
	return nil
}

func (c *Config) check() error {
	switch {
	case c.WindowDays < 7 || c.WindowDays > 366:
		return fmt.Errorf("window_days %d is not between 7 and 366", c.WindowDays)
	case c.TrendDays < 7 || c.TrendDays > 366:
		return fmt.Errorf("trend_days %d is not between 7 and 366", c.TrendDays)
	case c.UnjustifiedDays < 1 || c.UnjustifiedDays > 366:
		return fmt.Errorf("unjustified_days %d is not between 1 and 366", c.UnjustifiedDays)
	case c.ClearBelow < 0 || c.RaiseAt > 1 || c.ClearBelow > c.RaiseAt:
		return fmt.Errorf("need 0 <= clear_below (%v) <= raise_at (%v) <= 1", c.ClearBelow, c.RaiseAt)
	case len(c.TermEnds) == 0:
		return fmt.Errorf("term_ends is empty")
	case c.DriftMin > 0 && c.DriftMin <= c.DriftPrior:
		return fmt.Errorf("drift_min %v is not above drift_prior %v", c.DriftMin, c.DriftPrior)
	}
	for i, w := range c.Weights {
		if w < 0 || w > 1 {
			return fmt.Errorf("w_%s %v is not between 0 and 1", strings.ToLower(Codes[i]), w)
		}
	}
	return nil
}

// DefaultCalibPoints is the isotonic map of the drift score to the chance
// of a drift fitted on seeds 1 and 2 of vigie gen (20,000 students each)
// with the defaults: go run ./examples/indicators/tune --dir
// /dev/shm/ac1,/dev/shm/ac2 --students 20000 --calibration.
const DefaultCalibPoints = "0.008:0.0045,0.070:0.0100,0.155:0.0105,0.234:0.0148,0.339:0.0556,0.497:0.1462,0.714:0.1681,0.854:0.2424,0.926:0.4356,0.971:0.6554,0.999:0.9048"
