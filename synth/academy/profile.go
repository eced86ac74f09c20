package academy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Track is the kind of school a student is in.
type Track uint8

// Tracks of French lower and upper secondary school.
const (
	College Track = iota // collège, 6e to 3e
	LGT                  // lycée général et technologique, 2nde to Tle
	LP                   // lycée professionnel (vocational), 2nde pro to Tle pro
	numTracks
)

func (t Track) String() string { return [...]string{"college", "lgt", "lp"}[t] }

// ByTrack holds one value per track.
type ByTrack struct {
	College float64 `json:"college" toml:"college"`
	LGT     float64 `json:"lgt" toml:"lgt"`
	LP      float64 `json:"lp" toml:"lp"`
}

// Of returns the value for a track.
func (b ByTrack) Of(t Track) float64 {
	switch t {
	case College:
		return b.College
	case LGT:
		return b.LGT
	}
	return b.LP
}

// Profile holds the rates of the generator. Every field has a default in
// DefaultProfile; a profile file (JSON or TOML) overrides only what it sets.
// Rates are per student and per school year unless said otherwise.
type Profile struct {
	// TrackShare is the share of students per track. Approximate: about
	// 3.4 M collège pupils, 1.6 M in lycées généraux et technologiques and
	// 0.6 M in lycées professionnels in France (DEPP, Repères et références
	// statistiques, recent editions).
	TrackShare ByTrack `json:"track_share" toml:"track_share"`
	// ClassSize is the target size of a class (division) per track.
	ClassSize ByTrack `json:"class_size" toml:"class_size"`

	// Unjustified4 is the share of (student, month) pairs with 4 or more
	// unjustified absent half-days. DEPP (Note d'information on
	// absenteeism in public secondary schools): 4.5 % of pupils on average
	// over the year, 13.8 % in lycées professionnels. The collège / LGT split
	// is approximate, chosen so that the weighted mean is about 4.5 %.
	Unjustified4 ByTrack `json:"unjustified_4plus_monthly" toml:"unjustified_4plus_monthly"`
	// JustifiedRate is the mean share of half-days missed with a reason
	// (illness, family...), outside sick weeks. Approximate.
	JustifiedRate float64 `json:"justified_rate" toml:"justified_rate"`

	// DriftRate is the share of students who start drifting toward dropout
	// during the year, and DropoutGivenDrift the share of those who leave.
	// Approximate, from the order of magnitude of published figures: about
	// 80 000 young people leave school without a diploma each year in France
	// (ministère / DEPP), and the early school leaving rate of 18-24 year-olds
	// is about 7-8 % (INSEE / Eurostat, 7.6 % in 2022); vocational lycées
	// account for most of the leavers, collège pupils are under compulsory
	// schooling (until 16) and rarely leave.
	DriftRate         ByTrack `json:"drift_rate" toml:"drift_rate"`
	DropoutGivenDrift ByTrack `json:"dropout_given_drift" toml:"dropout_given_drift"`
	// SignalAbsences, SignalMarks, SignalPlatform are the probabilities
	// that a drifting student shows each signal (at least one is shown).
	SignalAbsences float64 `json:"signal_absences" toml:"signal_absences"`
	SignalMarks    float64 `json:"signal_marks" toml:"signal_marks"`
	SignalPlatform float64 `json:"signal_platform" toml:"signal_platform"`

	// Noise: students who stay but look like drifters for a while, and data
	// faults.
	SickWeekRate       float64 `json:"sick_week_rate" toml:"sick_week_rate"`             // a week of justified illness
	BadTermRate        float64 `json:"bad_term_rate" toml:"bad_term_rate"`               // marks fall for one term, then recover
	PlatformLullRate   float64 `json:"platform_lull_rate" toml:"platform_lull_rate"`     // weeks without platform activity
	TransferRate       float64 `json:"transfer_rate" toml:"transfer_rate"`               // moves away during the year
	TypoRate           float64 `json:"typo_rate" toml:"typo_rate"`                       // per mark: decimal slip (14.5 typed 1.45)
	LateCorrectionRate float64 `json:"late_correction_rate" toml:"late_correction_rate"` // per unjustified absence: justified later

	// Marks.
	AbsentFromTestRate float64 `json:"absent_from_test_rate" toml:"absent_from_test_rate"` // per mark, besides absences
	ExemptRate         float64 `json:"exempt_rate" toml:"exempt_rate"`                     // "Disp"
	NotGradedRate      float64 `json:"not_graded_rate" toml:"not_graded_rate"`             // "N.Not"
	OtherScaleRate     float64 `json:"other_scale_rate" toml:"other_scale_rate"`           // Pronote marks on /10 or /40

	// SessionsPerWeek is the mean number of ENT/LMS sessions (one xAPI
	// statement each) per student and school week. Approximate.
	SessionsPerWeek float64 `json:"sessions_per_week" toml:"sessions_per_week"`
}

