package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// joinStage enriches its input with the matching rows of a dimension. The
// dimension is read whole first and kept in memory (with a hash index on
// its keys); the input is then streamed. Input batches that arrive while
// the dimension loads are held, so that a dimension and an input sharing
// an upstream stage cannot deadlock.
type joinStage struct {
	cfg    *config.Join
	schema *arrow.Schema // input fields, then the added dimension fields
	inKeys []int         // key columns in the input
	dmKeys []int         // key columns in the dimension
	add    []int         // dimension columns added
	mem    memory.Allocator
}

func newJoinStage(cfg *config.Join, input, dim *arrow.Schema, mem memory.Allocator) (*joinStage, error) {
	j := &joinStage{cfg: cfg, mem: mem}
	col := func(s *arrow.Schema, side, name string) (int, error) {
		idx := s.FieldIndices(name)
		if len(idx) != 1 {
			return 0, fmt.Errorf("%s %q has no column %q (columns: %s)", side, map[string]string{"input": cfg.Input, "dimension": cfg.Dimension}[side], name, fieldList(s))
		}
		return idx[0], nil
	}
	for _, k := range cfg.On {
		i, err := col(input, "input", k)
		if err != nil {
			return nil, err
		}
		d, err := col(dim, "dimension", k)
		if err != nil {
			return nil, err
		}
		it, dt := input.Field(i).Type, dim.Field(d).Type
		if !arrow.TypeEqual(it, dt) {
			return nil, fmt.Errorf("key %q is %s in %q but %s in %q: keys must have the same type", k, it, cfg.Input, dt, cfg.Dimension)
		}
		if !keyable(it) {
			return nil, fmt.Errorf("key %q has type %s, which cannot be a join key", k, it)
		}
		j.inKeys, j.dmKeys = append(j.inKeys, i), append(j.dmKeys, d)
	}
	names := cfg.Columns
	if names == nil {
		for _, f := range dim.Fields() {
			if !slices.Contains(cfg.On, f.Name) {
				names = append(names, f.Name)
			}
		}
	}
	fields := slices.Clone(input.Fields())
	for _, name := range names {
		d, err := col(dim, "dimension", name)
		if err != nil {
			return nil, err
		}
		if input.HasField(name) {
			return nil, fmt.Errorf("column %q of %q is already in %q: list the columns to add in the join's columns key", name, cfg.Dimension, cfg.Input)
		}
		j.add = append(j.add, d)
		f := dim.Field(d)
		fields = append(fields, arrow.Field{Name: f.Name, Type: f.Type, Nullable: true, Metadata: f.Metadata})
	}
	md := input.Metadata()
	j.schema = arrow.NewSchema(fields, &md)
	return j, nil
}

func keyable(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.INT32, arrow.INT64, arrow.DATE32, arrow.TIMESTAMP, arrow.BOOL:
		return true
	}
	return false
}

// appendKey appends an unambiguous encoding of row i of the key columns to
// b; ok is false when a key value is null (a null key matches nothing).
func appendKey(b []byte, cols []arrow.Array, i int) ([]byte, bool) {
	for _, c := range cols {
		if c.IsNull(i) {
			return b, false
		}
		switch c := c.(type) {
		case *array.String:
			v := c.Value(i)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case *array.Int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(c.Value(i)))
		case *array.Int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(c.Value(i)))
		case *array.Date32:
			b = binary.LittleEndian.AppendUint32(b, uint32(c.Value(i)))
		case *array.Timestamp:
			b = binary.LittleEndian.AppendUint64(b, uint64(c.Value(i)))
		case *array.Boolean:
			if c.Value(i) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return b, true
}

// dimension is the loaded dimension: its added columns, concatenated, and
// the row of each key.
type dimension struct {
	cols  []arrow.Array
	index map[string]int32
}

func (d *dimension) release() {
	for _, c := range d.cols {
		c.Release()
	}
}

func (j *joinStage) load(ctx context.Context, in *stream.Inbox) (*dimension, error) {
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	d := &dimension{index: map[string]int32{}}
	var key []byte
	row := int32(0)
	for {
		rec, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
		keys := make([]arrow.Array, len(j.dmKeys))
		for k, c := range j.dmKeys {
			keys[k] = rec.Column(c)
		}
		for i := range int(rec.NumRows()) {
			var ok bool
			key, ok = appendKey(key[:0], keys, i)
			if ok {
				if _, dup := d.index[string(key)]; dup {
					return nil, fmt.Errorf("dimension %q has two rows for key %s: a join needs one row per key", j.cfg.Dimension, keyText(keys, i))
				}
				d.index[string(key)] = row
			}
			if row == math.MaxInt32 {
				return nil, fmt.Errorf("dimension %q has more than %d rows", j.cfg.Dimension, math.MaxInt32)
			}
			row++
		}
	}
	base := j.schema.NumFields() - len(j.add)
	for k, c := range j.add {
		parts := make([]arrow.Array, len(recs))
		for i, r := range recs {
			parts[i] = r.Column(c)
		}
		var col arrow.Array
		if len(parts) == 0 {
			col = array.MakeArrayOfNull(j.mem, j.schema.Field(base+k).Type, 0)
		} else {
			var err error
			if col, err = array.Concatenate(parts, j.mem); err != nil {
				d.release()
				return nil, fmt.Errorf("load dimension %q: %w", j.cfg.Dimension, err)
			}
		}
		d.cols = append(d.cols, col)
	}
	return d, nil
}

