package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble"
)

// Arrivals are the timelines of a group rule with emit = "per_row": each
// key's rows, versioned by arrival (docs/design/streaming.md, sections 3
// and 4). A stored row's key is
//
//	"a" | stage | partition | group key | order value | arrival sequence
//
// where the partition is the source partition of the row and the arrival
// sequence its offset in that partition (a Kafka offset, or a count the
// stage keeps). Storing the same input row twice (a replay after a crash)
// writes the same key and value: a no-op. The rows of a key "as of" an
// input row are the stored rows of its partition and key whose sequence is
// at most the row's, so rows stored by a run that crashed after them do
// not leak into the prefix of an earlier row. [Store.DeleteAbove] rolls a
// partition back to a committed cut.
//
// Beside the rows, each partition's progress (newest order value seen, the
// watermark's base, and the last sequence) is versioned the same way:
//
//	"p" | stage | partition | sequence  ->  progress after that sequence
type Arrivals struct {
	s     *Store
	spec  Spec
	codec *rowCodec
	rows  []byte // "a" | stage
	prog  []byte // "p" | stage
}

// Progress is what a stage has seen of one source partition.
type Progress struct {
	// Mark is the newest order value seen (in the order column's unit, as
	// an int64), valid when Marked.
	Mark   int64
	Marked bool
	// Seq is the last arrival sequence stored (0 with Any false: none).
	Seq uint64
	Any bool
}

// Entry is one stored row of an [Arrivals]: its partition, group key and
// order value (ordered encodings), arrival sequence, and encoded row.
type Entry struct {
	Partition uint32
	Group     []byte
	Order     []byte
	Seq       uint64
	Row       []byte
}

