package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/state"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// Columns a group rule with emit = "per_row" adds after the rule's
// outputs: the triggering row's event time (its order_by value), source
// partition and arrival sequence, then the carried columns.
const (
	ColEventTime        = "event_time"
	ColArrivalPartition = "arrival_partition"
	ColArrivalSeq       = "arrival_seq"
)

// perRow is the event-time setting of a group stage with emit = "per_row"
// (docs/design/streaming.md, sections 3 and 4): for each input row, the
// rule's result for that row's key as of that row, i.e. over the key's
// stored rows of the same source partition whose arrival sequence is at
// most the row's, in event-time order.
type perRow struct {
	part, off int   // upstream columns of the partition and the arrival sequence; -1 when absent
	order     int   // upstream order_by column
	carry     []int // upstream columns copied to each output row
	lateness  int64 // allowed lateness in the order column's unit; 0: nothing is late
	retention int64 // retention in the order column's unit; 0: keep all
	unit      time.Duration
}

// span converts d into units of the order column t (date32: days;
// timestamp: its unit); ok is false when t is not a time.
func span(d time.Duration, t arrow.DataType) (n int64, unit time.Duration, ok bool) {
	switch t := t.(type) {
	case *arrow.Date32Type:
		return int64(d / (24 * time.Hour)), 24 * time.Hour, true
	case *arrow.TimestampType:
		u := time.Duration(t.Unit.Multiplier())
		return int64(d / u), u, true
	}
	return 0, 0, false
}

// setPerRow prepares emit = "per_row": the partition, sequence and carried
// columns, and the output schema.
func (g *groupStage) setPerRow(up *arrow.Schema, orderIdx int) error {
	cfg := g.cfg
	if orderIdx < 0 {
		return fmt.Errorf("emit = %q needs order_by, the event time", config.EmitPerRow)
	}
	pr := &perRow{part: -1, off: -1, order: orderIdx}
	col := func(name, what string, types ...arrow.Type) (int, error) {
		idx := up.FieldIndices(name)
		if len(idx) != 1 {
			return -1, fmt.Errorf("%s column %q is not in the input (columns: %s)", what, name, fieldList(up))
		}
		if len(types) > 0 && !slices.Contains(types, up.Field(idx[0]).Type.ID()) {
			return -1, fmt.Errorf("%s column %q has type %s; expected int32 or int64", what, name, up.Field(idx[0]).Type)
		}
		return idx[0], nil
	}
	partName, offName := cfg.PartitionColumn, cfg.OffsetColumn
	if partName == "" && slices.Contains(cfg.Carry, "partition") {
		partName = "partition"
	}
	if offName == "" && slices.Contains(cfg.Carry, "offset") {
		offName = "offset"
	}
	var err error
	if partName != "" {
		if pr.part, err = col(partName, "partition_column", arrow.INT32, arrow.INT64); err != nil {
			return err
		}
	}
	if offName != "" {
		if pr.off, err = col(offName, "offset_column", arrow.INT32, arrow.INT64); err != nil {
			return err
		}
	}
	for _, c := range cfg.Carry {
		i, err := col(c, "carry")
		if err != nil {
			return err
		}
		pr.carry = append(pr.carry, i)
	}
	ot := up.Field(orderIdx).Type
	if cfg.AllowedLateness > 0 {
		n, unit, ok := span(cfg.AllowedLateness, ot)
		if !ok {
			return fmt.Errorf("allowed_lateness needs an order_by column of type date32 or timestamp; %q has type %s", cfg.OrderBy, ot)
		}
		pr.lateness, pr.unit = max(n, 1), unit
	}
	if cfg.Retention > 0 {
		if n, unit, ok := span(cfg.Retention, ot); ok {
			pr.retention, pr.unit = max(n, 1), unit
		}
	}
	fields := slices.Clone(g.schema.Fields())
	fields = append(fields,
		arrow.Field{Name: ColEventTime, Type: ot, Nullable: true},
		arrow.Field{Name: ColArrivalPartition, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: ColArrivalSeq, Type: arrow.PrimitiveTypes.Int64},
	)
	for _, c := range pr.carry {
		fields = append(fields, up.Field(c))
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.Name] {
			return fmt.Errorf("emit = %q: output column %q appears twice (a key, an output of the rule, %s, %s, %s or a carried column)", config.EmitPerRow, f.Name, ColEventTime, ColArrivalPartition, ColArrivalSeq)
		}
		seen[f.Name] = true
	}
	md := g.schema.Metadata()
	g.schema = arrow.NewSchema(fields, &md)
	g.perRow = pr
	return nil
}

