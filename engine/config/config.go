// Package config reads pipeline files (pipeline.toml, format version 1) into
// a checked [Pipeline]: the sources, rules and sinks of one pipeline and the
// graph that links them.
//
// Checking is strict and happens before any data moves: an unknown key, a
// wrong type, a missing required key, a bad stage name, a duplicate name, an
// input that does not bind, a cycle among rules are all errors that name the
// file, the line and the key path. [Parse] reports every problem it finds
// at once, as an [Errors] value sorted by line.
//
// Connector options and rule parameters are free-form here: they are
// checked later against the connector's spec and the rule's manifest, which
// can use [Source.OptionPos], [Sink.OptionPos] and [Rule.ParamPos] to point
// at the right line.
//
// The format is documented in docs/pipeline.md.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Limits and defaults of the [pipeline] table.
const (
	// FormatVersion is the only value accepted for the optional top-level
	// "version" key.
	FormatVersion = 1
	// MaxBatchRows is the largest accepted batch_rows (1 << 24).
	MaxBatchRows = 1 << 24
	// DefaultCheckpointInterval is the checkpoint_interval of a pipeline
	// that does not set it.
	DefaultCheckpointInterval = 500 * time.Millisecond
)

// Values of a rule's on_error key.
const (
	// OnErrorDeadLetter sends the rows of a batch the rule fails on to the
	// dead letter output, with the reason, and carries on. It is the default.
	OnErrorDeadLetter = "dead_letter"
	// OnErrorFail stops the pipeline when the rule fails on a batch.
	OnErrorFail = "fail"
)

// Pipeline is a checked pipeline file. All paths in it are absolute, except
// inside the free-form connector options and rule params, which the caller
// resolves with [Pipeline.Resolve]. A Pipeline is not modified after [Parse]
// returns it and may be shared across goroutines.
type Pipeline struct {
	File      string // absolute path of the pipeline file
	Dir       string // its folder; relative paths resolve against it
	Version   int    // format version; always FormatVersion
	Name      string
	BatchRows int // rows per batch, 1..MaxBatchRows
	// MaxDelay is the longest a row of an unbounded source waits for its
	// batch to fill (default protocol.DefaultMaxDelay).
	MaxDelay   time.Duration
	DeadLetter string // absolute path of the dead letter output
	PluginsDir string // absolute path of third-party plugins, "" when unset
	// StateDir holds the keyed state that rules with keep_state keep
	// between runs; absolute, "" when unset.
	StateDir string
	// StateMemoryMB bounds the memory of the state store (default 256).
	StateMemoryMB int
	Sources       []*Source
	Rules         []*Rule
	Joins         []*Join
	Unions        []*Union
	Alerts        []*Alerts
	Aggregates    []*Aggregate
	Sinks         []*Sink
	Pos           Pos // the [pipeline] header

	// DeadLetterThreshold and Bisect are the pipeline-wide failure
	// handling settings, which rules and sources inherit; StopTimeout
	// bounds a graceful stop (see docs/pipeline.md, "Failure handling").
	DeadLetterThreshold Threshold
	Bisect              Bisect
	StopTimeout         time.Duration

	// Privacy is the [privacy] table, nil when absent (docs/privacy.md).
	Privacy *Privacy
	// AuditLog is the append-only log every run is recorded in
	// (absolute); see engine/audit.
	AuditLog string
	// CheckpointInterval is how often a continuous run (an unbounded
	// source) records a checkpoint (default DefaultCheckpointInterval).
	CheckpointInterval time.Duration
}

// Source is a [[source]] table: a connector that reads data.
type Source struct {
	Name      string
	Connector string
	// Options is the free-form [source.options] table, never nil. Values
	// are TOML values as decoded by BurntSushi/toml: string, int64,
	// float64, bool, time.Time, []any, map[string]any.
	Options   map[string]any
	Pos       Pos            // the [[source]] header
	OptionPos map[string]Pos // line of each top-level key of Options
	// DeadLetterThreshold applies to the rows the source dead-letters.
	DeadLetterThreshold Threshold
}

