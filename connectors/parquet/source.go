package parquet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/suggest"
)

// SourceName is the registry name of the Parquet source.
const SourceName = "parquet_file"

// Source option names (optPath is shared with the sink).
const optColumns = "columns"

// Source is the Parquet source, registered as "parquet_file". It is
// stateless and safe for concurrent use.
type Source struct{}

var _ protocol.Source = Source{}

var sourceSpec = protocol.Spec{
	Name:    SourceName,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "parquet_file" (source): reads Parquet files into Arrow batches,
one row group at a time, so that memory holds one batch of the projected
columns, never a whole file. path may be a glob ("exports/*.parquet"): the
files are read in lexical order and must all have the same schema (after
projection). columns projects by top-level field name (nested fields come
whole); without it every column is read. The Arrow schema stored by the
"parquet" sink is honoured, so a file it wrote reads back with the types
written. Positions are (file, row group, row in the row group): a resumed
read seeks to that row without decoding what comes before.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "Parquet file to read, or a glob of files"},
		{Name: optColumns, Type: protocol.TypeStringList, Doc: "columns to read, in this order (default: every column)"},
	},
}

// Spec describes the connector and its options.
func (Source) Spec() protocol.Spec { return sourceSpec }

// sourcePlan is a checked configuration: the files and the projection.
type sourcePlan struct {
	files     []string
	columns   []string
	batchRows int
	schema    *arrow.Schema
}

// pqPosition is where a read stands: the next row to read is row Row of row
// group RowGroup of file number File (named Path, to catch a glob that
// matches other files on resume).
type pqPosition struct {
	File     int    `json:"file"`
	Path     string `json:"path"`
	RowGroup int    `json:"row_group"`
	Row      int64  `json:"row"`
}

// newSourcePlan checks cfg and reads the first file's schema, with mem
// for what reading the footer allocates.
func newSourcePlan(ctx context.Context, cfg protocol.Config, mem memory.Allocator) (*sourcePlan, error) {
	opts, err := sourceSpec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	pattern := cfg.String(optPath)
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("connector %q: option %q: bad glob %q: %w: %w", SourceName, optPath, pattern, err, protocol.ErrConfig)
	}
	if len(files) == 0 {
		if _, err := os.Stat(pattern); err != nil {
			return nil, fmt.Errorf("parquet file %s: %w", pattern, protocol.ErrNotFound)
		}
		files = []string{pattern}
	}
	slices.Sort(files)
	p := &sourcePlan{files: files, columns: cfg.StringList(optColumns), batchRows: cfg.BatchRows}
	if p.batchRows <= 0 {
		p.batchRows = protocol.DefaultBatchRows
	}
	p.schema, err = p.fileSchema(ctx, mem, files[0])
	if err != nil {
		return nil, err
	}
	return p, nil
}

// openFile opens one Parquet file for reading with the plan's batch size.
func (p *sourcePlan) openFile(path string, mem memory.Allocator) (*file.Reader, *pqarrow.FileReader, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("parquet file %s: %w", path, protocol.ErrNotFound)
		}
		return nil, nil, fmt.Errorf("parquet file %s: not a readable Parquet file: %w: %w", path, err, protocol.ErrConfig)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: int64(p.batchRows)}, mem)
	if err != nil {
		rdr.Close()
		return nil, nil, fmt.Errorf("parquet file %s: %w: %w", path, err, protocol.ErrConfig)
	}
	return rdr, fr, nil
}

// leaves returns the leaf column indices of the projected fields, in the
// order of the columns option.
func (p *sourcePlan) leaves(path string, fr *pqarrow.FileReader) ([]int, error) {
	if len(p.columns) == 0 {
		all := make([]int, fr.ParquetReader().MetaData().Schema.NumColumns())
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	fields := fr.Manifest.Fields
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Field.Name
	}
	var out []int
	for _, c := range p.columns {
		i := slices.Index(names, c)
		if i < 0 {
			msg := fmt.Sprintf("%s: column %q is not in the file%s", path, c, suggest.Hint(c, names, "columns"))
			return nil, fmt.Errorf("connector %q: option %q: %s: %w", SourceName, optColumns, msg, protocol.ErrConfig)
		}
		out = appendLeaves(out, fields[i])
	}
	return out, nil
}

