package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// groupStage runs a group rule: it gathers its whole input, orders it by
// the key columns and then order_by, and evaluates whole groups at a time,
// at most batch_rows rows per call (a larger group goes alone). Each output
// row is the group's key columns followed by the rule's outputs.
//
// It holds its input in memory: fine for a term's worth of a district's
// data; keyed state with a memory budget comes with the state store.
type groupStage struct {
	*ruleStage
	schema    *arrow.Schema
	keys      []int // key column indices in the upstream schema
	order     int   // order_by column index, -1 for arrival order
	batchRows int
}

func newGroupStage(r *ruleStage, batchRows int) (*groupStage, error) {
	up := r.binding.Upstream()
	g := &groupStage{ruleStage: r, order: -1, batchRows: batchRows}
	var keyFields []arrow.Field
	col := func(name, what string) (int, error) {
		idx := up.FieldIndices(name)
		if len(idx) != 1 {
			return 0, fmt.Errorf("%s column %q is not in the input (columns: %s)", what, name, fieldList(up))
		}
		if !orderable(up.Field(idx[0]).Type) {
			return 0, fmt.Errorf("%s column %q has type %s, which cannot be grouped or ordered", what, name, up.Field(idx[0]).Type)
		}
		return idx[0], nil
	}
	for _, k := range r.cfg.GroupBy {
		i, err := col(k, "group_by")
		if err != nil {
			return nil, err
		}
		g.keys = append(g.keys, i)
		keyFields = append(keyFields, up.Field(i))
	}
	if r.cfg.OrderBy != "" {
		i, err := col(r.cfg.OrderBy, "order_by")
		if err != nil {
			return nil, err
		}
		g.order = i
	}
	schema, err := r.binding.GroupOutputSchema(keyFields)
	if err != nil {
		return nil, err
	}
	g.schema = schema
	return g, nil
}

func fieldList(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return fmt.Sprint(names)
}

func orderable(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.INT32, arrow.INT64, arrow.DATE32, arrow.TIMESTAMP, arrow.BOOL, arrow.FLOAT64:
		return true
	}
	return false
}

// comparator returns a three-way comparison of two rows of a column, nulls
// first.
func comparator(a arrow.Array) func(i, j int) int {
	nulls := func(i, j int) (int, bool) {
		in, jn := a.IsNull(i), a.IsNull(j)
		switch {
		case in && jn:
			return 0, true
		case in:
			return -1, true
		case jn:
			return 1, true
		}
		return 0, false
	}
	var values func(i, j int) int
	switch a := a.(type) {
	case *array.String:
		values = func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }
	case *array.Int32:
		values = func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }
	case *array.Int64:
		values = func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }
	case *array.Date32:
		values = func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }
	case *array.Timestamp:
		values = func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }
	case *array.Float64:
		values = func(i, j int) int { return cmp.Compare(a.Value(i), a.Value(j)) }
	case *array.Boolean:
		values = func(i, j int) int {
			x, y := a.Value(i), a.Value(j)
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	default:
		panic(fmt.Sprintf("comparator: unsupported type %s", a.DataType()))
	}
	return func(i, j int) int {
		if c, ok := nulls(i, j); ok {
			return c
		}
		return values(i, j)
	}
}

func (g *groupStage) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox, out *stream.Outbox) error {
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for {
		rec, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil
	}
	all, err := g.sorted(ctx, recs)
	if err != nil {
		return err
	}
	defer all.Release()
	for _, r := range recs {
		r.Release()
	}
	recs = nil

	// Group bounds over the sorted rows.
	n := int(all.NumRows())
	keyCmp := make([]func(i, j int) int, len(g.keys))
	for k, c := range g.keys {
		keyCmp[k] = comparator(all.Column(c))
	}
	starts := []int{0}
	for i := 1; i < n; i++ {
		for _, c := range keyCmp {
			if c(i-1, i) != 0 {
				starts = append(starts, i)
				break
			}
		}
	}
	starts = append(starts, n) // sentinel

	// Evaluate whole groups, about batch_rows rows at a time.
	for first := 0; first < len(starts)-1; {
		last := first + 1
		for last < len(starts)-1 && starts[last+1]-starts[first] <= g.batchRows {
			last++
		}
		o := &outcome{}
		g.evalGroups(ctx, all, starts[first:last+1], o)
		if o.err != nil {
			o.release()
			return o.err
		}
		if len(o.dead) > 0 {
			st.Log.Warn("group rule failed on groups; their rows are dead-lettered", "rows", len(o.dead), "error", o.dead[0].Reason)
			if err := st.DeadLetter(o.dead...); err != nil {
				o.release()
				return err
			}
		}
		for i, rec := range o.outs {
			if err := out.Send(ctx, rec); err != nil {
				(&outcome{outs: o.outs[i+1:]}).release()
				return err
			}
		}
		first = last
	}
	return nil
}