// Rule is a [[rule]] table: a WebAssembly module applied to the output of
// one stage.
type Rule struct {
	Name   string
	Input  string // name of the source or rule it reads
	Module string // absolute path of the .wasm module
	// OnError is OnErrorDeadLetter or OnErrorFail.
	OnError string
	// SHA256, when set, pins the module: a module with another hash is
	// refused. Lowercase hex.
	SHA256 string
	// Workers is how many instances of the module run in parallel; 0
	// means one per CPU.
	Workers int
	// Replace lists upstream columns that the rule's outputs may replace.
	Replace []string
	// ProvenanceColumns adds rule_name, rule_version and rule_sha256
	// columns to the output (schema metadata always carries them).
	ProvenanceColumns bool
	// GroupBy and OrderBy apply to group rules: the key columns, and the
	// column that orders rows within a group ("" keeps arrival order).
	GroupBy []string
	OrderBy string
	// KeepState keeps each key's rows (its timeline) in the pipeline's
	// state_dir between runs, so that data can arrive run after run.
	KeepState bool
	// Retention drops rows older than the newest order_by value minus
	// this; 0 keeps everything.
	Retention time.Duration
	// MaxRowsPerKey keeps only each key's newest rows; 0 keeps all.
	MaxRowsPerKey int
	// CallRows bounds the rows of one call of a group rule evaluated at
	// the end of its input (whole groups per call; a larger group goes
	// alone); 0 means DefaultCallRows, or the pipeline's batch_rows when
	// that is smaller.
	CallRows int
	// Rescore is RescoreAll (every key is evaluated at each run) or
	// RescoreTouched (only keys that received rows in this run).
	Rescore string
	// Emit is EmitAtEnd (one row per key when the input ends) or
	// EmitPerRow (one row per input row: the rule's result for that row's
	// key as of that row), for group rules.
	Emit string
	// EmitPos is the line of the emit key, or of the header when absent.
	EmitPos Pos
	// AllowedLateness is how far behind its partition's newest event time
	// a row may be before it is late (emit = "per_row"); 0: nothing is
	// late. Late says what a late row becomes: LateRescore or
	// LateDeadLetter.
	AllowedLateness time.Duration
	Late            string
	// PartitionColumn and OffsetColumn name the input columns holding a
	// row's source partition (int32 or int64) and its arrival sequence in
	// that partition (int64, a Kafka offset); "" when the source has none
	// (one partition, sequence counted by the stage). Carry lists input
	// columns copied to each output row (emit = "per_row").
	PartitionColumn, OffsetColumn string
	Carry                         []string
	// Limits override the engine's defaults; zero fields keep them.
	Limits Limits
	// DeadLetterThreshold and Bisect bound the rule's failures (with
	// on_error = "dead_letter"); they default to the pipeline's.
	DeadLetterThreshold Threshold
	Bisect              Bisect
	// Params is the free-form [rule.params] table, never nil, with the
	// same value types as Source.Options.
	Params   map[string]any
	Pos      Pos            // the [[rule]] header
	ParamPos map[string]Pos // line of each top-level key of Params
}

// Join is a [[join]] table: it enriches each row of its input with the
// columns of the matching row of a dimension, a stage read whole first (a
// roster, a calendar).
type Join struct {
	Name      string
	Input     string   // the stage whose rows are enriched
	Dimension string   // the stage looked up
	On        []string // key columns, same names on both sides
	// Columns of the dimension to add; nil adds every non-key column.
	Columns []string
	// How is JoinLeft (unmatched rows keep nulls) or JoinInner
	// (unmatched rows go to the dead letters).
	How string
	Pos Pos // the [[join]] header
}

// Values of a join's how key.
const (
	JoinLeft  = "left"
	JoinInner = "inner"
)

// Union is a [[union]] table: the rows of several stages in one stream.
// Columns are matched by name; a column missing from an input is null in
// its rows.
type Union struct {
	Name   string
	Inputs []string
	Pos    Pos // the [[union]] header
}

// Alerts is an [[alerts]] table: it turns the rows of a group rule that
// lists each key's open alerts (the early-warning pack) into one row per
// change since the last announced state: opened, updated or cleared. What
// it announced is kept in the pipeline's state_dir between runs.
type Alerts struct {
	Name  string
	Input string // a group rule
	// Column names in the input; each defaults to the early-warning
	// pack's name (the Default* constants).
	Open, ReasonCodes, Reason, Risk, Level string
	// UpdateOn lists the columns whose change makes an open alert
	// "updated"; default reason_codes and alert_level.
	UpdateOn []string
	Pos      Pos            // the [[alerts]] header
	KeyPos   map[string]Pos // line of each key present
}

// Default column names of an [[alerts]] stage: the early-warning pack's.
const (
	DefaultAlertsOpen        = "open_alerts"
	DefaultAlertsReasonCodes = "reason_codes"
	DefaultAlertsReason      = "reason"
	DefaultAlertsRisk        = "risk"
	DefaultAlertsLevel       = "alert_level"
)

// At returns the line of key in the table, or the header's when the key
// is absent.
func (a *Alerts) At(key string) Pos {
	if p, ok := a.KeyPos[key]; ok {
		return p
	}
	return a.Pos
}

