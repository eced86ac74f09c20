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
// the parts from 1. A part is written under a temporary name and closed
// (footer, fsync) when the engine flushes the sink at the checkpoint; the
// position the flush returns is the number of parts complete and the
// temporary name of the last one, still pending. A checkpoint that saw no
// row adds no part.
//
// A part is renamed into place (published) only once the checkpoint that
// recorded it committed, so a reader listing the folder never sees a part
// that a crash takes back. The sink is not told of the commit; it knows
// it from the engine's order: the engine flushes a sink again only after
// the checkpoint of its previous flush committed (a cut is never given up
// once a sink flushed for it, engine/pipeline checkpoint.go), and closes
// it only after its last checkpoint. So the pending part is published at
// the next flush (before the new part is closed), or at Close; a position
// that a restart resumes from was committed, so the new writer keeps its
// pending part pending and publishes it at its own first flush. Until
// then a part is one checkpoint interval late.
//
// Opened again with a position (a restart from the checkpoint), the sink
// removes the parts above it and the temporary parts its killed writers
// left, but the pending one: they hold rows the engine replays. Opened
// without a position (a run that starts from the beginning) it removes
// every part, as a batch run replaces its file. Readers that take a folder
// of Parquet files as one table (DuckDB's read_parquet('dir/*.parquet'),
// pyarrow.dataset, Spark) read the output as it is: temporary names start
// with a dot, which those readers skip.

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
// to Parts, Rows rows in all. Pending, when set, is the temporary name
// (in the folder) of part Parts, complete but not yet published.
type partsPosition struct {
	Parts   int64  `json:"parts"`
	Rows    int64  `json:"rows"`
	Pending string `json:"pending,omitempty"`
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
	pendingPrefix := "." + partName(from.Parts) + ".tmp-" // atomicfile's temporary names
	if owner != "" {
		pendingPrefix += owner + "-"
	}
	if from.Pending != "" && (filepath.Base(from.Pending) != from.Pending || !strings.HasPrefix(from.Pending, pendingPrefix)) {
		return nil, fmt.Errorf("resume %s: %q is not a temporary name of its part %d: %w", dir, from.Pending, from.Parts, protocol.ErrConfig)
	}
	for _, e := range entries {
		name := e.Name()
		n, part := partNumber(name)
		stale := part && n > from.Parts ||
			owner != "" && strings.HasPrefix(name, "."+partPrefix) && strings.Contains(name, temp) && name != from.Pending
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

// Flush publishes the pending part (the checkpoint of the previous flush
// committed), then completes the current part, if any, which becomes the
// pending one.
func (p *partsWriter) Flush(ctx context.Context) (protocol.Position, error) {
	if err := p.publish(); err != nil {
		return nil, err
	}
	if err := p.closePart(ctx); err != nil {
		return nil, err
	}
	return protocol.NewPosition(p.done)
}

// publish renames the pending part into place. A pending part already
// gone is in place: a run that closed after its last checkpoint
// published it, and the next one resumes from that checkpoint.
func (p *partsWriter) publish() error {
	if p.done.Pending == "" {
		return nil
	}
	tmp, final := filepath.Join(p.dir, p.done.Pending), filepath.Join(p.dir, partName(p.done.Parts))
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); !errors.Is(err, os.ErrNotExist) || serr != nil {
			return fmt.Errorf("publish %s: %w", final, err)
		}
	} else {
		syncDir(p.dir)
	}
	p.done.Pending = ""
	return nil
}

// closePart completes the current part, if any, under its temporary name:
// it becomes the pending part.
func (p *partsWriter) closePart(ctx context.Context) error {
	if p.cur == nil {
		return nil
	}
	w := p.cur
	p.cur = nil
	tmp, err := w.seal()
	if err != nil {
		return err
	}
	p.done.Parts++
	p.done.Rows += w.rows
	p.done.Pending = filepath.Base(tmp)
	return nil
}

// Close publishes the pending part (the sink's last checkpoint committed
// it), then completes the current part, if any, and publishes it: rows
// written after the last checkpoint, which the engine writes only when the
// commit point closed before this sink.
func (p *partsWriter) Close(ctx context.Context) error {
	if err := p.publish(); err != nil {
		return err
	}
	if err := p.closePart(ctx); err != nil {
		return err
	}
	return p.publish()
}

// syncDir makes a rename in dir durable; it is best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Abort removes the part being written; complete parts stay, the pending
// one under its temporary name (a restart from a checkpoint that recorded
// it publishes it, one from an earlier checkpoint removes it).
func (p *partsWriter) Abort(ctx context.Context) error {
	if p.cur == nil {
		return nil
	}
	w := p.cur
	p.cur = nil
	return w.Abort(ctx)
}
