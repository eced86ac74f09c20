// Package state keeps the engine's keyed state: the timelines that group
// rules see (each key's rows, ordered), in an embedded store (pebble) so
// that they persist between runs and stay within a memory budget.
//
// Rows are stored under ordered keys: stage namespace, group key values,
// the order value (event time), and a hash of the row's content. Iterating
// a stage's keys therefore yields each group's rows together, in order,
// without sorting in memory; and storing the same row twice (a rerun over
// the same data) keeps one copy, so reruns are idempotent.
package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble"
)

var errCorrupt = errors.New("state: corrupt row")

// Options tune a Store.
type Options struct {
	// MemoryBytes bounds the store's caches and memtables (default 256 MiB).
	MemoryBytes int64
	// WriteThenScan says that the store is filled once and then read once
	// in key order (the temporary store of a group rule evaluated at the
	// end of its input): it runs no compactions while it is filled (the
	// scan merges the flushed tables instead of the store rewriting them
	// level by level), and keeps a block cache of at most 8 MiB, since no
	// block is read twice. A store that is read by key, or for long, must
	// not set it: its tables would pile up unmerged.
	WriteThenScan bool
}

// Store is an embedded key-value store. Safe for concurrent use.
type Store struct {
	db   *pebble.DB
	dir  string
	temp bool
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) { return open(dir, opts, false) }