// Limits bound what one rule instance may use. Zero means the default.
type Limits struct {
	MemoryPages    int64         // 64 KiB WebAssembly pages
	Timeout        time.Duration // per evaluated batch
	MaxOutputBytes int64         // per evaluated batch
	MaxLogBytes    int64         // per evaluated batch
}

// Sink is a [[sink]] table: a connector that writes the output of one
// stage.
type Sink struct {
	Name      string
	Input     string // name of the source or rule it writes
	Connector string
	Options   map[string]any // free-form [sink.options], never nil
	Pos       Pos            // the [[sink]] header
	OptionPos map[string]Pos // line of each top-level key of Options
	// Columns, when set, are the only columns the sink writes.
	Columns []string
	// Reidentify, when set, turns a pseudonymised column back into clear
	// values for this sink alone.
	Reidentify *Reidentify
}

// Load reads and parses the pipeline file at path. Errors in the content of
// the file are returned as [Errors].
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load pipeline: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and checks the content of a pipeline file. file is the name
// used in error messages and, made absolute, the base of relative paths.
// When the content is wrong, the error is an [Errors] holding every problem
// found, sorted by line.
func Parse(file string, data []byte) (*Pipeline, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("parse pipeline %q: %w", file, err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		e := &Error{Pos: Pos{File: file, Line: 1}, Msg: "invalid TOML: " + err.Error()}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// Messages of the decoder may start with a capital letter and end
			// with a period; errors of this package do neither.
			msg := strings.TrimSuffix(pe.Message, ".")
			if msg != "" {
				msg = strings.ToLower(msg[:1]) + msg[1:]
			}
			e.Pos.Line = max(pe.Position.Line, 1)
			e.Msg = "invalid TOML: " + msg
		}
		return nil, Errors{e}
	}
	c := &checker{file: file, loc: locate(data)}
	p := &Pipeline{File: abs, Dir: filepath.Dir(abs), Version: FormatVersion}
	c.document(p, raw)
	if len(c.errs) > 0 {
		c.errs.sort()
		return nil, c.errs
	}
	return p, nil
}

// Resolve returns path made absolute against the folder of the pipeline
// file. An absolute path is only cleaned; "" stays "".
func (p *Pipeline) Resolve(path string) string {
	if path == "" {
		return ""
	}
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(p.Dir, path)
}

// kind is the TOML type a known key must have.
type kind int

const (
	kString kind = iota
	kInteger
	kTable
	kTables // array of tables
	kBool
	kStrings // array of strings
	kNumber  // integer or float
)

func (k kind) String() string {
	switch k {
	case kString:
		return "string"
	case kInteger:
		return "integer"
	case kTable:
		return "table"
	case kBool:
		return "boolean"
	case kStrings:
		return "array of strings"
	case kNumber:
		return "number"
	default:
		return "array of tables"
	}
}

// field is a known key of a table.
type field struct {
	key      string
	kind     kind
	required bool
}

func topFields() []field {
	return []field{
		{"version", kInteger, false},
		{"pipeline", kTable, false}, // required; reported by document
		{"source", kTables, false},
		{"rule", kTables, false},
		{"join", kTables, false},
		{"union", kTables, false},
		{"alerts", kTables, false},
		{"aggregate", kTables, false},
		{"sink", kTables, false},
		{"privacy", kTable, false},
	}
}

func pipelineFields() []field {
	return []field{
		{"name", kString, true},
		{"batch_rows", kInteger, false},
		{"max_delay", kString, false},
		{"checkpoint_interval", kString, false},
		{"dead_letter", kString, false},
		{"plugins_dir", kString, false},
		{"state_dir", kString, false},
		{"state_memory_mb", kInteger, false},
		{"dead_letter_window", kInteger, false},
		{"dead_letter_max_share", kNumber, false},
		{"bisect_max_calls", kInteger, false},
		{"bisect_max_time", kString, false},
		{"stop_timeout", kString, false},
		{"audit_log", kString, false},
	}
}

func sourceFields() []field {
	return []field{
		{"name", kString, true},
		{"connector", kString, true},
		{"options", kTable, false},
		{"dead_letter_window", kInteger, false},
		{"dead_letter_max_share", kNumber, false},
	}
}

func ruleFields() []field {
	return []field{
		{"name", kString, true},
		{"input", kString, true},
		{"module", kString, true},
		{"on_error", kString, false},
		{"params", kTable, false},
		{"sha256", kString, false},
		{"workers", kInteger, false},
		{"replace", kStrings, false},
		{"provenance_columns", kBool, false},
		{"group_by", kStrings, false},
		{"order_by", kString, false},
		{"keep_state", kBool, false},
		{"retention", kString, false},
		{"max_rows_per_key", kInteger, false},
		{"call_rows", kInteger, false},
		{"rescore", kString, false},
		{"emit", kString, false},
		{"allowed_lateness", kString, false},
		{"late", kString, false},
		{"partition_column", kString, false},
		{"offset_column", kString, false},
		{"carry", kStrings, false},
		{"limits", kTable, false},
		{"dead_letter_window", kInteger, false},
		{"dead_letter_max_share", kNumber, false},
		{"bisect_max_calls", kInteger, false},
		{"bisect_max_time", kString, false},
	}
}