// DefaultProfile returns the default rates (see the field comments for
// their sources).
func DefaultProfile() Profile {
	return Profile{
		TrackShare:         ByTrack{College: 0.60, LGT: 0.29, LP: 0.11},
		ClassSize:          ByTrack{College: 25, LGT: 30, LP: 20},
		Unjustified4:       ByTrack{College: 0.030, LGT: 0.040, LP: 0.138},
		JustifiedRate:      0.025,
		DriftRate:          ByTrack{College: 0.02, LGT: 0.03, LP: 0.08},
		DropoutGivenDrift:  ByTrack{College: 0.2, LGT: 0.5, LP: 0.6},
		SignalAbsences:     0.75,
		SignalMarks:        0.6,
		SignalPlatform:     0.65,
		SickWeekRate:       0.2,
		BadTermRate:        0.12,
		PlatformLullRate:   0.15,
		TransferRate:       0.02,
		TypoRate:           0.002,
		LateCorrectionRate: 0.05,
		AbsentFromTestRate: 0.02,
		ExemptRate:         0.005,
		NotGradedRate:      0.005,
		OtherScaleRate:     0.05,
		SessionsPerWeek:    0.5,
	}
}

// LoadProfile reads a JSON (.json) or TOML (any other extension) profile
// over the defaults. Unknown keys are an error.
func LoadProfile(path string) (Profile, error) {
	p := DefaultProfile()
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&p); err != nil {
			return p, fmt.Errorf("profile %s: %w", path, err)
		}
	} else {
		md, err := toml.Decode(string(b), &p)
		if err != nil {
			return p, fmt.Errorf("profile %s: %w", path, err)
		}
		if u := md.Undecoded(); len(u) > 0 {
			return p, fmt.Errorf("profile %s: unknown key %q", path, u[0].String())
		}
	}
	return p, p.Validate()
}

// Validate checks that rates are probabilities and sizes positive.
func (p Profile) Validate() error {
	probs := map[string]float64{
		"justified_rate": p.JustifiedRate, "signal_absences": p.SignalAbsences, "signal_marks": p.SignalMarks,
		"signal_platform": p.SignalPlatform, "sick_week_rate": p.SickWeekRate, "bad_term_rate": p.BadTermRate,
		"platform_lull_rate": p.PlatformLullRate, "transfer_rate": p.TransferRate, "typo_rate": p.TypoRate,
		"late_correction_rate": p.LateCorrectionRate, "absent_from_test_rate": p.AbsentFromTestRate,
		"exempt_rate": p.ExemptRate, "not_graded_rate": p.NotGradedRate, "other_scale_rate": p.OtherScaleRate,
	}
	for _, t := range []Track{College, LGT, LP} {
		probs["track_share."+t.String()] = p.TrackShare.Of(t)
		probs["unjustified_4plus_monthly."+t.String()] = p.Unjustified4.Of(t)
		probs["drift_rate."+t.String()] = p.DriftRate.Of(t)
		probs["dropout_given_drift."+t.String()] = p.DropoutGivenDrift.Of(t)
		if p.ClassSize.Of(t) < 1 {
			return fmt.Errorf("class_size.%s must be at least 1", t)
		}
	}
	for k, v := range probs {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("%s = %v: want a rate between 0 and 1", k, v)
		}
	}
	if s := p.TrackShare.College + p.TrackShare.LGT + p.TrackShare.LP; s <= 0 {
		return fmt.Errorf("track_share sums to %v", s)
	}
	if p.SessionsPerWeek < 0 {
		return fmt.Errorf("sessions_per_week = %v: want >= 0", p.SessionsPerWeek)
	}
	return nil
}