func keyText(cols []arrow.Array, i int) string {
	parts := make([]string, len(cols))
	for k, c := range cols {
		parts[k] = c.ValueStr(i)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func (j *joinStage) Run(ctx context.Context, st *stream.Stage, ins []*stream.Inbox, out *stream.Outbox) error {
	input, dimIn := ins[0], ins[1]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Hold the input while the dimension loads (see joinStage).
	held := make(chan arrow.RecordBatch, 1<<16)
	holdErr := make(chan error, 1)
	go func() {
		defer close(held)
		for {
			rec, err := input.Recv(ctx)
			if errors.Is(err, io.EOF) {
				holdErr <- nil
				return
			}
			if err != nil {
				holdErr <- err
				return
			}
			select {
			case held <- rec:
			case <-ctx.Done():
				rec.Release()
				holdErr <- ctx.Err()
				return
			}
		}
	}()
	defer func() {
		cancel()
		for rec := range held {
			rec.Release()
		}
	}()

	dim, err := j.load(ctx, dimIn)
	if err != nil {
		return err
	}
	defer dim.release()
	for rec := range held {
		joined, dead, err := j.join(ctx, rec, dim)
		rec.Release()
		if err != nil {
			return err
		}
		if len(dead) > 0 {
			if err := st.DeadLetter(dead...); err != nil {
				joined.Release()
				return err
			}
		}
		if err := out.Send(ctx, joined); err != nil {
			return err
		}
	}
	return <-holdErr
}

// join enriches one batch; with how = "inner", rows without a match are
// dropped from the result and returned as dead letters.
func (j *joinStage) join(ctx context.Context, rec arrow.RecordBatch, dim *dimension) (arrow.RecordBatch, []stream.DeadLetter, error) {
	n := int(rec.NumRows())
	keys := make([]arrow.Array, len(j.inKeys))
	for k, c := range j.inKeys {
		keys[k] = rec.Column(c)
	}
	ib := array.NewInt32Builder(j.mem)
	defer ib.Release()
	ib.Reserve(n)
	var key []byte
	var missing []int
	for i := range n {
		var ok bool
		key, ok = appendKey(key[:0], keys, i)
		row, found := dim.index[string(key)]
		if ok && found {
			ib.UnsafeAppend(row)
		} else {
			ib.UnsafeAppendBoolToBitmap(false)
			missing = append(missing, i)
		}
	}
	idx := ib.NewArray()
	defer idx.Release()
	cctx := compute.WithAllocator(ctx, j.mem)
	cols := make([]arrow.Array, 0, j.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, c := range rec.Columns() {
		c.Retain()
		cols = append(cols, c)
	}
	for _, dc := range dim.cols {
		t, err := compute.TakeArray(cctx, dc, idx)
		if err != nil {
			return nil, nil, fmt.Errorf("join %q: %w", j.cfg.Name, err)
		}
		cols = append(cols, t)
	}
	joined := array.NewRecordBatch(j.schema, cols, int64(n))
	if j.cfg.How != config.JoinInner || len(missing) == 0 {
		return joined, nil, nil
	}
	defer joined.Release()
	dead := make([]stream.DeadLetter, 0, len(missing))
	rows, err := rowsAsJSON(rec)
	if err != nil {
		return nil, nil, err
	}
	mb := array.NewBooleanBuilder(j.mem)
	defer mb.Release()
	next := 0
	for i := range n {
		miss := next < len(missing) && missing[next] == i
		mb.Append(!miss)
		if miss {
			next++
			dead = append(dead, stream.DeadLetter{
				Origin: fmt.Sprintf("join %s", j.cfg.Name),
				Reason: fmt.Sprintf("no row of %q has key %s", j.cfg.Dimension, keyText(keys, i)),
				Raw:    rows[i],
			})
		}
	}
	mask := mb.NewArray()
	defer mask.Release()
	kept, err := compute.FilterRecordBatch(cctx, joined, mask, compute.DefaultFilterOptions())
	if err != nil {
		return nil, nil, fmt.Errorf("join %q: %w", j.cfg.Name, err)
	}
	return kept, dead, nil
}