func joinFields() []field {
	return []field{
		{"name", kString, true},
		{"input", kString, true},
		{"dimension", kString, true},
		{"on", kStrings, true},
		{"columns", kStrings, false},
		{"how", kString, false},
	}
}

func unionFields() []field {
	return []field{
		{"name", kString, true},
		{"inputs", kStrings, true},
	}
}

func alertsFields() []field {
	return []field{
		{"name", kString, true},
		{"input", kString, true},
		{"open", kString, false},
		{"reason_codes", kString, false},
		{"reason", kString, false},
		{"risk", kString, false},
		{"level", kString, false},
		{"update_on", kStrings, false},
	}
}

func limitFields() []field {
	return []field{
		{"memory_pages", kInteger, false},
		{"timeout", kString, false},
		{"max_output_bytes", kInteger, false},
		{"max_log_bytes", kInteger, false},
	}
}

func sinkFields() []field {
	return []field{
		{"name", kString, true},
		{"input", kString, true},
		{"connector", kString, true},
		{"options", kTable, false},
		{"columns", kStrings, false},
		{"reidentify", kTable, false},
	}
}

// checker accumulates errors while it walks the decoded document.
type checker struct {
	file string
	loc  *locator
	errs Errors
	// partial is set when some stage could not be read (a misspelt or
	// mistyped stage table, a stage without a usable name): an input that
	// names no known stage may then name that one, so it is not reported.
	partial bool
}

// at returns the position of a key path.
func (c *checker) at(path string) Pos {
	return Pos{File: c.file, Line: c.loc.line(path)}
}

// whole is the position of an error about the file as a whole (a missing
// table, no source): its first line, so that every error reads
// "file:line: ..." and editors can jump to it.
func (c *checker) whole() Pos {
	return Pos{File: c.file, Line: 1}
}