// Arrivals opens the arrival-versioned timelines of a stage. Spec.Order
// must be set (the event time); Retention and MaxRowsPerKey are applied
// by the caller. The schema is recorded, as for [Store.Timelines].
func (s *Store) Arrivals(spec Spec) (*Arrivals, error) {
	if spec.Order < 0 {
		return nil, errors.New("state: arrival-versioned timelines need an order column")
	}
	codec, err := newRowCodec(spec.Schema)
	if err != nil {
		return nil, err
	}
	ns := stageNS(spec.Stage)
	a := &Arrivals{s: s, spec: spec, codec: codec,
		rows: append([]byte("a"), ns...),
		prog: append([]byte("p"), ns...),
	}
	meta := append(append(append([]byte("m"), ns...), 0), "arrivals-schema"...)
	fp := fingerprint(spec)
	old, closer, err := s.db.Get(meta)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(meta, []byte(fp), s.writeOpts()); err != nil {
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
	return a, nil
}

func stageNS(stage string) []byte {
	ns := binary.AppendUvarint(nil, uint64(len(stage)))
	return append(ns, stage...)
}

// Encode returns the group key, the order value (ordered encodings) and
// the encoded row i of rec, whose schema is the spec's. The slices are
// new.
func (a *Arrivals) Encode(rec arrow.RecordBatch, i int) (group, order, row []byte) {
	cols := rec.Columns()
	for _, c := range a.spec.Keys {
		group = appendOrdered(group, cols[c], i)
	}
	order = appendOrdered(nil, cols[a.spec.Order], i)
	row = a.codec.encode(nil, cols, i)
	return group, order, row
}

// OrderValue returns the order value of an ordered encoding as an int64,
// and false for a null or a non-integer type (strings, floats, booleans).
func (a *Arrivals) OrderValue(order []byte) (int64, bool) {
	switch a.codec.types[a.spec.Order].ID() {
	case arrow.INT32, arrow.INT64, arrow.DATE32, arrow.TIMESTAMP:
		if len(order) == 9 && order[0] == 1 {
			return orderedInt64(order[1:]), true
		}
	}
	return 0, false
}

// Builders returns builders for decoded rows and the schema of the
// records they make (dictionaries come back as strings). The caller
// releases the builders.
func (a *Arrivals) Builders(mem memory.Allocator) ([]array.Builder, *arrow.Schema) {
	bs := make([]array.Builder, len(a.codec.types))
	fields := make([]arrow.Field, len(a.codec.types))
	for k, ty := range a.codec.types {
		bs[k] = array.NewBuilder(mem, ty)
		f := a.spec.Schema.Field(k)
		fields[k] = arrow.Field{Name: f.Name, Type: ty, Nullable: f.Nullable, Metadata: f.Metadata}
	}
	md := a.spec.Schema.Metadata()
	return bs, arrow.NewSchema(fields, &md)
}

// Decode appends an encoded row to builders made by Builders.
func (a *Arrivals) Decode(row []byte, bs []array.Builder) error { return a.codec.decode(row, bs) }

func (e *Entry) key(rows []byte) []byte {
	k := binary.BigEndian.AppendUint32(append([]byte(nil), rows...), e.Partition)
	k = append(append(k, e.Group...), e.Order...)
	return binary.BigEndian.AppendUint64(k, e.Seq)
}

// Load returns the stored rows of a partition's key, in order value then
// arrival sequence. To read many keys, a [Reader] is cheaper.
func (a *Arrivals) Load(p uint32, group []byte) ([]Entry, error) {
	r, err := a.NewReader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Load(p, group)
}

// Reader reads the stored rows of several keys with one iterator. Keys
// read in increasing (partition, group key) order let pebble seek forward
// from where the last one ended instead of from the top of every level;
// the rows' bytes are copied into large shared blocks rather than two
// allocations per row. The Reader sees the store as it was when made:
// make a new one after a Commit.
type Reader struct {
	a    *Arrivals
	it   *pebble.Iterator
	lo   []byte
	slab []byte
}

// NewReader returns a Reader; the caller closes it.
func (a *Arrivals) NewReader() (*Reader, error) {
	it, err := a.s.db.NewIter(&pebble.IterOptions{LowerBound: a.rows, UpperBound: upperBound(a.rows)})
	if err != nil {
		return nil, err
	}
	return &Reader{a: a, it: it}, nil
}

// slabBytes is the size of the blocks a Reader copies rows into.
const slabBytes = 64 << 10

// copyBytes returns a copy of b in the Reader's current block.
func (r *Reader) copyBytes(b []byte) []byte {
	if len(b) > slabBytes/4 {
		return append([]byte(nil), b...)
	}
	if cap(r.slab)-len(r.slab) < len(b) {
		r.slab = make([]byte, 0, slabBytes)
	}
	n := len(r.slab)
	r.slab = append(r.slab, b...)
	return r.slab[n:len(r.slab):len(r.slab)]
}

// Load returns the stored rows of a partition's key, in order value then
// arrival sequence. The entries' Group is group; their other slices are
// new (shared with no other key's).
func (r *Reader) Load(p uint32, group []byte) ([]Entry, error) {
	r.lo = binary.BigEndian.AppendUint32(append(r.lo[:0], r.a.rows...), p)
	r.lo = append(r.lo, group...)
	lo := r.lo
	var out []Entry
	for ok := r.it.SeekGE(lo); ok && bytes.HasPrefix(r.it.Key(), lo); ok = r.it.Next() {
		rest := r.it.Key()[len(lo):]
		if len(rest) < 9 {
			return nil, errCorrupt
		}
		if out == nil {
			out = make([]Entry, 0, 32)
		}
		out = append(out, Entry{
			Partition: p, Group: group,
			Order: r.copyBytes(rest[:len(rest)-8]),
			Seq:   binary.BigEndian.Uint64(rest[len(rest)-8:]),
			Row:   r.copyBytes(r.it.Value()),
		})
	}
	if err := r.it.Error(); err != nil {
		return nil, err
	}
	return out, nil
}

// Close releases the Reader's iterator.
func (r *Reader) Close() error { return r.it.Close() }

// Progress returns the latest recorded progress of partition p.
func (a *Arrivals) Progress(p uint32) (Progress, error) { return a.s.progress(a.prog, p) }

// Progress returns the latest recorded progress of partition p of a
// stage's arrival-versioned timelines: Seq is the last arrival sequence
// stored, what a checkpoint records as the stage's cut in that partition
// (and later gives DeleteAbove) when the source has no offsets of its own.
func (s *Store) Progress(stage string, p uint32) (Progress, error) {
	return s.progress(append([]byte("p"), stageNS(stage)...), p)
}

func (s *Store) progress(prefix []byte, p uint32) (Progress, error) {
	lo := binary.BigEndian.AppendUint32(append([]byte(nil), prefix...), p)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(lo)})
	if err != nil {
		return Progress{}, err
	}
	defer it.Close()
	if !it.Last() {
		return Progress{}, it.Error()
	}
	return decodeProgress(it.Key()[len(lo):], it.Value())
}