// keyTimeline is one key's rows while a micro-batch is prepared: the
// stored ones and the batch's, in order value then arrival sequence.
type keyTimeline struct {
	key     string // partition (big-endian) then group key: the store's order
	part    uint32
	group   []byte
	pending []state.Entry // the batch's rows, until the stored ones are read
	entries []state.Entry
}

// loadTimelines reads the stored rows of the touched keys, in the
// store's key order with one reader, and inserts the batch's rows.
func (g *groupStage) loadTimelines(arr *state.Arrivals, keys map[string]*keyTimeline) error {
	order := make([]*keyTimeline, 0, len(keys))
	for _, ks := range keys {
		order = append(order, ks)
	}
	slices.SortFunc(order, func(a, b *keyTimeline) int { return strings.Compare(a.key, b.key) })
	r, err := arr.NewReader()
	if err != nil {
		return fmt.Errorf("rule %s: read state: %w", g.mod.Manifest.Name, err)
	}
	defer r.Close()
	for _, ks := range order {
		stored, err := r.Load(ks.part, ks.group)
		if err != nil {
			return fmt.Errorf("rule %s: read state: %w", g.mod.Manifest.Name, err)
		}
		ks.entries = stored
		for _, e := range ks.pending {
			ks.insert(e)
		}
		ks.pending = nil
	}
	return nil
}