func (c *checker) fail(pos Pos, key, format string, args ...any) {
	c.errs = append(c.errs, &Error{Pos: pos, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fields checks table m, at key path, against spec: unknown keys, wrong
// types, missing required keys (reported at header). It returns the values
// of known keys that have the right type.
func (c *checker) fields(path string, header Pos, m map[string]any, spec []field) map[string]any {
	known := make([]string, len(spec))
	for i, f := range spec {
		known[i] = f.key
	}
	good := map[string]any{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kp := joinKey(path, k)
		i := slices.Index(known, k)
		if i < 0 {
			what := "key"
			if _, ok := asTables(m[k]); ok {
				what = "table"
			} else if _, ok := m[k].(map[string]any); ok {
				what = "table"
			}
			if s := didYouMean(k, known); s != "" {
				c.fail(c.at(kp), kp, "unknown %s%s", what, s)
			} else {
				c.fail(c.at(kp), kp, "unknown %s; allowed keys: %s", what, strings.Join(known, ", "))
			}
			continue
		}
		if !matches(spec[i].kind, m[k]) {
			c.fail(c.at(kp), kp, "expected %s, got %s", spec[i].kind, typeName(m[k]))
			continue
		}
		good[k] = m[k]
	}
	for _, f := range spec {
		if _, ok := m[f.key]; f.required && !ok {
			c.fail(header, joinKey(path, f.key), "missing required key")
		}
	}
	return good
}

// matches reports whether v has the TOML type k.
func matches(k kind, v any) bool {
	switch k {
	case kString:
		_, ok := v.(string)
		return ok
	case kInteger:
		_, ok := v.(int64)
		return ok
	case kTable:
		_, ok := v.(map[string]any)
		return ok
	case kBool:
		_, ok := v.(bool)
		return ok
	case kNumber:
		_, ok := number(v)
		return ok
	case kStrings:
		l, ok := v.([]any)
		if !ok {
			return false
		}
		for _, e := range l {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	default:
		_, ok := asTables(v)
		return ok
	}
}

// asTables returns v as an array of tables, whether it was written as
// [[x]] headers or as an inline array of inline tables.
func asTables(v any) ([]map[string]any, bool) {
	switch t := v.(type) {
	case []map[string]any:
		return t, true
	case []any:
		out := make([]map[string]any, len(t))
		for i, e := range t {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out[i] = m
		}
		return out, true
	}
	return nil, false
}

// typeName names the TOML type of a decoded value.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	case []any:
		return "array"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// validName reports whether s matches ^[a-z][a-z0-9_]*$.
func validName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

const nameRule = "a name must start with a lowercase letter and contain only lowercase letters, digits and underscores"

// name checks a stage or pipeline name found at key path. It returns ""
// when the name is missing or not a string.
func (c *checker) name(path string, v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	if !validName(s) {
		c.fail(c.at(path), path, "invalid name %q: %s", s, nameRule)
	}
	return s
}

// stageName checks the name of the stage at path. A stage without a usable
// name makes the check partial.
func (c *checker) stageName(path string, v any) string {
	s := c.name(path+".name", v)
	if s == "" {
		c.partial = true
	}
	return s
}

// nonEmpty returns the string at key path, reporting it when empty.
func (c *checker) nonEmpty(path string, v any) string {
	s, ok := v.(string)
	if ok && s == "" {
		c.fail(c.at(path), path, "must not be empty")
	}
	return s
}

// document checks the whole file and fills p.
func (c *checker) document(p *Pipeline, raw map[string]any) {
	top := c.fields("", c.whole(), raw, topFields())
	if len(top) < len(raw) {
		c.partial = true
	}
	if v, ok := top["version"].(int64); ok && v != FormatVersion {
		c.fail(c.at("version"), "version", "unsupported format version %d: this vigie reads version %d", v, FormatVersion)
	}
	if m, ok := top["pipeline"].(map[string]any); ok {
		c.pipeline(p, m)
	}
	if m, ok := top["privacy"].(map[string]any); ok {
		c.privacy(p, m)
	}
	if _, ok := raw["pipeline"]; !ok {
		c.fail(c.whole(), "pipeline", "missing required table [pipeline]")
	}
	srcs, _ := asTables(top["source"])
	for i, m := range srcs {
		p.Sources = append(p.Sources, c.source(p, indexKey("source", i), m))
	}
	rules, _ := asTables(top["rule"])
	for i, m := range rules {
		p.Rules = append(p.Rules, c.rule(p, indexKey("rule", i), m))
	}
	joins, _ := asTables(top["join"])
	for i, m := range joins {
		p.Joins = append(p.Joins, c.join(indexKey("join", i), m))
	}
	unions, _ := asTables(top["union"])
	for i, m := range unions {
		p.Unions = append(p.Unions, c.union(indexKey("union", i), m))
	}
	alerts, _ := asTables(top["alerts"])
	for i, m := range alerts {
		p.Alerts = append(p.Alerts, c.alerts(p, indexKey("alerts", i), m))
	}
	aggs, _ := asTables(top["aggregate"])
	for i, m := range aggs {
		p.Aggregates = append(p.Aggregates, c.aggregate(p, indexKey("aggregate", i), m))
	}
	sinks, _ := asTables(top["sink"])
	for i, m := range sinks {
		p.Sinks = append(p.Sinks, c.sink(indexKey("sink", i), m))
	}
	// A wrongly typed source or sink key was reported already.
	if _, ok := raw["source"]; len(srcs) == 0 && (!ok || matches(kTables, raw["source"])) {
		c.fail(c.whole(), "source", "no source: a pipeline needs at least one [[source]]")
	}
	if _, ok := raw["sink"]; len(sinks) == 0 && (!ok || matches(kTables, raw["sink"])) {
		c.fail(c.whole(), "sink", "no sink: a pipeline needs at least one [[sink]]")
	}
	c.graph(p)
	c.checkPrivacy(p)
}

func (c *checker) pipeline(p *Pipeline, m map[string]any) {
	p.Pos = c.at("pipeline")
	v := c.fields("pipeline", p.Pos, m, pipelineFields())
	p.Name = c.name("pipeline.name", v["name"])
	p.BatchRows = protocol.DefaultBatchRows
	if n, ok := v["batch_rows"].(int64); ok {
		if n < 1 || n > MaxBatchRows {
			c.fail(c.at("pipeline.batch_rows"), "pipeline.batch_rows",
				"must be between 1 and %d, got %d", MaxBatchRows, n)
		}
		p.BatchRows = int(n)
	}
	p.MaxDelay = protocol.DefaultMaxDelay
	if d, ok := c.duration("pipeline", v, "max_delay"); ok {
		p.MaxDelay = d
	}
	p.CheckpointInterval = DefaultCheckpointInterval
	if d, ok := c.duration("pipeline", v, "checkpoint_interval"); ok {
		p.CheckpointInterval = d
	}
	if dl, ok := v["dead_letter"]; ok {
		p.DeadLetter = p.Resolve(c.nonEmpty("pipeline.dead_letter", dl))
	} else if p.Name != "" {
		p.DeadLetter = p.Resolve(filepath.Join("out", p.Name+".dead_letter.csv"))
	}
	if pd, ok := v["plugins_dir"]; ok {
		p.PluginsDir = p.Resolve(c.nonEmpty("pipeline.plugins_dir", pd))
	}
	if sd, ok := v["state_dir"]; ok {
		p.StateDir = p.Resolve(c.nonEmpty("pipeline.state_dir", sd))
	}
	p.StateMemoryMB = 256
	if n, ok := v["state_memory_mb"].(int64); ok {
		if n < 8 || n > 1<<20 {
			c.fail(c.at("pipeline.state_memory_mb"), "pipeline.state_memory_mb", "must be between 8 and 1048576, got %d", n)
		}
		p.StateMemoryMB = int(n)
	}
	p.DeadLetterThreshold = c.threshold("pipeline", v, Threshold{Window: DefaultDeadLetterWindow, MaxShare: DefaultDeadLetterMaxShare})
	p.Bisect = c.bisect("pipeline", v, Bisect{MaxCalls: DefaultBisectMaxCalls, MaxTime: DefaultBisectMaxTime})
	p.StopTimeout = DefaultStopTimeout
	if d, ok := c.duration("pipeline", v, "stop_timeout"); ok {
		p.StopTimeout = d
	}
	if al, ok := v["audit_log"]; ok {
		p.AuditLog = p.Resolve(c.nonEmpty("pipeline.audit_log", al))
	} else {
		p.AuditLog = defaultAuditLog(p)
	}
}

// freeForm returns a free-form table (options, params) and the line of each
// of its top-level keys.
func (c *checker) freeForm(path string, v any) (map[string]any, map[string]Pos) {
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	pos := make(map[string]Pos, len(m))
	for k := range m {
		pos[k] = c.at(joinKey(path, k))
	}
	return m, pos
}

func (c *checker) source(p *Pipeline, path string, m map[string]any) *Source {
	s := &Source{Pos: c.at(path)}
	v := c.fields(path, s.Pos, m, sourceFields())
	s.DeadLetterThreshold = c.threshold(path, v, p.DeadLetterThreshold)
	s.Name = c.stageName(path, v["name"])
	s.Connector = c.nonEmpty(path+".connector", v["connector"])
	s.Options, s.OptionPos = c.freeForm(path+".options", v["options"])
	return s
}

func (c *checker) rule(p *Pipeline, path string, m map[string]any) *Rule {
	r := &Rule{Pos: c.at(path), OnError: OnErrorDeadLetter}
	v := c.fields(path, r.Pos, m, ruleFields())
	r.Name = c.stageName(path, v["name"])
	r.Input = c.nonEmpty(path+".input", v["input"])
	r.Module = p.Resolve(c.nonEmpty(path+".module", v["module"]))
	if oe, ok := v["on_error"].(string); ok {
		if oe != OnErrorDeadLetter && oe != OnErrorFail {
			c.fail(c.at(path+".on_error"), path+".on_error",
				"invalid value %q: allowed values are %q and %q", oe, OnErrorDeadLetter, OnErrorFail)
		}
		r.OnError = oe
	}
	r.Params, r.ParamPos = c.freeForm(path+".params", v["params"])
	r.DeadLetterThreshold = c.threshold(path, v, p.DeadLetterThreshold)
	r.Bisect = c.bisect(path, v, p.Bisect)
	if h, ok := v["sha256"].(string); ok {
		if !sha256Hex().MatchString(h) {
			c.fail(c.at(path+".sha256"), path+".sha256", "expected 64 lowercase hexadecimal digits, got %q", h)
		}
		r.SHA256 = h
	}
	if w, ok := v["workers"].(int64); ok {
		if w < 0 || w > MaxWorkers {
			c.fail(c.at(path+".workers"), path+".workers", "must be between 0 (one per CPU) and %d, got %d", MaxWorkers, w)
		}
		r.Workers = int(w)
	}
	r.Replace = c.strings(v["replace"])
	r.ProvenanceColumns, _ = v["provenance_columns"].(bool)
	r.GroupBy = c.strings(v["group_by"])
	r.OrderBy, _ = v["order_by"].(string)
	if r.OrderBy != "" && len(r.GroupBy) == 0 {
		c.fail(c.at(path+".order_by"), path+".order_by", "order_by needs group_by")
	}
	if lm, ok := v["limits"].(map[string]any); ok {
		r.Limits = c.limits(path+".limits", lm)
	}
	r.KeepState, _ = v["keep_state"].(bool)
	if r.KeepState && r.OrderBy == "" {
		c.fail(c.at(path+".keep_state"), path+".keep_state", "keep_state needs group_by and order_by (the event time that orders each key's rows)")
	}
	if r.KeepState && p.StateDir == "" {
		c.fail(c.at(path+".keep_state"), path+".keep_state", "keep_state needs [pipeline] state_dir, the folder where state is kept")
	}
	if s, ok := v["retention"].(string); ok {
		d, err := parseRetention(s)
		switch {
		case err != nil || d <= 0:
			c.fail(c.at(path+".retention"), path+".retention", "expected a positive duration such as \"180d\", \"6w\" or \"72h\", got %q", s)
		case r.OrderBy == "":
			c.fail(c.at(path+".retention"), path+".retention", "retention needs order_by, the event time it counts from")
		}
		r.Retention = d
	}
	if n, ok := v["max_rows_per_key"].(int64); ok {
		if n <= 0 || len(r.GroupBy) == 0 {
			c.fail(c.at(path+".max_rows_per_key"), path+".max_rows_per_key", "must be positive and needs group_by, got %d", n)
		}
		r.MaxRowsPerKey = int(n)
	}
	if n, ok := v["call_rows"].(int64); ok {
		if n < 1 || n > MaxBatchRows || len(r.GroupBy) == 0 {
			c.fail(c.at(path+".call_rows"), path+".call_rows", "must be between 1 and %d and needs group_by, got %d", MaxBatchRows, n)
		}
		r.CallRows = int(n)
	}
	r.Rescore = RescoreAll
	if rs, ok := v["rescore"].(string); ok {
		if rs != RescoreAll && rs != RescoreTouched {
			c.fail(c.at(path+".rescore"), path+".rescore", "invalid value %q: allowed values are %q and %q", rs, RescoreAll, RescoreTouched)
		}
		r.Rescore = rs
	}
	c.eventTime(path, v, r)
	return r
}

// eventTime reads the keys of a group rule in event time (docs/design/streaming.md, sections 3-4).
func (c *checker) eventTime(path string, v map[string]any, r *Rule) {
	r.Emit, r.EmitPos = EmitAtEnd, r.Pos
	if e, ok := v["emit"].(string); ok {
		r.EmitPos = c.at(path + ".emit")
		switch {
		case e != EmitAtEnd && e != EmitPerRow:
			c.fail(c.at(path+".emit"), path+".emit", "invalid value %q: allowed values are %q and %q", e, EmitAtEnd, EmitPerRow)
		case e == EmitPerRow && r.OrderBy == "":
			c.fail(c.at(path+".emit"), path+".emit", "emit = %q needs group_by and order_by (the event time of each key's rows)", e)
		}
		r.Emit = e
	}
	perRow := func(key string) {
		if r.Emit != EmitPerRow {
			c.fail(c.at(path+"."+key), path+"."+key, "%s applies to emit = %q only", key, EmitPerRow)
		}
	}
	if s, ok := v["allowed_lateness"].(string); ok {
		perRow("allowed_lateness")
		d, err := parseRetention(s)
		if err != nil || d < 0 {
			c.fail(c.at(path+".allowed_lateness"), path+".allowed_lateness", "expected a duration such as \"2d\" or \"36h\", got %q", s)
		}
		r.AllowedLateness = d
	}
	r.Late = LateRescore
	if l, ok := v["late"].(string); ok {
		perRow("late")
		if l != LateRescore && l != LateDeadLetter {
			c.fail(c.at(path+".late"), path+".late", "invalid value %q: allowed values are %q and %q", l, LateRescore, LateDeadLetter)
		}
		r.Late = l
	}
	for key, dst := range map[string]*string{"partition_column": &r.PartitionColumn, "offset_column": &r.OffsetColumn} {
		if s, ok := v[key].(string); ok {
			perRow(key)
			*dst = s
		}
	}
	if _, ok := v["carry"]; ok {
		perRow("carry")
		r.Carry = c.strings(v["carry"])
	}
}

// Values of a rule's rescore key.
const (
	RescoreAll     = "all"
	RescoreTouched = "touched"
)

// Values of a group rule's emit key.
const (
	EmitAtEnd  = "at_end"
	EmitPerRow = "per_row"
)

// Values of a group rule's late key.
const (
	LateRescore    = "rescore"
	LateDeadLetter = "dead_letter"
)

// parseRetention reads a duration, accepting days ("180d") and weeks
// ("6w") besides Go's units.
func parseRetention(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			if v, err := strconv.Atoi(n); err == nil {
				return time.Duration(v) * unit, nil
			}
		}
	}
	return time.ParseDuration(s)
}

// DefaultCallRows is the default of a group rule's call_rows: each
// instance's linear memory grows to what its largest call needs and never
// shrinks, so calls of 16K rows keep N instances' memory about a third of
// what 64K-row calls need, for the same CPU (docs/performance.md).
const DefaultCallRows = 16384

// MaxWorkers bounds a rule's workers key.
const MaxWorkers = 256

var sha256Hex = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

func (c *checker) strings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, e.(string))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (c *checker) limits(path string, m map[string]any) Limits {
	var l Limits
	v := c.fields(path, c.at(path), m, limitFields())
	positive := func(key string) int64 {
		n, ok := v[key].(int64)
		if ok && n <= 0 {
			c.fail(c.at(path+"."+key), path+"."+key, "must be positive, got %d", n)
		}
		return n
	}
	l.MemoryPages = positive("memory_pages")
	if l.MemoryPages > 65536 {
		c.fail(c.at(path+".memory_pages"), path+".memory_pages", "at most 65536 pages (4 GiB, the wasm32 maximum), got %d", l.MemoryPages)
	}
	l.MaxOutputBytes = positive("max_output_bytes")
	l.MaxLogBytes = positive("max_log_bytes")
	if s, ok := v["timeout"].(string); ok {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			c.fail(c.at(path+".timeout"), path+".timeout", "expected a duration such as \"500ms\" or \"10s\", got %q", s)
		case d <= 0:
			c.fail(c.at(path+".timeout"), path+".timeout", "must be positive, got %q", s)
		}
		l.Timeout = d
	}
	return l
}