func decodeProgress(seq, v []byte) (Progress, error) {
	if len(seq) != 8 || len(v) != 9 {
		return Progress{}, errCorrupt
	}
	return Progress{Seq: binary.BigEndian.Uint64(seq), Any: true,
		Mark: int64(binary.BigEndian.Uint64(v)), Marked: v[8] == 1}, nil
}

// Flush makes everything committed durable.
func (a *Arrivals) Flush() error { return a.s.db.Flush() }

// Write is one atomic write of an Arrivals: rows stored, rows deleted
// (retention, row cap) and partitions' progress.
type Write struct {
	Put, Delete []Entry
	Progress    map[uint32]Progress
}

// Commit applies w at once. Durability is the store's checkpoint's
// business (not synced here).
func (a *Arrivals) Commit(w Write) error {
	b := a.s.db.NewBatch()
	defer b.Close()
	for _, e := range w.Put {
		if err := b.Set(e.key(a.rows), e.Row, nil); err != nil {
			return err
		}
	}
	for _, e := range w.Delete {
		if err := b.Delete(e.key(a.rows), nil); err != nil {
			return err
		}
	}
	for p, pr := range w.Progress {
		if !pr.Any {
			continue
		}
		k := binary.BigEndian.AppendUint32(append([]byte(nil), a.prog...), p)
		k = binary.BigEndian.AppendUint64(k, pr.Seq)
		v := binary.BigEndian.AppendUint64(nil, uint64(pr.Mark))
		if pr.Marked {
			v = append(v, 1)
		} else {
			v = append(v, 0)
		}
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state: store rows: %w", err)
	}
	return nil
}

// Versions are values versioned by arrival: per source partition and key,
// the value as of each arrival sequence that changed it (the alerts stage
// keeps there what it announced). Keys are
//
//	"w" | stage | partition | len(key) key | sequence
//
// Writing the same version twice is a no-op; [Store.DeleteAbove] rolls a
// partition back.
type Versions struct {
	s      *Store
	prefix []byte
}

// Versions opens the versioned values of a stage.
func (s *Store) Versions(stage string) *Versions {
	return &Versions{s: s, prefix: append([]byte("w"), stageNS(stage)...)}
}

func (v *Versions) keyPrefix(p uint32, key []byte) []byte {
	k := binary.BigEndian.AppendUint32(append([]byte(nil), v.prefix...), p)
	k = binary.AppendUvarint(k, uint64(len(key)))
	return append(k, key...)
}

// Before returns a copy of the latest value of key in partition p written
// at a sequence below seq, and whether there is one.
func (v *Versions) Before(p uint32, key []byte, seq uint64) ([]byte, bool, error) {
	lo := v.keyPrefix(p, key)
	it, err := v.s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: binary.BigEndian.AppendUint64(append([]byte(nil), lo...), seq)})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	if !it.Last() {
		return nil, false, it.Error()
	}
	if len(it.Key()) != len(lo)+8 {
		return nil, false, errCorrupt
	}
	return append([]byte(nil), it.Value()...), true, nil
}

// VersionWrite is one version of one key.
type VersionWrite struct {
	Partition uint32
	Key       []byte
	Seq       uint64
	Value     []byte
}

// Commit writes versions at once (not synced, as Arrivals.Commit).
func (v *Versions) Commit(ws []VersionWrite) error {
	if len(ws) == 0 {
		return nil
	}
	b := v.s.db.NewBatch()
	defer b.Close()
	for _, w := range ws {
		k := binary.BigEndian.AppendUint64(v.keyPrefix(w.Partition, w.Key), w.Seq)
		if err := b.Set(k, w.Value, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state: store versions: %w", err)
	}
	return nil
}

// DeleteAbove rolls partition p of a stage back to the cut seq: every
// arrival-versioned entry of the stage in that partition whose sequence is
// above seq (timeline rows, progress, versioned values) is deleted, in one
// synced write. After it, the stage sees the partition as it was once the
// row of sequence seq had been processed; feeding it the rows after seq
// again gives the same state and outputs as the first time. This is what a
// restart from a committed checkpoint calls for every partition, with the
// checkpoint's last sequence (docs/design/streaming.md, section 4).
//
// It reads every row of the partition (the sequence is the last part of
// a row's key, not a prefix): a restart costs one pass over the
// partition's state. Rows deleted by retention or the row cap after the
// cut are not restored.
func (s *Store) DeleteAbove(stage string, p uint32, seq uint64) error {
	ns := stageNS(stage)
	b := s.db.NewBatch()
	defer b.Close()
	for _, letter := range []string{"a", "p", "w"} {
		lo := binary.BigEndian.AppendUint32(append([]byte(letter), ns...), p)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(lo)})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			if len(k) < len(lo)+8 {
				it.Close()
				return errCorrupt
			}
			if binary.BigEndian.Uint64(k[len(k)-8:]) > seq {
				if err := b.Delete(bytes.Clone(k), nil); err != nil {
					it.Close()
					return err
				}
			}
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return err
		}
	}
	if err := b.Commit(s.writeOpts()); err != nil {
		return fmt.Errorf("state: roll back stage %q partition %d to %d: %w", stage, p, seq, err)
	}
	return nil
}

