package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/stream"
)

// unionStage streams the rows of several stages as one: columns matched by
// name, missing columns null. Batches from different inputs interleave in
// arrival order; within one input the order is kept.
type unionStage struct {
	schema *arrow.Schema
	mem    memory.Allocator
}

// unionSchema is every column of every input, first seen first, nullable,
// with safe widenings where inputs disagree.
func unionSchema(names []string, schemas []*arrow.Schema) (*arrow.Schema, error) {
	var fields []arrow.Field
	where := map[string]int{}
	from := map[string]string{}
	for i, s := range schemas {
		for _, f := range s.Fields() {
			j, seen := where[f.Name]
			if !seen {
				where[f.Name] = len(fields)
				from[f.Name] = names[i]
				fields = append(fields, arrow.Field{Name: f.Name, Type: f.Type, Nullable: true})
				continue
			}
			t, ok := widen(fields[j].Type, f.Type)
			if !ok {
				return nil, fmt.Errorf("column %q is %s in %q but %s in %q: a union needs one type per column (or a safe widening)",
					f.Name, fields[j].Type, from[f.Name], f.Type, names[i])
			}
			fields[j].Type = t
		}
	}
	return arrow.NewSchema(fields, nil), nil
}

// widen returns the type both a and b convert to without loss.
func widen(a, b arrow.DataType) (arrow.DataType, bool) {
	if arrow.TypeEqual(a, b) {
		return a, true
	}
	rank := func(t arrow.DataType) int {
		switch t.ID() {
		case arrow.INT32:
			return 1
		case arrow.INT64:
			return 2
		case arrow.FLOAT64:
			return 3
		}
		return 0
	}
	if ra, rb := rank(a), rank(b); ra > 0 && rb > 0 {
		if ra > rb {
			return a, true
		}
		return b, true
	}
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	isTime := func(t arrow.DataType) bool {
		return t.ID() == arrow.DATE32 || (t.ID() == arrow.TIMESTAMP && t.(*arrow.TimestampType).Unit == arrow.Microsecond)
	}
	if isTime(a) && isTime(b) {
		return ts, true
	}
	return nil, false
}

func (u *unionStage) Run(ctx context.Context, st *stream.Stage, ins []*stream.Inbox, out *stream.Outbox) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := u.forward(ctx, in, out); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

func (u *unionStage) forward(ctx context.Context, in *stream.Inbox, out *stream.Outbox) error {
	for {
		rec, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		conformed, err := conform(ctx, rec, u.schema, u.mem)
		rec.Release()
		if err != nil {
			return err
		}
		if err := out.Send(ctx, conformed); err != nil {
			return err
		}
	}
}

// conform returns rec with schema's columns: its own (cast when the union
// widened them) and nulls for the others.
func conform(ctx context.Context, rec arrow.RecordBatch, schema *arrow.Schema, mem memory.Allocator) (arrow.RecordBatch, error) {
	n := int(rec.NumRows())
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	cctx := compute.WithAllocator(ctx, mem)
	for _, f := range schema.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) == 0 {
			cols = append(cols, array.MakeArrayOfNull(mem, f.Type, n))
			continue
		}
		col := rec.Column(idx[0])
		if arrow.TypeEqual(col.DataType(), f.Type) {
			col.Retain()
			cols = append(cols, col)
			continue
		}
		cast, err := compute.CastArray(cctx, col, compute.SafeCastOptions(f.Type))
		if err != nil {
			return nil, fmt.Errorf("column %q: convert %s to %s: %w", f.Name, col.DataType(), f.Type, err)
		}
		cols = append(cols, cast)
	}
	return array.NewRecordBatch(schema, cols, int64(n)), nil
}