func appendLeaves(out []int, f pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(out, f.ColIndex)
	}
	for _, c := range f.Children {
		out = appendLeaves(out, c)
	}
	return out
}

// fileSchema returns the projected schema of one file.
func (p *sourcePlan) fileSchema(ctx context.Context, mem memory.Allocator, path string) (*arrow.Schema, error) {
	rdr, fr, err := p.openFile(path, mem)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	return p.projected(ctx, path, fr)
}

func (p *sourcePlan) projected(ctx context.Context, path string, fr *pqarrow.FileReader) (*arrow.Schema, error) {
	leaves, err := p.leaves(path, fr)
	if err != nil {
		return nil, err
	}
	readers, sc, err := fr.GetFieldReaders(ctx, leaves, []int{})
	if err != nil {
		return nil, fmt.Errorf("parquet file %s: %w: %w", path, err, protocol.ErrConfig)
	}
	for _, r := range readers {
		r.Release()
	}
	return sc, nil
}

// Schema returns the projected schema of the first file.
func (Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	// Schema is given no allocator: reading a footer allocates little, and
	// nothing of it outlives this call.
	p, err := newSourcePlan(ctx, cfg, memory.NewGoAllocator())
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// Read emits the files' rows, row group by row group, in batches of at most
// cfg.BatchRows rows, each with the position after it.
func (Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newSourcePlan(ctx, cfg, mem)
	if err != nil {
		return err
	}
	var from pqPosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
		if from.File < 0 || from.File >= len(p.files) || p.files[from.File] != from.Path {
			return fmt.Errorf("connector %q: resume position %s names a file that %q no longer matches at that place: %w",
				SourceName, cfg.Resume, cfg.String(optPath), protocol.ErrConfig)
		}
	}
	for fi := from.File; fi < len(p.files); fi++ {
		start := pqPosition{File: fi, Path: p.files[fi]}
		if fi == from.File {
			start = from
			start.Path = p.files[fi]
		}
		if err := p.readFile(ctx, mem, out, start); err != nil {
			return err
		}
	}
	return nil
}

// readFile reads one file from pos.
func (p *sourcePlan) readFile(ctx context.Context, mem memory.Allocator, out protocol.Emitter, pos pqPosition) error {
	rdr, fr, err := p.openFile(pos.Path, mem)
	if err != nil {
		return err
	}
	defer rdr.Close()
	sc, err := p.projected(ctx, pos.Path, fr)
	if err != nil {
		return err
	}
	if !sc.Equal(p.schema) {
		return fmt.Errorf("parquet file %s: schema %s differs from that of %s, %s: %w",
			pos.Path, sc, p.files[0], p.schema, protocol.ErrConfig)
	}
	leaves, _ := p.leaves(pos.Path, fr)
	for rg := pos.RowGroup; rg < rdr.NumRowGroups(); rg++ {
		row := int64(0)
		if rg == pos.RowGroup {
			row = pos.Row
		}
		n := rdr.MetaData().RowGroup(rg).NumRows()
		if row >= n {
			continue
		}
		if err := p.readRowGroup(ctx, fr, leaves, out, pqPosition{File: pos.File, Path: pos.Path, RowGroup: rg, Row: row}); err != nil {
			return err
		}
	}
	return nil
}

// readRowGroup reads one row group from row pos.Row.
func (p *sourcePlan) readRowGroup(ctx context.Context, fr *pqarrow.FileReader, leaves []int, out protocol.Emitter, pos pqPosition) error {
	rr, err := fr.GetRecordReader(ctx, leaves, []int{pos.RowGroup})
	if err != nil {
		return fmt.Errorf("parquet file %s: row group %d: %w", pos.Path, pos.RowGroup, err)
	}
	defer rr.Release()
	if pos.Row > 0 {
		if err := rr.SeekToRow(pos.Row); err != nil {
			return fmt.Errorf("parquet file %s: row group %d: seek to row %d: %w: %w", pos.Path, pos.RowGroup, pos.Row, err, protocol.ErrConfig)
		}
	}
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := rr.RecordBatch()
		pos.Row += rec.NumRows()
		b, err := protocol.NewPosition(pos)
		if err != nil {
			return err
		}
		if err := out.Emit(ctx, rec, b); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil {
		return fmt.Errorf("parquet file %s: row group %d near row %d: %w", pos.Path, pos.RowGroup, pos.Row, err)
	}
	return nil
}