// Cut returns the last arrival sequence of every partition of a stage's
// arrival-versioned timelines (the sequence of its latest progress): what
// a checkpoint records, once the stage has stored every row before the
// cut, so that a restart can roll the stage's progress back to it
// ([Store.RollBackProgress]). A partition with no progress is absent.
func (s *Store) Cut(stage string) (map[uint32]uint64, error) {
	cut := map[uint32]uint64{}
	err := s.eachProgressPartition(stage, func(it *pebble.Iterator, lo []byte, p uint32) error {
		// The partition's last entry is its latest progress.
		hi := upperBound(binary.BigEndian.AppendUint32(append([]byte(nil), lo...), p))
		if !it.SeekLT(hi) {
			return it.Error()
		}
		k := it.Key()
		if len(k) != len(lo)+12 {
			return errCorrupt
		}
		cut[p] = binary.BigEndian.Uint64(k[len(lo)+4:])
		return nil
	})
	return cut, err
}

// RollBackProgress deletes, in one synced write, the progress a stage
// recorded after cut (partition → last sequence, from [Store.Cut]): every
// progress entry of a partition whose sequence is above the partition's
// cut, and every one of a partition absent from cut. After it the
// stage's watermark and retention in each partition are what they were at
// the cut, so rows replayed from there are judged late, or expired, as
// they were the first time (and a stage that counts sequences itself
// numbers them again from the cut). Stored rows and versioned values are
// kept: they are versioned by arrival sequence, and the replay writes the
// same ones again ([Store.DeleteAbove] removes them too, at the cost of a
// pass over the stage's rows). It returns the number of partitions rolled
// back.
func (s *Store) RollBackProgress(stage string, cut map[uint32]uint64) (int, error) {
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	err := s.eachProgressPartition(stage, func(it *pebble.Iterator, lo []byte, p uint32) error {
		part := binary.BigEndian.AppendUint32(append([]byte(nil), lo...), p)
		from := part
		if seq, ok := cut[p]; ok {
			if seq == ^uint64(0) {
				return nil
			}
			from = binary.BigEndian.AppendUint64(append([]byte(nil), part...), seq+1)
		}
		hi := upperBound(part)
		if !it.SeekGE(from) || bytes.Compare(it.Key(), hi) >= 0 {
			return it.Error()
		}
		n++
		return b.DeleteRange(from, hi, nil)
	})
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(s.writeOpts()); err != nil {
		return 0, fmt.Errorf("state: roll back the progress of stage %q: %w", stage, err)
	}
	return n, nil
}

// eachProgressPartition calls fn for each partition that has progress
// entries of stage, in order, with an iterator over them and their
// prefix ("p" | stage); fn may move the iterator.
func (s *Store) eachProgressPartition(stage string, fn func(it *pebble.Iterator, lo []byte, p uint32) error) error {
	lo := append([]byte("p"), stageNS(stage)...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	for valid := it.SeekGE(lo); valid; {
		k := it.Key()
		if len(k) < len(lo)+4 {
			return errCorrupt
		}
		p := binary.BigEndian.Uint32(k[len(lo):])
		if err := fn(it, lo, p); err != nil {
			return err
		}
		if p == ^uint32(0) {
			break
		}
		valid = it.SeekGE(binary.BigEndian.AppendUint32(append([]byte(nil), lo...), p+1))
	}
	return it.Error()
}