func entryLess(a, b *state.Entry) int {
	if c := bytes.Compare(a.Order, b.Order); c != 0 {
		return c
	}
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// insert adds e, replacing a stored row of the same arrival (a replay).
func (k *keyTimeline) insert(e state.Entry) {
	i := sort.Search(len(k.entries), func(i int) bool { return entryLess(&k.entries[i], &e) >= 0 })
	if i < len(k.entries) && entryLess(&k.entries[i], &e) == 0 {
		k.entries[i] = e
		return
	}
	k.entries = slices.Insert(k.entries, i, e)
}

// trigger is one input row of a micro-batch and what its output needs.
type trigger struct {
	row    int // in the input batch
	ks     *keyTimeline
	entry  state.Entry
	cutoff int64 // oldest order value retention keeps, when hasCut
	hasCut bool
}

// prefix returns the rows of t's key as of t: arrival sequence at most
// t's, within retention and the row cap.
// The entries are appended to sel[:0].
func (t *trigger) prefix(a *state.Arrivals, maxRows int, sel []state.Entry) []state.Entry {
	sel = sel[:0]
	for _, e := range t.ks.entries {
		if e.Seq > t.entry.Seq {
			continue
		}
		if t.hasCut {
			if v, ok := a.OrderValue(e.Order); ok && v < t.cutoff {
				continue
			}
		}
		sel = append(sel, e)
	}
	if maxRows > 0 && len(sel) > maxRows {
		sel = sel[len(sel)-maxRows:]
	}
	if len(sel) == 0 { // a late row past retention: scored alone
		sel = append(sel, t.entry)
	}
	return sel
}

// runPerRow runs a group rule with emit = "per_row": for each micro-batch
// (each input batch), the touched keys' timelines are read, the batch's
// rows stored, and one group per input row evaluated, in input order.
func (g *groupStage) runPerRow(ctx context.Context, st *stream.Stage, in *stream.Inbox, out *stream.Outbox) error {
	opening := time.Now()
	store, shared, err := g.store()
	if err != nil {
		return err
	}
	if !shared {
		defer store.Close()
	}
	arr, err := store.Arrivals(state.Spec{Stage: g.cfg.Name, Schema: g.stored, Keys: g.keys, Order: g.order})
	if err != nil {
		return err
	}
	// What a restart spends opening the state store (replaying pebble's
	// log) when this stage opens it first: figure 4 of
	// docs/design/streaming.md reads it.
	opened := time.Now()
	st.Log.Info("per-row state opened", "took", opened.Sub(opening))
	progress := map[uint32]*state.Progress{}
	first := true
	err = g.ordered(ctx, st, out, func(ctx context.Context, submit submitFunc) error {
		for {
			rec, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if first {
				// The source resumed (figure 4 too).
				st.Log.Info("per-row first micro-batch received", "rows", rec.NumRows(), "since_opened", time.Since(opened))
				first = false
			}
			err = g.microBatch(ctx, st, arr, progress, rec, submit)
			rec.Release()
			if err != nil {
				return err
			}
		}
	})
	if err == nil && shared {
		if err := arr.Flush(); err != nil {
			return fmt.Errorf("keep state: %w", err)
		}
	}
	return err
}

// partition returns the source partition of row i (0 without a
// partition column).
func (g *groupStage) partition(rec arrow.RecordBatch, i int) (uint32, error) {
	intAt := func(c int) (int64, bool) {
		switch a := rec.Column(c).(type) {
		case *array.Int32:
			return int64(a.Value(i)), a.IsValid(i)
		case *array.Int64:
			return a.Value(i), a.IsValid(i)
		}
		return 0, false
	}
	var p uint32
	if g.perRow.part >= 0 {
		v, ok := intAt(g.perRow.part)
		if !ok || v < 0 || v > 1<<31 {
			return 0, fmt.Errorf("row %d: partition column %q is null or out of range", i, rec.Schema().Field(g.perRow.part).Name)
		}
		p = uint32(v)
	}
	return p, nil
}

// sequence returns the arrival sequence of row i: its offset column, or
// the one after the partition's last.
func (g *groupStage) sequence(rec arrow.RecordBatch, i int, pr *state.Progress) (uint64, error) {
	if g.perRow.off < 0 {
		if !pr.Any {
			return 0, nil
		}
		return pr.Seq + 1, nil
	}
	var v int64
	ok := false
	switch a := rec.Column(g.perRow.off).(type) {
	case *array.Int32:
		v, ok = int64(a.Value(i)), a.IsValid(i)
	case *array.Int64:
		v, ok = a.Value(i), a.IsValid(i)
	}
	if !ok || v < 0 {
		return 0, fmt.Errorf("row %d: offset column %q is null or negative", i, rec.Schema().Field(g.perRow.off).Name)
	}
	return uint64(v), nil
}

// microBatch stores the rows of rec, builds each row's prefix and submits
// their evaluation, in chunks of about batch_rows timeline rows.
func (g *groupStage) microBatch(ctx context.Context, st *stream.Stage, arr *state.Arrivals, progress map[uint32]*state.Progress, rec arrow.RecordBatch, submit submitFunc) error {
	pr := g.perRow
	cols := make([]arrow.Array, len(g.project))
	for k, i := range g.project {
		cols[k] = rec.Column(i)
	}
	proj := array.NewRecordBatch(g.stored, cols, rec.NumRows())
	defer proj.Release()

	keys := map[string]*keyTimeline{}
	var kb []byte
	var trig []trigger
	var w state.Write
	w.Progress = map[uint32]state.Progress{}
	for i := range int(rec.NumRows()) {
		p, err := g.partition(rec, i)
		if err != nil {
			return fmt.Errorf("rule %s: %w", g.mod.Manifest.Name, err)
		}
		prog := progress[p]
		if prog == nil {
			pg, err := arr.Progress(p)
			if err != nil {
				return fmt.Errorf("rule %s: read state: %w", g.mod.Manifest.Name, err)
			}
			prog = &pg
			progress[p] = prog
		}
		seq, err := g.sequence(rec, i, prog)
		if err != nil {
			return fmt.Errorf("rule %s: %w", g.mod.Manifest.Name, err)
		}
		group, order, row := arr.Encode(proj, i)
		v, timed := arr.OrderValue(order)
		late := pr.lateness > 0 && timed && prog.Marked && v < prog.Mark-pr.lateness
		var behind time.Duration
		if late {
			behind = time.Duration(prog.Mark-pr.lateness-v) * pr.unit
		}
		if timed && (!prog.Marked || v > prog.Mark) {
			prog.Mark, prog.Marked = v, true
		}
		if !prog.Any || seq > prog.Seq {
			prog.Seq = seq
		}
		prog.Any = true
		w.Progress[p] = *prog
		if late {
			st.Stats.Late.Add(1)
			if g.cfg.Late == config.LateDeadLetter {
				if err := g.deadLetterLate(st, rec, i, p, seq, behind); err != nil {
					return err
				}
				continue
			}
		}
		kb = append(binary.BigEndian.AppendUint32(kb[:0], p), group...)
		ks := keys[string(kb)]
		if ks == nil {
			ks = &keyTimeline{key: string(kb), part: p, group: group}
			keys[ks.key] = ks
		}
		e := state.Entry{Partition: p, Group: ks.group, Order: order, Seq: seq, Row: row}
		ks.pending = append(ks.pending, e)
		w.Put = append(w.Put, e)
		t := trigger{row: i, ks: ks, entry: e}
		if pr.retention > 0 && prog.Marked {
			t.cutoff, t.hasCut = prog.Mark-pr.retention, true
		}
		trig = append(trig, t)
	}

	// Read the touched keys' stored rows in key order with one iterator
	// (each seek moves forward from the last), then add the batch's rows.
	if err := g.loadTimelines(arr, keys); err != nil {
		return err
	}

	// Build the prefixes and submit them chunk by chunk, so that at most
	// the chunks the stage's queue holds are in memory. A row's prefix
	// holds only rows of a lower or equal sequence: the batch's later
	// rows, already inserted, do not change it.
	var cur *chunk
	var sel []state.Entry
	send := func() error {
		c := cur
		cur = nil
		all := c.record()
		c.release()
		starts := append(c.starts, c.rows)
		trig := c.trig
		rec.Retain()
		work := func(inst *wasmhost.Instance, o *outcome) {
			o.rows = int64(len(trig))
			g.evalPerRow(ctx, inst, all, rec, starts, trig, newBisection(g.cfg.Bisect), o)
			if o.err != nil {
				o.release()
			}
			all.Release()
			rec.Release()
		}
		return submit(work, func() { all.Release(); rec.Release() })
	}
	for _, t := range trig {
		if cur == nil {
			bs, schema := arr.Builders(g.mem)
			cur = &chunk{bs: bs, schema: schema}
		}
		sel = t.prefix(arr, g.cfg.MaxRowsPerKey, sel)
		cur.starts = append(cur.starts, cur.rows)
		for _, e := range sel {
			if err := arr.Decode(e.Row, cur.bs); err != nil {
				cur.release()
				return fmt.Errorf("rule %s: read state: %w", g.mod.Manifest.Name, err)
			}
		}
		cur.rows += len(sel)
		cur.trig = append(cur.trig, t)
		if cur.rows >= g.batchRows || len(cur.trig) >= maxGroupsPerCall {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if cur != nil {
		if err := send(); err != nil {
			return err
		}
	}

	// Retention and the row cap, at the partitions' newest marks.
	for _, ks := range keys {
		if len(ks.entries) == 0 {
			continue
		}
		prog := progress[ks.entries[0].Partition]
		keep := ks.entries
		if pr.retention > 0 && prog.Marked {
			cut := prog.Mark - pr.retention
			keep = keep[:0:0]
			for _, e := range ks.entries {
				if v, ok := arr.OrderValue(e.Order); ok && v < cut {
					w.Delete = append(w.Delete, e)
					continue
				}
				keep = append(keep, e)
			}
		}
		if m := g.cfg.MaxRowsPerKey; m > 0 && len(keep) > m {
			w.Delete = append(w.Delete, keep[:len(keep)-m]...)
		}
	}
	if err := arr.Commit(w); err != nil {
		return fmt.Errorf("rule %s: %w", g.mod.Manifest.Name, err)
	}
	return nil
}

// maxGroupsPerCall bounds the prefixes evaluated in one rule call: a
// rule that replays each timeline from its start (the early-warning pack)
// costs per group, not per row, and a call must stay well within the
// rule's time limit (10 s by default) on a loaded machine.
const maxGroupsPerCall = 256

// chunk is a part of a micro-batch's prefixes, evaluated in one call.
type chunk struct {
	bs     []array.Builder
	schema *arrow.Schema
	starts []int
	rows   int
	trig   []trigger
}

func (c *chunk) record() arrow.RecordBatch {
	cols := make([]arrow.Array, len(c.bs))
	for k, b := range c.bs {
		cols[k] = b.NewArray()
	}
	rec := array.NewRecordBatch(c.schema, cols, int64(c.rows))
	for _, a := range cols {
		a.Release()
	}
	return rec
}

func (c *chunk) release() {
	for _, b := range c.bs {
		b.Release()
	}
	c.bs = nil
}

// deadLetterLate sends a late row to the dead letters.
func (g *groupStage) deadLetterLate(st *stream.Stage, rec arrow.RecordBatch, i int, p uint32, seq uint64, behind time.Duration) error {
	one := rec.NewSlice(int64(i), int64(i+1))
	defer one.Release()
	raw, err := rowsAsJSON(one)
	if err != nil {
		return err
	}
	return st.DeadLetter(stream.DeadLetter{
		Origin: fmt.Sprintf("partition %d", p), Line: int64(seq), Column: g.cfg.OrderBy,
		Reason: fmt.Sprintf("late by %s: behind the partition's watermark (newest event time minus allowed_lateness %s); late = %q", behind, g.cfg.AllowedLateness, config.LateDeadLetter),
		Raw:    raw[0],
	})
}

// evalPerRow evaluates the groups whose bounds are starts (rows of all,
// last entry the end), one per trigger. A group that fails alone
// dead-letters its triggering input row (its stored rows are not
// dead-lettered again).
func (g *groupStage) evalPerRow(ctx context.Context, inst *wasmhost.Instance, all, in arrow.RecordBatch, starts []int, trig []trigger, b *bisection, o *outcome) {
	g.bisectGroups(ctx, inst, all, starts, 0, b, nil, o,
		func(part arrow.RecordBatch, offsets []uint32, res arrow.RecordBatch, gi int) (arrow.RecordBatch, error) {
			return g.perRowOutput(ctx, part, offsets, res, in, trig[gi:gi+len(offsets)-1])
		},
		func(_ arrow.RecordBatch, _, gi, n int, reason string) {
			g.deadLetterTriggers(in, trig[gi:gi+n], gi, reason, o)
		})
}

func (g *groupStage) deadLetterTriggers(in arrow.RecordBatch, trig []trigger, first int, reason string, o *outcome) {
	for j, t := range trig {
		one := in.NewSlice(int64(t.row), int64(t.row+1))
		raw, err := rowsAsJSON(one)
		one.Release()
		if err != nil {
			o.err = err
			return
		}
		o.dead = append(o.dead, stream.DeadLetter{Origin: g.origin(), Reason: reason, Raw: raw[0]})
		o.deadAt = append(o.deadAt, int64(first+j))
	}
}

// perRowOutput assembles the output rows of trig: key columns, the rule's
// outputs, event time, partition, sequence, carried columns.
func (g *groupStage) perRowOutput(ctx context.Context, part arrow.RecordBatch, offsets []uint32, res, in arrow.RecordBatch, trig []trigger) (arrow.RecordBatch, error) {
	cctx := compute.WithAllocator(ctx, g.mem)
	cols := make([]arrow.Array, 0, g.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	take := func(col arrow.Array, idx []int32) error {
		ib := array.NewInt32Builder(g.mem)
		ib.AppendValues(idx, nil)
		ia := ib.NewArray()
		ib.Release()
		defer ia.Release()
		t, err := compute.TakeArray(cctx, col, ia)
		if err != nil {
			return fmt.Errorf("rule %s: output: %w", g.mod.Manifest.Name, err)
		}
		cols = append(cols, t)
		return nil
	}
	firstRows := make([]int32, len(offsets)-1)
	for i, off := range offsets[:len(offsets)-1] {
		firstRows[i] = int32(off)
	}
	for _, k := range g.keys {
		if err := take(part.Column(k), firstRows); err != nil {
			return nil, err
		}
	}
	for _, c := range res.Columns() {
		c.Retain()
		cols = append(cols, c)
	}
	rows := make([]int32, len(trig))
	pb := array.NewInt32Builder(g.mem)
	sb := array.NewInt64Builder(g.mem)
	for i, t := range trig {
		rows[i] = int32(t.row)
		pb.Append(int32(t.entry.Partition))
		sb.Append(int64(t.entry.Seq))
	}
	if err := take(in.Column(g.perRow.order), rows); err != nil {
		pb.Release()
		sb.Release()
		return nil, err
	}
	cols = append(cols, pb.NewArray(), sb.NewArray())
	pb.Release()
	sb.Release()
	for _, c := range g.perRow.carry {
		if err := take(in.Column(c), rows); err != nil {
			return nil, err
		}
	}
	return array.NewRecordBatch(g.schema, cols, res.NumRows()), nil
}

// checkEmit refuses emit = "at_end" behind an unbounded source: the end
// it waits for never comes.
func (p *Plan) checkEmit(r *config.Rule, key string) error {
	if r.Emit != config.EmitAtEnd {
		return nil
	}
	if src := p.unboundedUpstream(r.Input, map[string]bool{}); src != "" {
		return config.Errors{{Pos: r.EmitPos, Key: key + ".emit",
			Msg: fmt.Sprintf("emit = %q waits for the end of the input, but source %q is unbounded (it reads until stopped): set emit = %q", config.EmitAtEnd, src, config.EmitPerRow)}}
	}
	return nil
}

// unboundedUpstream returns an unbounded source upstream of the stage
// name, or "".
func (p *Plan) unboundedUpstream(name string, seen map[string]bool) string {
	if seen[name] {
		return ""
	}
	seen[name] = true
	if s := p.sources[name]; s != nil {
		if s.src.Spec().Unbounded {
			return name
		}
		return ""
	}
	for _, in := range p.cfg.Inputs(name) {
		if src := p.unboundedUpstream(in, seen); src != "" {
			return src
		}
	}
	return ""
}