func open(dir string, opts Options, temp bool) (*Store, error) {
	if opts.MemoryBytes <= 0 {
		opts.MemoryBytes = 256 << 20
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	cacheBytes := opts.MemoryBytes / 2
	if opts.WriteThenScan {
		cacheBytes = min(cacheBytes, 8<<20)
	}
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref()
	po := &pebble.Options{
		Cache:        cache,
		MemTableSize: uint64(max(4<<20, opts.MemoryBytes/8)),
		Logger:       quietLogger{},
		// A temporary store dies with the run: no write-ahead log.
		DisableWAL: temp,
	}
	if opts.WriteThenScan {
		po.DisableAutomaticCompactions = true
		// Without compactions every flush adds a level 0 table: let them
		// pile up instead of stopping writes at the default 12.
		po.L0CompactionThreshold = math.MaxInt32
		po.L0StopWritesThreshold = math.MaxInt32
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open state in %s: %w", dir, err)
	}
	return &Store{db: db, dir: dir, temp: temp}, nil
}

// OpenTemp opens a store in a new temporary folder, removed by Close.
func OpenTemp(opts Options) (*Store, error) {
	dir, err := os.MkdirTemp("", "vigie-state-")
	if err != nil {
		return nil, err
	}
	s, err := open(dir, opts, true)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// writeOpts is how commits that must survive a crash are written: synced,
// except in a temporary store, which has no log to sync.
func (s *Store) writeOpts() *pebble.WriteOptions {
	if s.temp {
		return pebble.NoSync
	}
	return pebble.Sync
}

// Close closes the store (and removes a temporary one).
func (s *Store) Close() error {
	err := s.db.Close()
	if s.temp {
		os.RemoveAll(s.dir)
	}
	return err
}

// Compact compacts the whole store and returns once it is done: the
// background compactions a bulk load would set off are over (benchmarks
// that preload state call it so as not to time them).
func (s *Store) Compact() error {
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("state: compact: %w", err)
	}
	if err := s.db.Compact([]byte{0}, []byte{0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return fmt.Errorf("state: compact: %w", err)
	}
	return nil
}

// Spec describes one stage's timelines.
type Spec struct {
	// Stage names the namespace.
	Stage string
	// Schema of the rows kept.
	Schema *arrow.Schema
	// Keys are the group key columns.
	Keys []int
	// Order is the column ordering rows within a key, -1 for arrival
	// order (then rows are not deduplicated and retention does not apply).
	Order int
	// Retention drops rows older than the newest order value seen minus
	// Retention (order column of type date32 or timestamp); 0 keeps all.
	Retention time.Duration
	// MaxRowsPerKey keeps only each key's newest rows; 0 keeps all.
	MaxRowsPerKey int
}

// Timelines are the rows of one stage, by key then order.
type Timelines struct {
	s      *Store
	spec   Spec
	codec  *rowCodec
	prefix []byte // rows
	touch  []byte // keys touched since the last scan
	meta   []byte
	seq    uint64 // arrival order, when Order < 0
	mark   int64  // newest order value seen (watermark), when temporal
	marked bool
}

// Timelines opens the timelines of a stage. The schema is recorded: a
// stage whose schema changed since the state was written is refused, as
// its old rows could not be read back.
func (s *Store) Timelines(spec Spec) (*Timelines, error) {
	codec, err := newRowCodec(spec.Schema)
	if err != nil {
		return nil, err
	}
	ns := binary.AppendUvarint(nil, uint64(len(spec.Stage)))
	ns = append(ns, spec.Stage...)
	t := &Timelines{
		s: s, spec: spec, codec: codec,
		prefix: append([]byte("r"), ns...),
		touch:  append([]byte("t"), ns...),
		meta:   append([]byte("m"), ns...),
	}
	fp := fingerprint(spec)
	old, closer, err := s.db.Get(t.metaKey("schema"))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(t.metaKey("schema"), []byte(fp), s.writeOpts()); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		same := string(old) == fp
		closer.Close()
		if !same {
			return nil, fmt.Errorf("state of stage %q was kept for other columns or keys (%s); now %s: remove the stage's state (state dir) to start afresh", spec.Stage, old, fp)
		}
	}
	if v, closer, err := s.db.Get(t.metaKey("watermark")); err == nil {
		t.mark, t.marked = int64(binary.BigEndian.Uint64(v)), true
		closer.Close()
	}
	return t, nil
}

func fingerprint(spec Spec) string {
	var parts []string
	for _, f := range spec.Schema.Fields() {
		parts = append(parts, f.Name+":"+storedType(f.Type).String())
	}
	return fmt.Sprintf("columns=%s keys=%v order=%d", strings.Join(parts, ","), spec.Keys, spec.Order)
}

func (t *Timelines) metaKey(name string) []byte {
	return append(append(append([]byte(nil), t.meta...), 0), name...)
}

// temporal reports whether the order column holds times (for retention).
func (t *Timelines) temporal() bool {
	if t.spec.Order < 0 {
		return false
	}
	id := t.spec.Schema.Field(t.spec.Order).Type.ID()
	return id == arrow.DATE32 || id == arrow.TIMESTAMP
}

// Append stores every row of rec and marks its keys as touched.
func (t *Timelines) Append(rec arrow.RecordBatch) error {
	b := t.s.db.NewBatch()
	defer b.Close()
	cols := rec.Columns()
	keyCols := make([]arrow.Array, len(t.spec.Keys))
	for k, c := range t.spec.Keys {
		keyCols[k] = cols[c]
	}
	var key, val, lastGroup []byte
	h := fnv.New64a()
	for i := range int(rec.NumRows()) {
		key = append(key[:0], t.prefix...)
		for _, c := range keyCols {
			key = appendOrdered(key, c, i)
		}
		groupEnd := len(key)
		if t.spec.Order >= 0 {
			oc := cols[t.spec.Order]
			key = appendOrdered(key, oc, i)
			if t.temporal() && !oc.IsNull(i) {
				v := orderedInt64(key[len(key)-8:])
				if !t.marked || v > t.mark {
					t.mark, t.marked = v, true
				}
			}
		} else {
			t.seq++
			key = binary.BigEndian.AppendUint64(key, t.seq)
		}
		val = t.codec.encode(val[:0], cols, i)
		h.Reset()
		h.Write(val)
		key = binary.BigEndian.AppendUint64(key, h.Sum64())
		if err := b.Set(key, val, nil); err != nil {
			return err
		}
		if group := key[len(t.prefix):groupEnd]; !bytes.Equal(group, lastGroup) {
			lastGroup = append(lastGroup[:0], group...)
			touchKey := append(append([]byte(nil), t.touch...), group...)
			if err := b.Set(touchKey, nil, nil); err != nil {
				return err
			}
		}
	}
	if t.marked {
		if err := b.Set(t.metaKey("watermark"), binary.BigEndian.AppendUint64(nil, uint64(t.mark)), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.NoSync)
}

// groupLen returns the length of the group-key part of a row key (after
// the prefix).
func (t *Timelines) groupLen(rest []byte) (int, error) {
	n := 0
	for _, c := range t.spec.Keys {
		w := skipOrdered(rest[n:], t.spec.Schema.Field(c).Type)
		if w < 0 {
			return 0, errCorrupt
		}
		n += w
	}
	return n, nil
}

// cutoff is the oldest order value retention keeps, in the order column's
// unit.
func (t *Timelines) cutoff() (int64, bool) {
	if t.spec.Retention <= 0 || !t.temporal() || !t.marked {
		return 0, false
	}
	ty := t.spec.Schema.Field(t.spec.Order).Type
	var span int64
	switch ty := ty.(type) {
	case *arrow.Date32Type:
		span = int64(t.spec.Retention / (24 * time.Hour))
	case *arrow.TimestampType:
		span = int64(t.spec.Retention) / int64(ty.Unit.Multiplier())
	}
	return t.mark - span, true
}

// ScanOptions tune Scan.
type ScanOptions struct {
	// TouchedOnly visits only keys that received rows since the last scan;
	// otherwise every key is visited. Either way the visited keys are no
	// longer "touched" afterwards.
	TouchedOnly bool
	// BatchRows is the most rows per call of fn, except that one key's
	// rows are never split (default 65536).
	BatchRows int
}

// Scan visits keys in order and calls fn with batches of whole groups:
// rec holds the groups' rows, in key then order; starts holds each group's
// first row and, last, rec's row count. fn borrows rec. Rows past
// retention or the row cap are deleted as they are met.
func (t *Timelines) Scan(ctx context.Context, mem memory.Allocator, opts ScanOptions, fn func(rec arrow.RecordBatch, starts []int) error) error {
	if opts.BatchRows <= 0 {
		opts.BatchRows = 65536
	}
	bs := make([]array.Builder, len(t.codec.types))
	fields := make([]arrow.Field, len(t.codec.types))
	for k, ty := range t.codec.types {
		bs[k] = array.NewBuilder(mem, ty)
		f := t.spec.Schema.Field(k)
		fields[k] = arrow.Field{Name: f.Name, Type: ty, Nullable: f.Nullable, Metadata: f.Metadata}
	}
	defer func() {
		for _, b := range bs {
			b.Release()
		}
	}()
	md := t.spec.Schema.Metadata()
	schema := arrow.NewSchema(fields, &md)
	var starts []int
	rows := 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		cols := make([]arrow.Array, len(bs))
		for k, b := range bs {
			cols[k] = b.NewArray()
		}
		rec := array.NewRecordBatch(schema, cols, int64(rows))
		for _, c := range cols {
			c.Release()
		}
		err := fn(rec, append(starts, rows))
		rec.Release()
		starts, rows = starts[:0], 0
		return err
	}
	del := t.s.db.NewBatch()
	defer del.Close()
	cut, hasCut := t.cutoff()

	// The current group's rows are gathered in pending (the row cap needs
	// to know how many there are), then decoded into the builders.
	var pending, pendingKeys [][]byte
	addRow := func(k, v []byte, rest []byte, g int) error {
		if hasCut {
			if o := rest[g:]; len(o) >= 9 && o[0] == 1 && orderedInt64(o[1:9]) < cut {
				return del.Delete(k, nil)
			}
		}
		pending = append(pending, append([]byte(nil), v...))
		pendingKeys = append(pendingKeys, append([]byte(nil), k...))
		return nil
	}
	endGroup := func() error {
		defer func() { pending, pendingKeys = pending[:0], pendingKeys[:0] }()
		if m := t.spec.MaxRowsPerKey; m > 0 && len(pending) > m {
			for _, k := range pendingKeys[:len(pending)-m] {
				if err := del.Delete(k, nil); err != nil {
					return err
				}
			}
			pending = pending[len(pending)-m:]
		}
		if len(pending) == 0 {
			return nil
		}
		if rows > 0 && rows+len(pending) > opts.BatchRows {
			if err := flush(); err != nil {
				return err
			}
		}
		starts = append(starts, rows)
		for _, v := range pending {
			if err := t.codec.decode(v, bs); err != nil {
				return err
			}
		}
		rows += len(pending)
		return nil
	}
	// scanRange feeds the rows between lo and hi to the groups.
	scanRange := func(lo, hi []byte) error {
		it, err := t.s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		defer it.Close()
		var cur []byte
		n := 0
		for it.First(); it.Valid(); it.Next() {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := it.Key()
			rest := k[len(t.prefix):]
			g, err := t.groupLen(rest)
			if err != nil {
				return err
			}
			if cur != nil && !bytes.Equal(rest[:g], cur) {
				if err := endGroup(); err != nil {
					return err
				}
			}
			cur = append(cur[:0], rest[:g]...)
			if err := addRow(k, it.Value(), rest, g); err != nil {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
		return endGroup()
	}

	if !opts.TouchedOnly {
		if err := scanRange(t.prefix, upperBound(t.prefix)); err != nil {
			return err
		}
	} else {
		keysIt, err := t.s.db.NewIter(&pebble.IterOptions{LowerBound: t.touch, UpperBound: upperBound(t.touch)})
		if err != nil {
			return err
		}
		defer keysIt.Close()
		for keysIt.First(); keysIt.Valid(); keysIt.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			lo := append(append([]byte(nil), t.prefix...), keysIt.Key()[len(t.touch):]...)
			if err := del.Delete(keysIt.Key(), nil); err != nil {
				return err
			}
			if err := scanRange(lo, upperBound(lo)); err != nil {
				return err
			}
		}
		if err := keysIt.Error(); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if !opts.TouchedOnly { // every key was visited: none is pending
		if err := del.DeleteRange(t.touch, upperBound(t.touch), nil); err != nil {
			return err
		}
	}
	return del.Commit(t.s.writeOpts())
}

// Flush makes everything appended durable.
func (t *Timelines) Flush() error { return t.s.db.Flush() }

// upperBound returns the smallest key greater than every key with prefix p.
func upperBound(p []byte) []byte {
	u := append([]byte(nil), p...)
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] < 0xFF {
			u[i]++
			return u[:i+1]
		}
	}
	return nil
}