func (c *checker) join(path string, m map[string]any) *Join {
	j := &Join{Pos: c.at(path), How: JoinLeft}
	v := c.fields(path, j.Pos, m, joinFields())
	j.Name = c.stageName(path, v["name"])
	j.Input = c.nonEmpty(path+".input", v["input"])
	j.Dimension = c.nonEmpty(path+".dimension", v["dimension"])
	j.On = c.strings(v["on"])
	if _, ok := v["on"]; ok && len(j.On) == 0 {
		c.fail(c.at(path+".on"), path+".on", "must name at least one key column")
	}
	j.Columns = c.strings(v["columns"])
	if how, ok := v["how"].(string); ok {
		if how != JoinLeft && how != JoinInner {
			c.fail(c.at(path+".how"), path+".how", "invalid value %q: allowed values are %q and %q", how, JoinLeft, JoinInner)
		}
		j.How = how
	}
	return j
}

func (c *checker) union(path string, m map[string]any) *Union {
	u := &Union{Pos: c.at(path)}
	v := c.fields(path, u.Pos, m, unionFields())
	u.Name = c.stageName(path, v["name"])
	u.Inputs = c.strings(v["inputs"])
	if _, ok := v["inputs"]; ok && len(u.Inputs) < 2 {
		c.fail(c.at(path+".inputs"), path+".inputs", "a union needs at least two inputs")
	}
	return u
}

