package config

import (
	"path/filepath"
	"slices"
	"time"
)

// Privacy is the [privacy] table: which columns are personal, which are
// pseudonymised at the sources and with which key, and how long the data
// the engine owns is kept (docs/privacy.md).
type Privacy struct {
	// Pseudonymise names the identifier columns replaced by a keyed
	// pseudonym right after each source that has them.
	Pseudonymise []string
	// Personal names every column that holds personal data (the
	// pseudonymised ones are added); vigie validate reports where they go.
	Personal []string
	// KeyEnv or KeyFile (absolute) gives the key; never the key itself.
	KeyEnv, KeyFile string
	// PreviousKeyEnv or PreviousKeyFile gives the key before a rotation,
	// used for lookups (re-identification, state export) only, until
	// PreviousKeyUntil (inclusive); zero when there is none.
	PreviousKeyEnv, PreviousKeyFile string
	PreviousKeyUntil                time.Time
	// Retention of what the engine keeps; zero keeps forever.
	Retention Retention
	Pos       Pos // the [privacy] header
}

// Retention bounds how long the engine keeps data.
type Retention struct {
	// State drops kept timeline rows whose event time is older than this
	// before now.
	State time.Duration
	// DeadLetter removes a dead letter output older than this.
	DeadLetter time.Duration
	// Outputs removes the files of file sinks older than this.
	Outputs time.Duration
}

// Default retention with a [privacy] table: one school year for state and
// outputs (the CNIL's limit for school management data), a month for dead
// letters (time to fix an input).
const (
	DefaultStateRetention      = 365 * 24 * time.Hour
	DefaultOutputRetention     = 365 * 24 * time.Hour
	DefaultDeadLetterRetention = 30 * 24 * time.Hour
)

// Reidentify is a sink's reidentify table: the one delivery where a
// pseudonymised column is turned back into clear values.
type Reidentify struct {
	Column string // a pseudonymised column of the sink's input
	Lookup string // the source whose clear values resolve it
}

