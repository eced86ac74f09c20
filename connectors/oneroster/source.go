// Package oneroster holds the "oneroster" source: it reads one table of a
// OneRoster 1.1 or 1.2 CSV bundle (a folder or a zip archive with
// manifest.csv) into typed Arrow batches, and dead-letters the rows whose
// references to the bundle's other tables are broken.
package oneroster

import (
	"context"
	"errors"
	"fmt"
	"github.com/vigie-edu/vigie/connectors/sdk"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/internal/csvrec"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Name is the registry name of the source.
const Name = "oneroster"

// Option names and on_error policies.
const (
	optPath       = "path"
	optTable      = "table"
	optReferences = "check_references"
	optOnError    = "on_error"

	onErrorDeadLetter = "dead_letter"
	onErrorSkip       = "skip"
	onErrorFail       = "fail"
)

// Source is the "oneroster" source. It is stateless and safe for
// concurrent use.
type Source struct{}

var _ protocol.Source = Source{}

var spec = protocol.Spec{
	Name:    Name,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "oneroster" (source): reads one table of a OneRoster 1.1 or 1.2
CSV bundle, a folder or a .zip with manifest.csv at its top (or in its one
top folder), into a typed Arrow table: one source stage per table. The
version comes from the manifest's oneroster.version and sets the columns
(users has orgSourcedIds and role in 1.1, primaryOrgSourcedId and the
preferred names in 1.2; roles exists only in 1.2). Dates are date32,
dateLastModified is timestamp_us UTC, enabledUser and primary are bool,
weight, score and resultValueMin/Max float64, schoolYear int32; enumerations
and comma-separated lists (grades, termSourcedIds...) stay utf8 as written.
Columns are found by their header name (any order, any case); a missing
optional column is null, extra columns are ignored. The manifest is
honoured: a table marked absent gives no rows; bulk and delta files are read
as they are, status (active, tobedeleted) included. Before streaming, the
sourcedIds of the tables a row refers to are loaded (that column only): a
row with a reference to an unknown id (an enrollment for an unknown user or
class, a result for an unknown lineItem or student, a class for an unknown
course or school...), an empty required reference, a duplicate sourcedId, a
value that does not parse or the wrong field count goes, per on_error, to
the dead-letter output with file, line, column, reason and the record's
text, is skipped, or fails the read. Records are split by lines: a quote
that never closes (or stays open over 1000 lines), or a record over several
lines with the wrong field count, makes its first line alone a dead letter
and reading resumes on the next. Empty lines are passed over. References into tables that are absent or delta in the
manifest cannot be checked and are not.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "the bundle: a folder or a .zip holding manifest.csv"},
		{Name: optTable, Type: protocol.TypeString, Required: true, Enum: Tables, Doc: "the table to read"},
		{Name: optReferences, Type: protocol.TypeBool, Default: true,
			Doc: "dead-letter rows whose references name no row of the referenced table"},
		{Name: optOnError, Type: protocol.TypeString, Default: onErrorDeadLetter,
			Enum: []string{onErrorDeadLetter, onErrorSkip, onErrorFail},
			Doc:  "what to do with a bad row: send it to the dead-letter output, skip it, or fail the read"},
	},
}

// Spec describes the source and its options.
func (Source) Spec() protocol.Spec { return spec }

// plan is a checked configuration with its bundle open.
type plan struct {
	b         *bundle
	table     string
	mode      string
	cols      []column
	schema    *arrow.Schema
	refs      bool
	onError   string
	batchRows int
}

func newPlan(cfg protocol.Config) (*plan, error) {
	opts, err := spec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	b, err := openBundle(cfg.String(optPath))
	if err != nil {
		return nil, err
	}
	p := &plan{b: b, table: cfg.String(optTable), refs: cfg.Bool(optReferences), onError: cfg.String(optOnError), batchRows: cfg.BatchRows}
	p.schema = Schema(p.table, b.version)
	if p.schema == nil {
		b.close()
		return nil, fmt.Errorf("connector %q: option %q: table %q is not in OneRoster %s (bundle %s): %w",
			Name, optTable, p.table, b.version, b.path, protocol.ErrConfig)
	}
	p.cols = tableColumns(p.table, b.version)
	p.mode = b.mode(p.table)
	return p, nil
}

// header reads the header of the table's file and returns, for each
// column, its index in the records (-1 if the file does not have it).
func (p *plan) header(r *csvrec.Reader, origin string) ([]int, int, error) {
	rec, err := r.Read()
	for err == nil && r.Current().IsEmpty() {
		rec, err = r.Read()
	}
	if err == io.EOF {
		return nil, 0, fmt.Errorf("%s: empty file, expected a header line starting with sourcedId: %w", origin, protocol.ErrConfig)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w: %w", origin, err, protocol.ErrConfig)
	}
	idx := make([]int, len(p.cols))
	for i, c := range p.cols {
		idx[i] = -1
		for j, h := range rec {
			if strings.EqualFold(strings.TrimSpace(h), c.name) {
				idx[i] = j
				break
			}
		}
		if idx[i] < 0 && c.required {
			return nil, 0, fmt.Errorf("%s:1: no column %q, which OneRoster %s requires in %s.csv (header: %s): %w",
				origin, c.name, p.b.version, p.table, strings.Join(rec, ","), protocol.ErrConfig)
		}
	}
	return idx, len(rec), nil
}