func (c *checker) alerts(p *Pipeline, path string, m map[string]any) *Alerts {
	a := &Alerts{
		Pos: c.at(path), KeyPos: map[string]Pos{},
		Open: DefaultAlertsOpen, ReasonCodes: DefaultAlertsReasonCodes, Reason: DefaultAlertsReason,
		Risk: DefaultAlertsRisk, Level: DefaultAlertsLevel,
		UpdateOn: []string{DefaultAlertsReasonCodes, DefaultAlertsLevel},
	}
	v := c.fields(path, a.Pos, m, alertsFields())
	for k := range m {
		a.KeyPos[k] = c.at(path + "." + k)
	}
	a.Name = c.stageName(path, v["name"])
	a.Input = c.nonEmpty(path+".input", v["input"])
	for key, dst := range map[string]*string{"open": &a.Open, "reason_codes": &a.ReasonCodes, "reason": &a.Reason, "risk": &a.Risk, "level": &a.Level} {
		if _, ok := v[key]; ok {
			*dst = c.nonEmpty(path+"."+key, v[key])
		}
	}
	if _, ok := v["update_on"]; ok {
		a.UpdateOn = c.strings(v["update_on"])
	}
	if p.StateDir == "" {
		c.fail(a.Pos, path, "an alerts stage keeps the alerts it announced between runs: it needs [pipeline] state_dir")
	}
	return a
}

func (c *checker) sink(path string, m map[string]any) *Sink {
	s := &Sink{Pos: c.at(path)}
	v := c.fields(path, s.Pos, m, sinkFields())
	s.Name = c.stageName(path, v["name"])
	s.Input = c.nonEmpty(path+".input", v["input"])
	s.Connector = c.nonEmpty(path+".connector", v["connector"])
	s.Options, s.OptionPos = c.freeForm(path+".options", v["options"])
	c.sinkPrivacy(path, s, v)
	return s
}
