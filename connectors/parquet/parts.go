package parquet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Parts of a checkpointed (continuous) run. A Parquet file cannot be
// appended to (its footer describes the row groups before it), so in a run
// whose sinks the engine flushes at each checkpoint the sink writes one
// file per checkpoint instead of one file: path is a folder, and the rows
// written between two checkpoints go to part-<n>.parquet in it, n counting
// the parts from 1. A part is written under a temporary name, closed
// (footer, fsync) when the engine flushes the sink at the checkpoint and
// renamed into place then; the position the flush returns is the number of
// parts complete. A checkpoint that saw no row adds no part. Opened again
// with that position (a restart from the checkpoint), the sink removes the
// parts above it and the temporary parts its killed writers left: they
// hold rows the engine replays. Opened without a position (a run that
// starts from the beginning) it removes every part, as a batch run replaces
// its file. Readers that take a folder of Parquet files as one table
// (DuckDB's read_parquet('dir/*.parquet'), pyarrow.dataset, Spark) read the
// output as it is.

// partPrefix and partSuffix frame a part's number in its file name.
const (
	partPrefix = "part-"
	partSuffix = ".parquet"
)

// partName is the file name of part n, its number zero-padded to 8 digits
// so that the names sort in order (wider numbers keep all their digits).
func partName(n int64) string { return fmt.Sprintf("%s%08d%s", partPrefix, n, partSuffix) }

// partNumber returns the number of the part file named name, false if
// name is not a part's.
func partNumber(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, partPrefix)
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, partSuffix); !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil
}

// partsPosition is what a flush of a parts writer made durable: parts 1
// to Parts, Rows rows in all.
type partsPosition struct {
	Parts int64 `json:"parts"`
	Rows  int64 `json:"rows"`
}

// preparePartsDir creates dir, the folder of the parts, and checks that a
// file can be created in it.
func preparePartsDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("output %s is a file: in a continuous run (checkpoints) the parquet sink writes a folder of parts, one per checkpoint; remove the file or change path", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".vigie-check-*")
	if err != nil {
		return fmt.Errorf("folder %s is not writable: %w", dir, err)
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}

// partsWriter writes the parts of a checkpointed run.
type partsWriter struct {
	dir, owner string
	schema     *arrow.Schema
	opts       []parquet.WriterProperty
	done       partsPosition // the parts complete
	cur        *writer       // the part being written, nil between parts
}

var (
	_ protocol.Writer  = (*partsWriter)(nil)
	_ protocol.Flusher = (*partsWriter)(nil)
)

// openParts opens the folder dir for the parts of a checkpointed run,
// from cfg.Resume (see the comment at the top of this file).
func openParts(cfg protocol.Config, dir, owner string, schema *arrow.Schema, opts []parquet.WriterProperty) (*partsWriter, error) {
	var from partsPosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return nil, err
		}
	}
	if err := preparePartsDir(dir); err != nil {
		return nil, protocol.WithKind(err, protocol.ErrConfig)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	// A temporary part of this stage's: ".part-<n>.parquet.tmp-<owner>-<random>".
	temp := ".tmp-" + owner + "-"
	for _, e := range entries {
		name := e.Name()
		n, part := partNumber(name)
		stale := part && n > from.Parts ||
			owner != "" && strings.HasPrefix(name, "."+partPrefix) && strings.Contains(name, temp)
		if !stale {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove %s, written after the checkpoint resumed from: %w", name, err)
		}
	}
	return &partsWriter{dir: dir, owner: owner, schema: schema, opts: opts, done: from}, nil
}

// Write adds the batch's rows to the current part, which it starts if
// there is none.
func (p *partsWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil // no part for an empty batch (a schema carrier)
	}
	if p.cur == nil {
		w, err := newWriter(filepath.Join(p.dir, partName(p.done.Parts+1)), p.owner, p.schema, p.opts)
		if err != nil {
			return err
		}
		p.cur = w
	}
	return p.cur.Write(ctx, rec)
}

// Flush completes the current part, if any, and renames it into place.
func (p *partsWriter) Flush(ctx context.Context) (protocol.Position, error) {
	if err := p.closePart(ctx); err != nil {
		return nil, err
	}
	return protocol.NewPosition(p.done)
}

func (p *partsWriter) closePart(ctx context.Context) error {
	if p.cur == nil {
		return nil
	}
	w := p.cur
	p.cur = nil
	if err := w.Close(ctx); err != nil {
		return err
	}
	p.done.Parts++
	p.done.Rows += w.rows
	return nil
}

// Close completes the last part.
func (p *partsWriter) Close(ctx context.Context) error { return p.closePart(ctx) }

// Abort removes the part being written; complete parts stay.
func (p *partsWriter) Abort(ctx context.Context) error {
	if p.cur == nil {
		return nil
	}
	w := p.cur
	p.cur = nil
	return w.Abort(ctx)
}
