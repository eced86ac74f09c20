package xapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vigie-edu/vigie/connectors/sdk"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/jsonl"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// SourceName is the registry name of the xAPI file source.
const SourceName = "xapi"

const maxRaw = 64 << 10

// Option names.
const (
	optPath    = "path"
	optFormat  = "format"
	optRaw     = "raw"
	optOnError = "on_error"
)

const (
	formatAuto  = "auto"
	formatJSON  = "json"
	formatJSONL = "jsonl"

	onErrorDeadLetter = "dead_letter"
	onErrorSkip       = "skip"
	onErrorFail       = "fail"
)

// FileSource is the xAPI file source, registered as "xapi". It is
// stateless and safe for concurrent use.
type FileSource struct{}

var _ protocol.Source = FileSource{}

var rawOption = protocol.Option{Name: optRaw, Type: protocol.TypeBool, Default: false,
	Doc: `add a last column "statement" holding each statement's JSON`}

var fileSpec = protocol.Spec{
	Name:    SourceName,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "xapi" (source): reads xAPI statements from files, a JSON
document (one statement or an array of statements) or JSON Lines (one
statement per line), plain or gzip-compressed, and flattens them to one row
per statement: statement_id, actor (mbox, mbox_sha1sum, openid or account
name), actor_home_page, actor_name, verb_id, verb_display, object_id,
object_type, timestamp, stored, result_score_scaled/raw/min/max,
result_success, result_completion, result_duration_us (ISO 8601 duration in
microseconds), result_duration (as written), context_registration,
context_platform, and with raw = true the statement's JSON. A statement the
xAPI 1.0.3 specification rejects (no actor, verb or object, a bad UUID,
timestamp, duration or version...) goes per on_error to the dead-letter
output with the file, the line (JSON Lines) or the statement's number in
the array (JSON), the property and the reason; is skipped; or fails the
read. A JSON document that stops being JSON is dead-lettered from there on.
format "auto" reads files named *.json (or *.json.gz) as JSON documents and
others as JSON Lines. path may be a glob, read in lexical order.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "statements file (JSON or JSON Lines, plain or gzip), or a glob of files"},
		{Name: optFormat, Type: protocol.TypeString, Default: formatAuto, Enum: []string{formatAuto, formatJSON, formatJSONL},
			Doc: "json: a statement or an array of statements; jsonl: one statement per line; auto: by the file's extension"},
		rawOption,
		{Name: optOnError, Type: protocol.TypeString, Default: onErrorDeadLetter,
			Enum: []string{onErrorDeadLetter, onErrorSkip, onErrorFail},
			Doc:  "what to do with a statement the specification rejects: dead-letter it, skip it, or fail the read"},
	},
}

// Spec describes the connector and its options.
func (FileSource) Spec() protocol.Spec { return fileSpec }

type filePlan struct {
	files     []string
	format    string
	raw       bool
	onError   string
	batchRows int
	schema    *arrow.Schema
}

func newFilePlan(cfg protocol.Config) (*filePlan, error) {
	opts, err := fileSpec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	p := &filePlan{format: cfg.String(optFormat), raw: cfg.Bool(optRaw), onError: cfg.String(optOnError), batchRows: cfg.BatchRows}
	if p.batchRows <= 0 {
		p.batchRows = protocol.DefaultBatchRows
	}
	p.schema = Schema(p.raw)
	if p.files, err = jsonl.Files(SourceName, optPath, cfg.String(optPath)); err != nil {
		return nil, err
	}
	return p, nil
}