// Schema returns the table's schema in the bundle's version, after
// checking the bundle and the table's header.
func (Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	defer p.b.close()
	if p.mode != modeAbsent {
		f, r, origin, err := p.b.open(p.table + ".csv")
		if err != nil {
			return nil, fmt.Errorf("manifest says file.%s is %s: %w", p.table, p.mode, err)
		}
		defer f.Close()
		if _, _, err := p.header(r, origin); err != nil {
			return nil, err
		}
	}
	return p.schema, nil
}

// loadIDs reads the sourcedId column of table.
func (p *plan) loadIDs(ctx context.Context, table string) (map[string]struct{}, error) {
	f, r, origin, err := p.b.open(table + ".csv")
	if err != nil {
		return nil, fmt.Errorf("load the sourcedIds of %s to check references: %w", table, err)
	}
	defer f.Close()
	head, err := r.Read()
	for err == nil && r.Current().IsEmpty() {
		head, err = r.Read()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: expected a header line: %w: %w", origin, err, protocol.ErrConfig)
	}
	col := -1
	for i, h := range head {
		if strings.EqualFold(strings.TrimSpace(h), "sourcedId") {
			col = i
			break
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("%s:1: no sourcedId column: %w", origin, protocol.ErrConfig)
	}
	ids := map[string]struct{}{}
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := r.Read()
		if err == io.EOF {
			return ids, nil
		}
		if err == nil && col < len(rec) && !r.Current().IsEmpty() {
			ids[strings.TrimSpace(rec[col])] = struct{}{} // bad rows are the referenced table's own dead letters
		}
	}
}

// position is where a read stands: the data records of the file read.
type position struct {
	Row int `json:"row"`
}

// Read emits the table's rows. Each batch carries the position after its
// last record; resuming re-reads the file and skips the records before it.
func (Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newPlan(cfg)
	if err != nil {
		return err
	}
	defer p.b.close()
	var from position
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
	}
	if p.mode == modeAbsent {
		return nil
	}
	// The referenced ids, loaded before streaming; nil for references that
	// cannot be checked.
	targets := make([]map[string]struct{}, len(p.cols))
	loaded := map[string]map[string]struct{}{}
	for i, c := range p.cols {
		if c.ref == "" || !p.refs || p.b.mode(c.ref) != modeBulk {
			continue
		}
		if _, ok := loaded[c.ref]; !ok {
			if loaded[c.ref], err = p.loadIDs(ctx, c.ref); err != nil {
				return err
			}
		}
		targets[i] = loaded[c.ref]
	}
	f, r, origin, err := p.b.open(p.table + ".csv")
	if err != nil {
		return fmt.Errorf("manifest says file.%s is %s: %w", p.table, p.mode, err)
	}
	defer f.Close()
	idx, width, err := p.header(r, origin)
	if err != nil {
		return err
	}
	bt := sdk.NewBatcher(mem, p.schema, p.batchRows, out, from)
	defer bt.Release()
	rd := &reading{plan: p, origin: origin, idx: idx, width: width, targets: targets, seen: map[string]int{},
		row: make([]sdk.Cell, len(p.cols))}
	for n := 1; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err == nil && r.Current().IsEmpty() {
			n-- // an empty line is not a record (nor a row: no data lost)
			continue
		}
		pos := position{Row: n}
		var pe *csvrec.ParseError
		if errors.As(err, &pe) {
			if n > from.Row {
				if err := rd.bad(ctx, bt, pos, pe.StartLine, pe.Column, pe.Raw, "", pe.Err); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", origin, err)
		}
		line, _ := r.FieldPos(0)
		cur := r.Current()
		cut := ""
		if len(rec) != rd.width && cur.Lines > 1 {
			// Most likely a quote that closes too late: the lines after
			// the first are read again as the next records.
			cut = fmt.Sprintf(" in a record over %d lines (a quote not closed on its line?); reading resumes at line %d",
				cur.Lines, line+1)
			r.Cut()
		}
		column, reason, fieldCol := rd.parse(r, rec, line)
		reason += cut
		if n <= from.Row {
			continue // read again only to know the sourcedIds before the position
		}
		if reason != "" {
			if err := rd.bad(ctx, bt, pos, line, fieldCol, cur.Text(), column, reason); err != nil {
				return err
			}
			continue
		}
		if err := bt.Record(ctx, [][]sdk.Cell{rd.row}, pos); err != nil {
			return err
		}
	}
	return bt.Flush(ctx)
}

