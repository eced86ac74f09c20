package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/state"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// groupStage runs a group rule. Its input goes into a keyed store (the
// timelines: each key's rows in order_by order, see engine/state); once
// the input has ended, the stage walks the keys in order and evaluates
// whole groups at a time, about call_rows rows per call (a larger group
// goes alone), on the stage's instances side by side (ordered), emitting
// in key order. Each output row is the group's key columns followed by the
// rule's outputs.
//
// Only the columns the rule needs (keys, order_by, its inputs) are kept.
// With keep_state the store is the pipeline's state_dir and timelines
// persist between runs; otherwise a temporary store is used for the run.
// Either way memory stays bounded by the store's budget and batch_rows.
type groupStage struct {
	*ruleStage
	schema    *arrow.Schema // output: keys then outputs
	project   []int         // upstream columns kept, in upstream order
	keys      []int         // key columns, in the projected schema
	order     int           // order_by column in the projected schema, -1 for arrival order
	stored    *arrow.Schema // projected schema
	batchRows int
	callRows  int                                // rows per call at the end of input (call_rows)
	store     func() (*state.Store, bool, error) // the store, and whether it is shared
	perRow    *perRow                            // emit = "per_row"; nil for "at_end"
}

func newGroupStage(r *ruleStage, batchRows int) (*groupStage, error) {
	up := r.binding.Upstream()
	g := &groupStage{ruleStage: r, order: -1, batchRows: batchRows, callRows: groupCallRows(r.cfg, batchRows)}
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
	keep := map[int]bool{}
	var keyIdx []int
	var keyFields []arrow.Field
	for _, k := range r.cfg.GroupBy {
		i, err := col(k, "group_by")
		if err != nil {
			return nil, err
		}
		keyIdx = append(keyIdx, i)
		keyFields = append(keyFields, up.Field(i))
		keep[i] = true
	}
	orderIdx := -1
	if r.cfg.OrderBy != "" {
		i, err := col(r.cfg.OrderBy, "order_by")
		if err != nil {
			return nil, err
		}
		orderIdx = i
		keep[i] = true
	}
	for _, in := range r.mod.Manifest.Inputs {
		keep[up.FieldIndices(in.Name)[0]] = true // Bind checked it exists
	}
	at := map[int]int{}
	var fields []arrow.Field
	for i, f := range up.Fields() {
		if keep[i] {
			if !state.Supported(f.Type) {
				return nil, fmt.Errorf("column %q has type %s, which a group rule's timeline cannot hold", f.Name, f.Type)
			}
			at[i] = len(g.project)
			g.project = append(g.project, i)
			fields = append(fields, f)
		}
	}
	md := up.Metadata()
	g.stored = arrow.NewSchema(fields, &md)
	for _, i := range keyIdx {
		g.keys = append(g.keys, at[i])
	}
	if orderIdx >= 0 {
		g.order = at[orderIdx]
	}
	// The rule sees the timeline's columns: bind it to them.
	binding, err := r.mod.Bind(g.stored, wasmhost.NewBindConfig())
	if err != nil {
		return nil, err
	}
	r.binding = binding
	schema, err := binding.GroupOutputSchema(keyFields)
	if err != nil {
		return nil, err
	}
	g.schema = schema
	if r.cfg.Emit == config.EmitPerRow {
		if err := g.setPerRow(up, orderIdx); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// groupCallRows is the row budget of one call of the group rule r at the
// end of its input: call_rows, else config.DefaultCallRows or the
// pipeline's batch_rows when smaller.
func groupCallRows(r *config.Rule, batchRows int) int {
	if r.CallRows > 0 {
		return r.CallRows
	}
	return min(batchRows, config.DefaultCallRows)
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

func (g *groupStage) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox, out *stream.Outbox) error {
	if g.perRow != nil {
		return g.runPerRow(ctx, st, in, out)
	}
	store, shared, err := g.store()
	if err != nil {
		return err
	}
	if !shared {
		defer store.Close()
	}
	tl, err := store.Timelines(state.Spec{
		Stage:         g.cfg.Name,
		Schema:        g.stored,
		Keys:          g.keys,
		Order:         g.order,
		Retention:     g.cfg.Retention,
		MaxRowsPerKey: g.cfg.MaxRowsPerKey,
	})
	if err != nil {
		return err
	}
	start := time.Now()
	var inRows int64
	for {
		rec, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		inRows += rec.NumRows()
		err = g.append(tl, rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	if shared {
		if err := tl.Flush(); err != nil {
			return fmt.Errorf("keep state: %w", err)
		}
	}
	st.Log.Debug("group rule: input ended", "rows", inRows, "elapsed", time.Since(start).Round(time.Millisecond))
	callsStart := time.Now()
	defer func() {
		var sizes []uint32
		for _, inst := range g.insts {
			sizes = append(sizes, inst.MemorySize())
		}
		st.Log.Debug("group rule: calls done", "elapsed", time.Since(callsStart).Round(time.Millisecond), "memory", sizes)
	}()
	opts := state.ScanOptions{BatchRows: g.callRows, TouchedOnly: g.cfg.Rescore == config.RescoreTouched}
	return g.ordered(ctx, st, out, func(ctx context.Context, submit submitFunc) error {
		return tl.Scan(ctx, g.mem, opts, func(rec arrow.RecordBatch, starts []int) error {
			rec.Retain() // Scan releases rec when this returns; the work may run later
			starts = slices.Clone(starts)
			work := func(inst *wasmhost.Instance, o *outcome) {
				o.rows = int64(starts[len(starts)-1] - starts[0])
				g.evalGroups(ctx, inst, rec, starts, starts[0], newBisection(g.cfg.Bisect), o)
				if o.err != nil {
					o.release()
				}
				rec.Release()
			}
			return submit(work, rec.Release)
		})
	})
}

// append stores the kept columns of rec.
func (g *groupStage) append(tl *state.Timelines, rec arrow.RecordBatch) error {
	cols := make([]arrow.Array, len(g.project))
	for k, i := range g.project {
		cols[k] = rec.Column(i)
	}
	proj := array.NewRecordBatch(g.stored, cols, rec.NumRows())
	defer proj.Release()
	if err := tl.Append(proj); err != nil {
		return fmt.Errorf("keep rows: %w", err)
	}
	return nil
}

// evalGroups evaluates the groups whose bounds are starts (absolute rows
// of all, last entry the end) and keeps one output row per group; first
// is the first row of the outcome (dead letters are indexed from it).
func (g *groupStage) evalGroups(ctx context.Context, inst *wasmhost.Instance, all arrow.RecordBatch, starts []int, first int, b *bisection, o *outcome) {
	g.bisectGroups(ctx, inst, all, starts, 0, b, nil, o,
		func(part arrow.RecordBatch, offsets []uint32, res arrow.RecordBatch, _ int) (arrow.RecordBatch, error) {
			return g.withKeys(ctx, part, offsets, res)
		},
		func(part arrow.RecordBatch, lo, _, _ int, reason string) {
			g.deadLetter(part, int64(lo-first), reason, o)
		})
}

// bisectGroups evaluates the groups whose bounds are starts (absolute rows
// of all, last entry the end), bisecting over groups when the rule fails
// and the policy allows it, within the budget b; lastErr is the error of
// the groups these were split from. gi is the index of the first group
// among those of the first call. out makes the output of groups
// evaluated together (part their rows, offsets their bounds in part, gi
// the index of the first); dead sends n groups that were not, rows part
// from row lo of all, to the dead letters with the reason. The one
// bisection of group rules, per key at the end and per row.
func (g *groupStage) bisectGroups(ctx context.Context, inst *wasmhost.Instance, all arrow.RecordBatch, starts []int, gi int, b *bisection, lastErr error, o *outcome,
	out func(part arrow.RecordBatch, offsets []uint32, res arrow.RecordBatch, gi int) (arrow.RecordBatch, error),
	dead func(part arrow.RecordBatch, lo, gi, n int, reason string)) {
	lo, hi := starts[0], starts[len(starts)-1]
	n := len(starts) - 1
	part := all.NewSlice(int64(lo), int64(hi))
	defer part.Release()
	if !b.call(lastErr) {
		dead(part, lo, gi, n, b.stop)
		return
	}
	offsets := make([]uint32, len(starts))
	for i, s := range starts {
		offsets[i] = uint32(s - lo)
	}
	res, err := inst.EvalGroup(ctx, g.binding, part, offsets, g.mem)
	if err == nil {
		rec, kerr := out(part, offsets, res, gi)
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
	case n == 1: // one group: to the dead letters
		b.failed(1, err)
		dead(part, lo, gi, 1, err.Error())
	default:
		mid := len(starts) / 2
		g.bisectGroups(ctx, inst, all, starts[:mid+1], gi, b, err, o, out, dead)
		if o.err == nil {
			g.bisectGroups(ctx, inst, all, starts[mid:], gi+mid, b, err, o, out, dead)
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