// Schema returns the flattened statement schema.
func (FileSource) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newFilePlan(cfg)
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// filePosition is where a read stands in file number File (named Path):
// for JSON Lines, after line Line ending at byte Offset; for a JSON
// document, after Record statements.
type filePosition struct {
	File   int    `json:"file"`
	Path   string `json:"path"`
	Line   int64  `json:"line,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Record int64  `json:"record,omitempty"`
	// Done is set once a JSON document has been read to its end.
	Done bool `json:"done,omitempty"`
}

// Read emits the statements of every file in batches of at most
// cfg.BatchRows rows, each with the position after it.
func (FileSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newFilePlan(cfg)
	if err != nil {
		return err
	}
	var from filePosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
		if err := jsonl.CheckResume(SourceName, optPath, cfg.String(optPath), cfg.Resume, p.files, from.File, from.Path); err != nil {
			return err
		}
	}
	d := newDecoder(p, mem, out)
	defer d.release()
	for fi := from.File; fi < len(p.files); fi++ {
		pos := filePosition{File: fi, Path: p.files[fi]}
		if fi == from.File {
			pos = from
			pos.Path = p.files[fi]
		}
		if err := d.readFile(ctx, pos); err != nil {
			return err
		}
	}
	return d.flush(ctx)
}

// isJSON says whether path is read as a JSON document.
func (p *filePlan) isJSON(path string) bool {
	switch p.format {
	case formatJSON:
		return true
	case formatJSONL:
		return false
	}
	return strings.HasSuffix(strings.TrimSuffix(strings.ToLower(path), ".gz"), ".json")
}

// decoder turns statements into rows.
type decoder struct {
	*filePlan
	out  protocol.Emitter
	b    *array.RecordBuilder
	rows int
	dead *sdk.Out
	pos  filePosition
}

func newDecoder(p *filePlan, mem memory.Allocator, out protocol.Emitter) *decoder {
	b := array.NewRecordBuilder(mem, p.schema)
	b.Reserve(min(p.batchRows, 1<<16))
	return &decoder{filePlan: p, out: out, dead: sdk.NewOut(out), b: b}
}

func (d *decoder) release() { d.b.Release() }

func (d *decoder) readFile(ctx context.Context, pos filePosition) error {
	d.pos = pos
	if !d.isJSON(pos.Path) {
		f, err := jsonl.OpenFile(pos.Path, pos.Line, pos.Offset)
		if err != nil {
			return err
		}
		defer f.Close()
		return d.readLines(ctx, f.Lines)
	}
	f, err := os.Open(pos.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file %s: %w", pos.Path, protocol.ErrNotFound)
		}
		return fmt.Errorf("open %s: %w", pos.Path, err)
	}
	defer f.Close()
	if pos.Done {
		return nil
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: bad gzip header: %w: %w", pos.Path, err, protocol.ErrConfig)
		}
		defer gz.Close()
		r = gz
	}
	if err := d.readDocument(ctx, r); err != nil {
		return err
	}
	d.pos.Done = true
	return nil
}

// readLines reads one statement per line.
func (d *decoder) readLines(ctx context.Context, lines *jsonl.Lines) error {
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
			return fmt.Errorf("read %s near line %d: %w", d.pos.Path, lines.Line+1, err)
		}
		d.pos.Line, d.pos.Offset = lines.Line, lines.Offset
		if len(bytes.TrimSpace(line)) == 0 && !lines.Long {
			continue
		}
		if lines.Long {
			if err := d.bad(ctx, lines.Line, "", fmt.Sprintf("line longer than %d bytes", jsonl.MaxLineBytes), line); err != nil {
				return err
			}
			continue
		}
		if err := d.statement(ctx, line, lines.Line, ""); err != nil {
			return err
		}
	}
}

// readDocument reads a JSON document: one statement or an array of them.
func (d *decoder) readDocument(ctx context.Context, r io.Reader) error {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		br.Discard(3)
	}
	dec := json.NewDecoder(br)
	first, err := firstByte(br)
	if err == io.EOF {
		return nil // an empty file has no statement
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", d.pos.Path, err)
	}
	broken := func(record int64, err error) error {
		return d.bad(ctx, record, "", fmt.Sprintf("not JSON after byte %d: %s; the rest of the file is unreadable",
			dec.InputOffset(), strings.TrimPrefix(err.Error(), "json: ")), nil)
	}
	if first != '[' {
		if d.pos.Record > 0 {
			return nil // the single statement was read before
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return broken(1, err)
		}
		d.pos.Record = 1
		if err := d.statement(ctx, raw, 1, "statement 1: "); err != nil {
			return err
		}
		return d.trailing(ctx, dec, 1)
	}
	if _, err := dec.Token(); err != nil {
		return broken(1, err)
	}
	skip := d.pos.Record
	for n := int64(1); dec.More(); n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if n <= skip {
				return nil // reported before the position
			}
			return broken(n, err)
		}
		if n <= skip {
			continue
		}
		d.pos.Record = n
		if err := d.statement(ctx, raw, n, fmt.Sprintf("statement %d of the array: ", n)); err != nil {
			return err
		}
	}
	n := d.pos.Record + 1
	if _, err := dec.Token(); err != nil {
		return broken(n, err)
	}
	return d.trailing(ctx, dec, n)
}

// trailing reports content after the document.
func (d *decoder) trailing(ctx context.Context, dec *json.Decoder, record int64) error {
	if _, err := dec.Token(); err != io.EOF {
		return d.bad(ctx, record, "", fmt.Sprintf("content after the end of the JSON document at byte %d", dec.InputOffset()), nil)
	}
	return nil
}

func firstByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return b, br.UnreadByte()
		}
	}
}

// statement checks one statement and appends it, or reports it.
func (d *decoder) statement(ctx context.Context, raw []byte, line int64, where string) error {
	s, inv := parse(raw)
	if inv != nil {
		return d.bad(ctx, line, inv.Property, where+inv.Reason, raw)
	}
	s.appendRow(d.b, bytes.TrimSpace(raw))
	if d.rows++; d.rows >= d.batchRows {
		return d.flush(ctx)
	}
	return nil
}

// bad applies the on_error policy.
func (d *decoder) bad(ctx context.Context, line int64, prop, reason string, raw []byte) error {
	switch d.onError {
	case onErrorSkip:
		return nil
	case onErrorFail:
		at := fmt.Sprintf("%s:%d", d.pos.Path, line)
		if prop != "" {
			at += fmt.Sprintf(": %s", prop)
		}
		return fmt.Errorf("%s: %s (on_error = %q)", at, reason, onErrorFail)
	}
	if len(raw) > maxRaw {
		raw = raw[:maxRaw]
	}
	return d.dead.DeadLetter(ctx, protocol.DeadLetter{Origin: d.pos.Path, Line: line, Column: prop, Reason: reason, Raw: string(raw)})
}

func (d *decoder) flush(ctx context.Context) error {
	rows := d.rows
	d.rows = 0
	return d.dead.Emit(ctx, d.b, rows, d.pos)
}