// reading is the state of one Read.
type reading struct {
	*plan
	origin  string
	idx     []int
	width   int
	targets []map[string]struct{}
	seen    map[string]int // sourcedId -> line, for duplicates
	row     []sdk.Cell
}

// parse reads rec into rd.row. A bad row returns the offending column, the
// reason, and the field's column in the line.
func (rd *reading) parse(r *csvrec.Reader, rec []string, line int) (string, string, int) {
	if len(rec) != rd.width {
		return "", fmt.Sprintf("expected %d fields as in the header, got %d", rd.width, len(rec)), 0
	}
	field := func(i int) string {
		if j := rd.idx[i]; j >= 0 {
			return rec[j]
		}
		return ""
	}
	at := func(i int) int {
		if j := rd.idx[i]; j >= 0 {
			_, c := r.FieldPos(j)
			return c
		}
		return 0
	}
	id := strings.TrimSpace(field(0))
	if id == "" {
		return "sourcedId", "empty sourcedId, expected the row's identifier", at(0)
	}
	if first, dup := rd.seen[id]; dup {
		return "sourcedId", fmt.Sprintf("duplicate sourcedId %q (first at line %d)", id, first), at(0)
	}
	rd.seen[id] = line
	deleting := strings.EqualFold(strings.TrimSpace(field(1)), "tobedeleted")
	var broken []string // every broken reference of the row
	brokenCol, brokenAt := "", 0
	for i, c := range rd.cols {
		s := field(i)
		v, ok := parseValue(c.kind, s)
		if !ok {
			return c.name, fmt.Sprintf("expected %s, got %q", c.kind.expected(), s), at(i)
		}
		rd.row[i] = v
		if deleting {
			continue
		}
		if v.Null && c.required {
			return c.name, fmt.Sprintf("empty %s, which OneRoster requires", c.name), at(i)
		}
		if rd.targets[i] == nil || v.Null {
			continue
		}
		refs := []string{v.S}
		if c.list {
			refs = strings.Split(v.S, ",")
		}
		for _, ref := range refs {
			ref = strings.TrimSpace(ref)
			if _, ok := rd.targets[i][ref]; ref != "" && !ok {
				if broken == nil {
					brokenCol, brokenAt = c.name, at(i)
				}
				broken = append(broken, fmt.Sprintf("unknown %s %q: %s names no sourcedId of %s.csv", entity[c.ref], ref, c.name, c.ref))
			}
		}
	}
	if broken != nil {
		return brokenCol, strings.Join(broken, "; "), brokenAt
	}
	return "", "", 0
}

// bad applies the on_error policy to a bad record.
func (rd *reading) bad(ctx context.Context, bt *sdk.Batcher, pos position, line, col int, raw, column, reason string) error {
	switch rd.onError {
	case onErrorSkip:
		bt.Skipped(pos)
		return nil
	case onErrorFail:
		at := fmt.Sprintf("%s:%d", rd.origin, line)
		if col > 0 {
			at += fmt.Sprintf(":%d", col)
		}
		if column != "" {
			at += fmt.Sprintf(": column %q", column)
		}
		return fmt.Errorf("%s: %s (on_error = %q)", at, reason, onErrorFail)
	}
	return bt.DeadLetter(ctx, protocol.DeadLetter{Origin: rd.origin, Line: int64(line), Column: column, Reason: reason,
		Raw: strings.ToValidUTF8(raw, "\uFFFD")}, pos)
}

// parseValue reads one field; an empty field is null.
func parseValue(k kind, s string) (sdk.Cell, bool) {
	if k != kString {
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return sdk.Cell{Null: true}, true
	}
	switch k {
	case kDate:
		t, ok := parseTime(s)
		if !ok {
			return sdk.Cell{}, false
		}
		return sdk.Cell{I: days(t)}, true
	case kDateTime:
		t, ok := parseTime(s)
		return sdk.Cell{I: t.UnixMicro()}, ok
	case kBool:
		switch strings.ToLower(s) {
		case "true", "1":
			return sdk.Cell{B: true}, true
		case "false", "0":
			return sdk.Cell{B: false}, true
		}
		return sdk.Cell{}, false
	case kFloat:
		f, err := strconv.ParseFloat(s, 64)
		return sdk.Cell{F: f}, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	case kYear:
		y, err := strconv.Atoi(s)
		return sdk.Cell{I: int64(y)}, err == nil && y >= 0 && y <= 9999
	}
	return sdk.Cell{S: s}, true
}

// days is t's date as days since 1970-01-01 (floored before 1970).
func days(t time.Time) int64 {
	d := t.Unix() / 86400
	if t.Unix()%86400 < 0 {
		d--
	}
	return d
}

// timeLayouts are the date and time forms accepted, in UTC when they have
// no zone.
var timeLayouts = []string{"2006-01-02", time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

// parseTime reads a date or a date and time, in UTC. A date of a date32
// column written with a time keeps its UTC date.
func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			t = t.UTC()
			if t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, false
			}
			return t, true
		}
	}
	return time.Time{}, false
}
