package csv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// SourceName is the registry name of the CSV source.
const SourceName = "csv"

// DefaultBatchRows is the batch size used when Config.BatchRows is not set.
const DefaultBatchRows = 8192

// deadLetterBatch is the most dead letters held before they are sent.
const deadLetterBatch = 1000

// on_error policies.
const (
	onErrorDeadLetter = "dead_letter"
	onErrorSkip       = "skip"
	onErrorFail       = "fail"
)

// Source option names.
const (
	optColumns    = "columns"
	optInferRows  = "infer_rows"
	optNullValues = "null_values"
	optOnError    = "on_error"
)

// Source is the CSV source, registered as "csv". It is stateless and safe for
// concurrent use.
type Source struct{}

var _ protocol.Source = Source{}

var sourceSpec = protocol.Spec{
	Name:    SourceName,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "csv" (source): reads one CSV file into typed Arrow batches.
Columns are named by the header line (or column_1, column_2, ... without one).
Types come from the "columns" option, else are inferred from the first
infer_rows rows: int64 if every value is an integer, float64 if every value
is a number, bool if every value is true or false, date32 if every value is
yyyy-mm-dd, utf8 otherwise; numbers written with a leading zero ("0750")
stay text. Every column is nullable; null_values are read as nulls. A row
with the wrong number of fields, a value that does not parse as its column's
type or a malformed quote goes, per on_error, to the dead-letter output
(with file, line, column and reason), is skipped, or fails the read. A dead
letter's line is where the faulty field starts, or where the record starts
for a row-level fault; lines count the breaks inside quoted fields.
A UTF-8 byte order mark is ignored. Sinks of the same family: "csv_file", "parquet".`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "CSV file to read"},
		delimiterOption,
		{Name: optHeader, Type: protocol.TypeBool, Default: true, Doc: "the first line names the columns"},
		{Name: optColumns, Type: protocol.TypeStringMap,
			Doc: "column name -> type (utf8, int32, int64, float64, bool, date32, timestamp_us); declared types win over inference"},
		{Name: optInferRows, Type: protocol.TypeInt, Default: int64(1000), Doc: "rows sampled to infer the types of undeclared columns"},
		{Name: optNullValues, Type: protocol.TypeStringList, Default: []string{"", "NA", "NULL"}, Doc: "field values read as null"},
		{Name: optOnError, Type: protocol.TypeString, Default: onErrorDeadLetter,
			Enum: []string{onErrorDeadLetter, onErrorSkip, onErrorFail},
			Doc:  "what to do with a bad row: send it to the dead-letter output, skip it, or fail the read"},
	},
}

// Spec describes the connector and its options.
func (Source) Spec() protocol.Spec { return sourceSpec }

// Schema returns the schema that Read emits for cfg.
func (s Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newPlan(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// plan is what a read needs to know before reading data: checked options and
// the output schema.
type plan struct {
	path      string
	comma     rune
	header    bool
	nulls     map[string]bool
	onError   string
	batchRows int
	schema    *arrow.Schema
	types     []colType
}

// newPlan checks cfg and reads the header and the inference sample.
func newPlan(ctx context.Context, cfg protocol.Config) (*plan, error) {
	cfg, err := checked(sourceSpec, cfg)
	if err != nil {
		return nil, err
	}
	comma, err := delimiter(cfg)
	if err != nil {
		return nil, err
	}
	p := &plan{
		path:      cfg.String(optPath),
		comma:     comma,
		header:    cfg.Bool(optHeader),
		nulls:     make(map[string]bool),
		onError:   cfg.String(optOnError),
		batchRows: cfg.BatchRows,
	}
	if p.batchRows <= 0 {
		p.batchRows = DefaultBatchRows
	}
	for _, n := range cfg.StringList(optNullValues) {
		p.nulls[n] = true
	}
	declared := cfg.StringMap(optColumns)
	for col, typ := range declared {
		if _, err := lookupType(col, typ); err != nil {
			return nil, fmt.Errorf("connector %q: option %q: %w", SourceName, optColumns, err)
		}
	}

	f, r, err := p.open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	first, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, expected at least a header line", p.path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.path, err)
	}
	names, err := p.columnNames(first)
	if err != nil {
		return nil, err
	}
	if err := checkDeclared(p.path, names, declared); err != nil {
		return nil, err
	}

	infer := make([]*inference, len(names))
	inferRows := int64(0)
	for i, n := range names {
		if _, ok := declared[n]; !ok {
			infer[i] = newInference()
			inferRows = cfg.Int(optInferRows)
		}
	}
	sample := func(rec []string) {
		if len(rec) != len(names) {
			return // a bad row: Read will report it
		}
		for i, s := range rec {
			if infer[i] != nil && !p.nulls[s] {
				infer[i].add(s)
			}
		}
	}
	if !p.header {
		sample(first)
	}
	for n := p.sampled(); n < inferRows; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if isParseError(err) {
				continue
			}
			return nil, fmt.Errorf("%s: %w", p.path, err)
		}
		sample(rec)
	}

	fields := make([]arrow.Field, len(names))
	p.types = make([]colType, len(names))
	for i, n := range names {
		if infer[i] != nil {
			p.types[i] = infer[i].result()
		} else {
			p.types[i] = colTypes[declared[n]]
		}
		fields[i] = arrow.Field{Name: n, Type: p.types[i].arrow, Nullable: true}
	}
	p.schema = arrow.NewSchema(fields, nil)
	return p, nil
}

// sampled returns how many inference rows the first record counts for.
func (p *plan) sampled() int64 {
	if p.header {
		return 0
	}
	return 1
}

// columnNames names the columns from the first record.
func (p *plan) columnNames(first []string) ([]string, error) {
	names := make([]string, len(first))
	seen := make(map[string]int, len(first))
	for i, s := range first {
		name := strings.TrimSpace(s)
		if !p.header || name == "" {
			name = fmt.Sprintf("column_%d", i+1)
		}
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s:1: column %q appears twice in the header (columns %d and %d): %w",
				p.path, name, j+1, i+1, protocol.ErrConfig)
		}
		seen[name] = i
		names[i] = name
	}
	return names, nil
}

// checkDeclared reports declared columns that the file does not have.
func checkDeclared(path string, names []string, declared map[string]string) error {
	var errs []error
	cols := make([]string, 0, len(declared))
	for c := range declared {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, c := range cols {
		if slices.Contains(names, c) {
			continue
		}
		msg := fmt.Sprintf("%s: declared column %q is not in the file", path, c)
		if near := protocol.Nearest(c, names); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		} else {
			msg += " (columns: " + strings.Join(names, ", ") + ")"
		}
		errs = append(errs, fmt.Errorf("option %q: %s: %w", optColumns, msg, protocol.ErrConfig))
	}
	return errors.Join(errs...)
}

// open opens the file and returns a CSV reader over it, past any byte order
// mark.
func (p *plan) open() (*os.File, *csv.Reader, error) {
	f, r, _, err := p.openAt(0)
	return f, r, err
}

// position is where a read stands: the byte offset of the next record.
type position struct {
	Offset int64 `json:"offset"`
}

// openAt opens the file at byte offset off (0: the start, past any byte
// order mark) and returns the CSV reader and the offset its InputOffset
// counts from.
func (p *plan) openAt(off int64) (*os.File, *csv.Reader, int64, error) {
	f, err := os.Open(p.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, 0, fmt.Errorf("csv file %s: %w", p.path, protocol.ErrNotFound)
		}
		return nil, nil, 0, fmt.Errorf("open csv file: %w", err)
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("resume %s at offset %d: %w", p.path, off, err)
		}
	}
	br := bufio.NewReaderSize(f, 64<<10)
	if bom, _ := br.Peek(3); off == 0 && string(bom) == "\ufeff" {
		br.Discard(3)
		off = 3
	}
	r := csv.NewReader(br)
	r.Comma = p.comma
	r.FieldsPerRecord = -1 // checked here, to report it as a dead letter
	r.ReuseRecord = true
	return f, r, off, nil
}

// linesBefore counts the lines wholly before byte offset off, so that
// lines reported after a resume are lines of the file.
func (p *plan) linesBefore(off int64) (int, error) {
	f, err := os.Open(p.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	n, left := 0, off
	for left > 0 {
		k, err := f.Read(buf[:min(int64(len(buf)), left)])
		n += bytes.Count(buf[:k], []byte{'\n'})
		left -= int64(k)
		if err != nil {
			return 0, fmt.Errorf("resume %s: offset %d is past the end: %w", p.path, off, protocol.ErrConfig)
		}
	}
	return n, nil
}

func isParseError(err error) bool {
	var pe *csv.ParseError
	return errors.As(err, &pe)
}

// Read emits the file's rows in batches of at most cfg.BatchRows rows, each
// with the byte offset of the next record as its position; with
// cfg.Resume, it reads from that offset. Dead letters are sent in groups,
// each group before the batch that follows the rows it replaces, so that an
// acknowledged batch never leaves a bad row before it unreported; dead
// letters after the last batch come with an empty batch that carries the
// final position.
func (s Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newPlan(ctx, cfg)
	if err != nil {
		return err
	}
	var from position
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
	}
	f, r, base, err := p.openAt(from.Offset)
	if err != nil {
		return err
	}
	defer f.Close()
	rd := &reading{plan: p, r: r, out: out, vals: make([]value, len(p.types))}
	if from.Offset > 0 {
		if rd.lineBase, err = p.linesBefore(from.Offset); err != nil {
			return err
		}
	} else if p.header {
		if _, err := r.Read(); err != nil {
			return fmt.Errorf("%s: %w", p.path, err)
		}
	}
	b := newBuilder(mem, p.schema, p.batchRows)
	defer b.Release()
	rows := 0
	flush := func() error {
		if err := rd.sendDead(ctx); err != nil {
			return err
		}
		if rows == 0 && !rd.deadSent {
			return nil
		}
		rd.deadSent = false
		rec := b.NewRecordBatch()
		defer rec.Release()
		rows = 0
		pos, err := protocol.NewPosition(position{Offset: base + r.InputOffset()})
		if err != nil {
			return err
		}
		return out.Emit(ctx, rec, pos)
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ok, err := rd.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for i := range rd.vals {
			appendValue(b.Field(i), &rd.vals[i])
		}
		if rows++; rows == p.batchRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// reading is the state of one Read.
type reading struct {
	*plan
	lineBase int  // lines before where the reader started
	deadSent bool // dead letters sent since the last position
	r        *csv.Reader
	out      protocol.Emitter
	vals     []value // the current row, parsed
	dead     []protocol.DeadLetter
}

// next reads and parses the next row into vals. It returns false for a bad
// row that was dealt with (dead letter or skip), an error to stop the read,
// io.EOF at the end.
func (rd *reading) next(ctx context.Context) (bool, error) {
	rec, err := rd.r.Read()
	if err == io.EOF {
		return false, err
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return false, rd.bad(ctx, badRow{line: pe.StartLine, col: pe.Column, reason: pe.Err.Error()})
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", rd.path, err)
	}
	line, _ := rd.r.FieldPos(0)
	if len(rec) != len(rd.types) {
		return false, rd.bad(ctx, badRow{line: line, raw: rec,
			reason: fmt.Sprintf("expected %d fields, got %d", len(rd.types), len(rec))})
	}
	for i, s := range rec {
		v := &rd.vals[i]
		*v = value{null: rd.nulls[s]}
		if v.null || rd.types[i].parse(s, v) {
			continue
		}
		l, c := rd.r.FieldPos(i)
		return false, rd.bad(ctx, badRow{line: l, col: c, column: rd.schema.Field(i).Name, raw: rec,
			reason: fmt.Sprintf("expected %s, got %q", rd.types[i].name, s)})
	}
	return true, nil
}

// badRow is a row that could not be read.
type badRow struct {
	line, col int
	column    string
	reason    string
	raw       []string
}

// bad applies the on_error policy to a bad row.
func (rd *reading) bad(ctx context.Context, b badRow) error {
	b.line += rd.lineBase
	switch rd.onError {
	case onErrorSkip:
		return nil
	case onErrorFail:
		pos := fmt.Sprintf("%s:%d", rd.path, b.line)
		if b.col > 0 {
			pos += fmt.Sprintf(":%d", b.col)
		}
		if b.column != "" {
			pos += fmt.Sprintf(": column %q", b.column)
		}
		return fmt.Errorf("%s: %s (on_error = %q)", pos, b.reason, onErrorFail)
	}
	rd.dead = append(rd.dead, protocol.DeadLetter{
		Origin: rd.path,
		Line:   int64(b.line),
		Column: b.column,
		Reason: b.reason,
		Raw:    rd.encode(b.raw),
	})
	if len(rd.dead) >= deadLetterBatch {
		return rd.sendDead(ctx)
	}
	return nil
}

// encode writes fields back as one CSV record (quoted where needed, without
// the line end), so that a dead letter's Raw can be repaired and replayed.
func (rd *reading) encode(fields []string) string {
	if len(fields) == 0 {
		return ""
	}
	var sb strings.Builder
	w := csv.NewWriter(&sb)
	w.Comma = rd.comma
	w.Write(fields)
	w.Flush()
	return strings.TrimSuffix(sb.String(), "\n")
}

// sendDead sends the dead letters held, if any.
func (rd *reading) sendDead(ctx context.Context) error {
	if len(rd.dead) == 0 {
		return nil
	}
	err := rd.out.DeadLetter(ctx, rd.dead)
	rd.dead = nil
	rd.deadSent = true
	return err
}
