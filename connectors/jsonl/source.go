// Package jsonl holds the built-in JSON Lines source "jsonl", which reads
// files of one JSON object per line into Arrow batches of a declared
// schema, with dead letters for lines that do not fit it. Its line reader
// (Lines, OpenFile, Files) serves the other line-oriented sources too.
package jsonl

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/internal/jsonrow"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// SourceName is the registry name of the JSON Lines source.
const SourceName = "jsonl"

// maxRaw is the most bytes of a line kept in a dead letter.
const maxRaw = 64 << 10

// on_error policies.
const (
	onErrorDeadLetter = "dead_letter"
	onErrorSkip       = "skip"
	onErrorFail       = "fail"
)

// Option names.
const (
	optPath    = "path"
	optColumns = jsonrow.OptColumns
	optOrder   = jsonrow.OptOrder
	optStrict  = jsonrow.OptStrict
	optOnError = "on_error"
)

// Source is the JSON Lines source, registered as "jsonl". It is stateless
// and safe for concurrent use.
type Source struct{}

var _ protocol.Source = Source{}

var sourceSpec = protocol.Spec{
	Name:    SourceName,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "jsonl" (source): reads JSON Lines files (one JSON object per
line; gzip-compressed files are recognised by their content) into Arrow
batches of the declared columns. ` + jsonrow.TypesDoc + ` A line
that is not a JSON object, or a field of the wrong type, goes per on_error
to the dead-letter output (with file, line, field and reason), is skipped,
or fails the read. Fields not declared are ignored, or with strict = true
make their line a dead letter. Blank lines are ignored. path may be a glob,
read in lexical order.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "JSON Lines file to read (plain or gzip), or a glob of files"},
		{Name: optColumns, Type: protocol.TypeStringMap, Required: true, Doc: jsonrow.ColumnsDoc},
		{Name: optOrder, Type: protocol.TypeStringList, Doc: jsonrow.OrderDoc},
		{Name: optStrict, Type: protocol.TypeBool, Default: false, Doc: "a line with a field that is not declared is a bad line"},
		{Name: optOnError, Type: protocol.TypeString, Default: onErrorDeadLetter,
			Enum: []string{onErrorDeadLetter, onErrorSkip, onErrorFail},
			Doc:  "what to do with a bad line: send it to the dead-letter output, skip it, or fail the read"},
	},
}

// Spec describes the connector and its options.
func (Source) Spec() protocol.Spec { return sourceSpec }

// plan is a checked configuration.
type plan struct {
	files     []string
	cols      *jsonrow.Columns
	onError   string
	batchRows int
	schema    *arrow.Schema
}

func newPlan(cfg protocol.Config) (*plan, error) {
	p, err := columnsPlan(cfg)
	if err != nil {
		return nil, err
	}
	if p.files, err = Files(SourceName, optPath, cfg.String(optPath)); err != nil {
		return nil, err
	}
	return p, nil
}

// columnsPlan checks cfg and builds the plan but for its files.
func columnsPlan(cfg protocol.Config) (*plan, error) {
	opts, err := sourceSpec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	cols, err := jsonrow.New(SourceName, cfg.StringMap(optColumns), cfg.StringList(optOrder), cfg.Bool(optStrict))
	if err != nil {
		return nil, err
	}
	p := &plan{
		cols:      cols,
		onError:   cfg.String(optOnError),
		batchRows: cfg.BatchRows,
		schema:    arrow.NewSchema(cols.Fields(), nil),
	}
	if p.batchRows <= 0 {
		p.batchRows = protocol.DefaultBatchRows
	}
	return p, nil
}

// Schema returns the declared schema.
func (Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// position is where a read stands: the next line of file number File
// (named Path) starts at byte Offset (of the uncompressed stream) and is
// line Line+1.
type position struct {
	File   int    `json:"file"`
	Path   string `json:"path"`
	Line   int64  `json:"line"`
	Offset int64  `json:"offset"`
}

// Read emits the files' lines in batches of at most cfg.BatchRows rows,
// each with the position after it. Dead letters are sent before the batch
// that follows them; those after the last batch come with an empty batch
// that carries the final position.
func (Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newPlan(cfg)
	if err != nil {
		return err
	}
	var from position
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
		if err := CheckResume(SourceName, optPath, cfg.String(optPath), cfg.Resume, p.files, from.File, from.Path); err != nil {
			return err
		}
	}
	d := newDecoder(p, mem, out)
	defer d.release()
	for fi := from.File; fi < len(p.files); fi++ {
		pos := position{File: fi, Path: p.files[fi]}
		if fi == from.File {
			pos.Line, pos.Offset = from.Line, from.Offset
		}
		f, err := OpenFile(pos.Path, pos.Line, pos.Offset)
		if err != nil {
			return err
		}
		err = d.read(ctx, f.Lines, pos)
		f.Close()
		if err != nil {
			return err
		}
	}
	return d.flush(ctx)
}

// decoder turns lines into rows. It keeps its builder across files, so a
// batch may hold the end of one file and the start of the next.
type decoder struct {
	*plan
	out  protocol.Emitter
	b    *array.RecordBuilder
	vals []sdk.Cell
	rows int
	dead *sdk.Out
	pos  position // after the last line decoded
}

func newDecoder(p *plan, mem memory.Allocator, out protocol.Emitter) *decoder {
	b := array.NewRecordBuilder(mem, p.schema)
	b.Reserve(p.batchRows)
	return &decoder{plan: p, out: out, dead: sdk.NewOut(out), b: b, vals: make([]sdk.Cell, p.cols.Len())}
}

func (d *decoder) release() { d.b.Release() }

// read decodes the lines of one file.
func (d *decoder) read(ctx context.Context, lines *Lines, pos position) error {
	d.pos = pos
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, err := lines.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s near line %d: %w", pos.Path, lines.Line+1, err)
		}
		d.pos.Line, d.pos.Offset = lines.Line, lines.Offset
		ok, err := d.decode(ctx, line, lines.Line, lines.Long)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for i := range d.vals {
			sdk.Append(d.b.Field(i), d.vals[i])
		}
		if d.rows++; d.rows == d.batchRows {
			if err := d.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// decode decodes one line into vals. It returns false for a line that is
// blank or was dealt with as a bad line.
func (d *decoder) decode(ctx context.Context, line []byte, n int64, long bool) (bool, error) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 && !long {
		return false, nil
	}
	if long {
		return false, d.bad(ctx, n, "", fmt.Sprintf("line longer than %d bytes", MaxLineBytes), line)
	}
	if field, reason := d.cols.Decode(trimmed, d.vals); reason != "" {
		return false, d.bad(ctx, n, field, reason, line)
	}
	return true, nil
}

// bad applies the on_error policy to a bad line.
func (d *decoder) bad(ctx context.Context, line int64, field, reason string, raw []byte) error {
	switch d.onError {
	case onErrorSkip:
		return nil
	case onErrorFail:
		at := fmt.Sprintf("%s:%d", d.pos.Path, line)
		if field != "" {
			at += fmt.Sprintf(": field %q", field)
		}
		return fmt.Errorf("%s: %s (on_error = %q)", at, reason, onErrorFail)
	}
	if len(raw) > maxRaw {
		raw = raw[:maxRaw]
	}
	return d.dead.DeadLetter(ctx, protocol.DeadLetter{Origin: d.pos.Path, Line: line, Column: field, Reason: reason, Raw: string(raw)})
}

func (d *decoder) flush(ctx context.Context) error {
	rows := d.rows
	d.rows = 0
	return d.dead.Emit(ctx, d.b, rows, d.pos)
}