// PersonalColumns returns Personal and Pseudonymise together, without
// duplicates, or nil without a [privacy] table.
func (p *Privacy) PersonalColumns() []string {
	if p == nil {
		return nil
	}
	out := slices.Clone(p.Personal)
	for _, c := range p.Pseudonymise {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func privacyFields() []field {
	return []field{
		{"pseudonymise", kStrings, false},
		{"personal", kStrings, false},
		{"key_env", kString, false},
		{"key_file", kString, false},
		{"previous_key_env", kString, false},
		{"previous_key_file", kString, false},
		{"previous_key_until", kString, false},
		{"retention", kTable, false},
	}
}

func retentionFields() []field {
	return []field{
		{"state", kString, false},
		{"dead_letter", kString, false},
		{"outputs", kString, false},
	}
}

func reidentifyFields() []field {
	return []field{
		{"column", kString, true},
		{"lookup", kString, true},
	}
}

func (c *checker) privacy(p *Pipeline, m map[string]any) {
	pr := &Privacy{Pos: c.at("privacy"), Retention: Retention{
		State: DefaultStateRetention, DeadLetter: DefaultDeadLetterRetention, Outputs: DefaultOutputRetention,
	}}
	p.Privacy = pr
	v := c.fields("privacy", pr.Pos, m, privacyFields())
	pr.Pseudonymise = c.strings(v["pseudonymise"])
	pr.Personal = c.strings(v["personal"])
	pr.KeyEnv, _ = v["key_env"].(string)
	if f, ok := v["key_file"].(string); ok {
		pr.KeyFile = p.Resolve(c.nonEmpty("privacy.key_file", f))
	}
	pr.PreviousKeyEnv, _ = v["previous_key_env"].(string)
	if f, ok := v["previous_key_file"].(string); ok {
		pr.PreviousKeyFile = p.Resolve(c.nonEmpty("privacy.previous_key_file", f))
	}
	if len(pr.Pseudonymise) > 0 && (pr.KeyEnv == "") == (pr.KeyFile == "") {
		c.fail(pr.Pos, "privacy.key_env", "pseudonymise needs exactly one of key_env (an environment variable) and key_file (a file) holding the key; the key itself never goes in pipeline.toml")
	}
	if pr.PreviousKeyEnv != "" && pr.PreviousKeyFile != "" {
		c.fail(c.at("privacy.previous_key_file"), "privacy.previous_key_file", "previous_key_env and previous_key_file exclude each other")
	}
	hasPrev := pr.PreviousKeyEnv != "" || pr.PreviousKeyFile != ""
	if s, ok := v["previous_key_until"].(string); ok {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			c.fail(c.at("privacy.previous_key_until"), "privacy.previous_key_until", "expected a date such as \"2027-01-31\", got %q", s)
		}
		pr.PreviousKeyUntil = d
	}
	if hasPrev && pr.PreviousKeyUntil.IsZero() {
		c.fail(pr.Pos, "privacy.previous_key_until", "a previous key needs previous_key_until, the last day it may be used for lookups")
	}
	if rm, ok := v["retention"].(map[string]any); ok {
		rv := c.fields("privacy.retention", c.at("privacy.retention"), rm, retentionFields())
		for key, dst := range map[string]*time.Duration{"state": &pr.Retention.State, "dead_letter": &pr.Retention.DeadLetter, "outputs": &pr.Retention.Outputs} {
			s, ok := rv[key].(string)
			if !ok {
				continue
			}
			if s == "forever" {
				*dst = 0
				continue
			}
			d, err := parseRetention(s)
			if err != nil || d <= 0 {
				c.fail(c.at("privacy.retention."+key), "privacy.retention."+key, "expected a positive duration such as \"365d\", \"6w\" or \"72h\", or \"forever\", got %q", s)
			}
			*dst = d
		}
	}
}

// sinkPrivacy reads the privacy keys of a [[sink]]: columns and reidentify.
func (c *checker) sinkPrivacy(path string, s *Sink, v map[string]any) {
	if _, ok := v["columns"]; ok {
		s.Columns = c.strings(v["columns"])
		if len(s.Columns) == 0 {
			c.fail(c.at(path+".columns"), path+".columns", "must name at least one column")
		}
	}
	if m, ok := v["reidentify"].(map[string]any); ok {
		rv := c.fields(path+".reidentify", c.at(path+".reidentify"), m, reidentifyFields())
		r := &Reidentify{}
		r.Column, _ = rv["column"].(string)
		r.Lookup, _ = rv["lookup"].(string)
		s.Reidentify = r
	}
}

// checkPrivacy checks what refers to the [privacy] table, once every stage
// is known.
func (c *checker) checkPrivacy(p *Pipeline) {
	for i, s := range p.Sinks {
		r := s.Reidentify
		if r == nil {
			continue
		}
		path := indexKey("sink", i) + ".reidentify"
		if p.Privacy == nil || !slices.Contains(p.Privacy.Pseudonymise, r.Column) {
			c.fail(c.at(path+".column"), path+".column", "column %q is not pseudonymised ([privacy] pseudonymise): there is nothing to re-identify", r.Column)
		}
		if r.Lookup != "" && p.Source(r.Lookup) == nil && !c.partial {
			c.fail(c.at(path+".lookup"), path+".lookup", "lookup %q is not a source: it must name the source whose clear identifiers resolve the pseudonyms (a roster)", r.Lookup)
		}
	}
}

// defaultAuditLog is where runs are recorded without [pipeline] audit_log:
// next to the state (a sibling of state_dir), or else next to the dead
// letters.
func defaultAuditLog(p *Pipeline) string {
	switch {
	case p.Name == "":
		return ""
	case p.StateDir != "":
		return filepath.Join(filepath.Dir(p.StateDir), p.Name+".audit.jsonl")
	case p.DeadLetter != "":
		return filepath.Join(filepath.Dir(p.DeadLetter), p.Name+".audit.jsonl")
	}
	return ""
}