// sorted concatenates recs and orders the rows by key, then order_by; the
// sort is stable, so equal rows keep their arrival order.
func (g *groupStage) sorted(ctx context.Context, recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	schema := recs[0].Schema()
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	parts := make([]arrow.Array, len(recs))
	for c := range cols {
		for i, r := range recs {
			parts[i] = r.Column(c)
		}
		col, err := array.Concatenate(parts, g.mem)
		if err != nil {
			return nil, fmt.Errorf("gather input: %w", err)
		}
		cols[c] = col
	}
	n := cols[0].Len()
	by := make([]func(i, j int) int, 0, len(g.keys)+1)
	for _, k := range g.keys {
		by = append(by, comparator(cols[k]))
	}
	if g.order >= 0 {
		by = append(by, comparator(cols[g.order]))
	}
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortStableFunc(perm, func(a, b int32) int {
		for _, c := range by {
			if r := c(int(a), int(b)); r != 0 {
				return r
			}
		}
		return 0
	})
	ib := array.NewInt32Builder(g.mem)
	ib.AppendValues(perm, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	cctx := compute.WithAllocator(ctx, g.mem)
	taken := make([]arrow.Array, len(cols))
	for c, col := range cols {
		t, err := compute.TakeArray(cctx, col, idx)
		if err != nil {
			for _, t := range taken[:c] {
				t.Release()
			}
			return nil, fmt.Errorf("order input: %w", err)
		}
		taken[c] = t
	}
	rec := array.NewRecordBatch(schema, taken, int64(n))
	for _, t := range taken {
		t.Release()
	}
	return rec, nil
}

// evalGroups evaluates the groups whose bounds are starts (absolute rows
// of all, last entry the end), bisecting over groups when the rule fails
// and the policy allows it.
func (g *groupStage) evalGroups(ctx context.Context, all arrow.RecordBatch, starts []int, o *outcome) {
	lo, hi := starts[0], starts[len(starts)-1]
	part := all.NewSlice(int64(lo), int64(hi))
	defer part.Release()
	offsets := make([]uint32, len(starts))
	for i, s := range starts {
		offsets[i] = uint32(s - lo)
	}
	res, err := g.insts[0].EvalGroup(ctx, g.binding, part, offsets, g.mem)
	if err == nil {
		rec, kerr := g.withKeys(ctx, part, offsets, res)
		res.Release()
		if kerr != nil {
			o.err = kerr
			return
		}
		o.outs = append(o.outs, rec)
		return
	}
	switch {
	case ctx.Err() != nil:
		o.err = ctx.Err()
	case g.cfg.OnError == config.OnErrorFail:
		o.err = fmt.Errorf("rule %s: %w", g.mod.Manifest.Name, err)
	case len(starts) == 2: // one group: its rows go to the dead letters
		rows, jerr := rowsAsJSON(part)
		if jerr != nil {
			o.err = jerr
			return
		}
		for _, raw := range rows {
			o.dead = append(o.dead, stream.DeadLetter{Origin: g.origin(), Reason: err.Error(), Raw: raw})
		}
	default:
		mid := len(starts) / 2
		g.evalGroups(ctx, all, starts[:mid+1], o)
		if o.err == nil {
			g.evalGroups(ctx, all, starts[mid:], o)
		}
	}
}

// withKeys prepends each group's key values to the rule's outputs.
func (g *groupStage) withKeys(ctx context.Context, part arrow.RecordBatch, offsets []uint32, res arrow.RecordBatch) (arrow.RecordBatch, error) {
	ib := array.NewInt32Builder(g.mem)
	for _, off := range offsets[:len(offsets)-1] {
		ib.Append(int32(off))
	}
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	cctx := compute.WithAllocator(ctx, g.mem)
	cols := make([]arrow.Array, 0, g.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for _, k := range g.keys {
		t, err := compute.TakeArray(cctx, part.Column(k), idx)
		if err != nil {
			return nil, fmt.Errorf("group keys: %w", err)
		}
		cols = append(cols, t)
	}
	for _, c := range res.Columns() {
		c.Retain()
		cols = append(cols, c)
	}
	return array.NewRecordBatch(g.schema, cols, res.NumRows()), nil
}
