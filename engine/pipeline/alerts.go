package pipeline

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/state"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// Values of the change column of an alerts stage.
const (
	ChangeOpened  = "opened"
	ChangeUpdated = "updated"
	ChangeCleared = "cleared"
)

// alertsStage turns the rows of a group rule that lists each key's open
// alerts ("id:CODE:opening day;...") into one row per change since what
// it last announced for that key: a new id is opened, a known id whose
// update_on columns changed is updated, an announced id no longer open is
// cleared. What it announced is kept per key in the state store
// (state.Values); the writes stay pending until Plan.Run commits them,
// after the sinks have committed (see RATIONALE.md, "Alert changes").
//
// A key absent from the input keeps its alerts: with rescore = "touched"
// only the keys that received rows are evaluated, and silence is not a
// clearance.
type alertsStage struct {
	cfg    *config.Alerts
	schema *arrow.Schema // output
	mem    memory.Allocator
	store  func() (*state.Store, bool, error)

	keys                           []int // key columns in the input
	open, codes, reason, risk, lvl int   // input columns
	updateOn                       []int
	provenance                     []string // rule name, version, sha256; nil when unknown

	// With a group rule of emit = "per_row" upstream: the input's arrival
	// partition and sequence columns (what was announced is then versioned
	// by arrival, state.Versions, and written as it goes), and the columns
	// carried to the output (event_time, arrival_partition, arrival_seq,
	// the rule's carry columns); part < 0 otherwise.
	part, seq int
	carried   []int

	mu     sync.Mutex
	values *state.Values // set by Run, committed or discarded by Plan.Run
}

// announced is what the stage last announced of one alert.
type announced struct {
	ID     string   `json:"id"`
	Code   string   `json:"code"`
	Update []string `json:"update"` // values of the update_on columns
}

// newAlertsStage checks the columns a names in in, the output of a group
// rule keyed by groupBy; path is the table's key path ("alerts[0]").
func newAlertsStage(a *config.Alerts, path string, groupBy []string, in *arrow.Schema, mem memory.Allocator) (*alertsStage, error) {
	s := &alertsStage{cfg: a, mem: mem, part: -1, seq: -1}
	var errs config.Errors
	col := func(key, name string, want ...arrow.DataType) int {
		at := a.At(key)
		key = path + "." + key
		idx := in.FieldIndices(name)
		if len(idx) != 1 {
			errs = append(errs, &config.Error{Pos: at, Key: key, Msg: fmt.Sprintf("column %q is not in the output of %q (columns: %s)", name, a.Input, fieldList(in))})
			return -1
		}
		if t := in.Field(idx[0]).Type; len(want) > 0 && !slices.ContainsFunc(want, func(w arrow.DataType) bool { return arrow.TypeEqual(w, t) }) {
			names := make([]string, len(want))
			for i, w := range want {
				names[i] = w.String()
			}
			errs = append(errs, &config.Error{Pos: at, Key: key, Msg: fmt.Sprintf("column %q of %q has type %s; expected %s", name, a.Input, t, strings.Join(names, " or "))})
		}
		return idx[0]
	}
	for _, k := range groupBy {
		s.keys = append(s.keys, col("input", k))
	}
	s.open = col("open", a.Open, arrow.BinaryTypes.String)
	s.codes = col("reason_codes", a.ReasonCodes, arrow.BinaryTypes.String)
	s.reason = col("reason", a.Reason, arrow.BinaryTypes.String)
	s.risk = col("risk", a.Risk, arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Float32)
	s.lvl = col("level", a.Level, arrow.BinaryTypes.String)
	for _, u := range a.UpdateOn {
		s.updateOn = append(s.updateOn, col("update_on", u))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	fields := []arrow.Field{
		{Name: "alert_id", Type: arrow.BinaryTypes.String},
		{Name: "change", Type: arrow.BinaryTypes.String},
	}
	for _, k := range s.keys {
		fields = append(fields, in.Field(k))
	}
	fields = append(fields,
		arrow.Field{Name: "code", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "reason_codes", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "reason", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "risk", Type: in.Field(s.risk).Type, Nullable: true},
		arrow.Field{Name: "alert_level", Type: arrow.BinaryTypes.String, Nullable: true},
	)
	pi, si, ei := in.FieldIndices(ColArrivalPartition), in.FieldIndices(ColArrivalSeq), in.FieldIndices(ColEventTime)
	if len(pi) == 1 && len(si) == 1 && len(ei) == 1 && in.Field(pi[0]).Type.ID() == arrow.INT32 && in.Field(si[0]).Type.ID() == arrow.INT64 {
		s.part, s.seq = pi[0], si[0]
		for c := ei[0]; c < in.NumFields(); c++ {
			s.carried = append(s.carried, c)
			fields = append(fields, in.Field(c))
		}
	}
	md := in.Metadata()
	name, okName := md.GetValue(wasmhost.MetaRuleName)
	version, _ := md.GetValue(wasmhost.MetaRuleVersion)
	sum, _ := md.GetValue(wasmhost.MetaRuleSHA256)
	if okName {
		s.provenance = []string{name, version, sum}
		fields = append(fields,
			arrow.Field{Name: wasmhost.ColRuleName, Type: arrow.BinaryTypes.String},
			arrow.Field{Name: wasmhost.ColRuleVersion, Type: arrow.BinaryTypes.String},
			arrow.Field{Name: wasmhost.ColRuleSHA256, Type: arrow.BinaryTypes.String},
		)
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.Name] {
			return nil, config.Errors{{Pos: a.At("input"), Key: path + ".input", Msg: fmt.Sprintf("group_by column %q of %q has the name of an output column of the alerts stage", f.Name, a.Input)}}
		}
		seen[f.Name] = true
	}
	s.schema = arrow.NewSchema(fields, &md)
	return s, nil
}

// parseOpen reads "id:CODE:opening day;..." into (id, code) pairs.
func parseOpen(s string) ([][2]string, error) {
	var out [][2]string
	for item := range strings.SplitSeq(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.SplitN(item, ":", 3)
		if len(parts) < 2 || parts[0] == "" {
			return nil, fmt.Errorf("open alert %q is not id:CODE:opening day", item)
		}
		out = append(out, [2]string{parts[0], parts[1]})
	}
	return out, nil
}

// rawRow is row i's key columns and open alerts as JSON, for a dead letter.
func (s *alertsStage) rawRow(rec arrow.RecordBatch, i int) string {
	m := map[string]string{}
	for _, c := range append(slices.Clone(s.keys), s.open) {
		m[rec.Schema().Field(c).Name] = strAt(rec.Column(c), i)
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return string(b)
}

// keyBytes encodes the key columns of row i.
func keyBytes(rec arrow.RecordBatch, keys []int, i int) []byte {
	var b []byte
	for _, k := range keys {
		c := rec.Column(k)
		if c.IsNull(i) {
			b = append(b, 0)
			continue
		}
		v := c.ValueStr(i)
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func strAt(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return ""
	}
	return a.ValueStr(i)
}

func (s *alertsStage) Run(ctx context.Context, st *stream.Stage, ins []*stream.Inbox, out *stream.Outbox) error {
	store, _, err := s.store()
	if err != nil {
		return err
	}
	var ann announcedStore
	if s.part >= 0 {
		ann = &versionedAnnounced{s: s, vs: store.Versions(s.cfg.Name)}
	} else {
		vals := store.Values(s.cfg.Name)
		s.mu.Lock()
		s.values = vals
		s.mu.Unlock()
		ann = valuesAnnounced{vals}
	}
	in := ins[0]
	for {
		rec, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := s.diff(ctx, st, ann, rec)
		rec.Release()
		if err != nil {
			return err
		}
		if res == nil {
			continue
		}
		if err := out.Send(ctx, res); err != nil {
			return err
		}
	}
}

// diff compares each row's open alerts with what was announced for its
// key, records the new announced state (pending) and returns the changes,
// or nil when there are none.
func (s *alertsStage) diff(ctx context.Context, st *stream.Stage, vals announcedStore, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	var (
		rows         []int32 // input row of each change
		ids, changes []string
		codes        []string
		upd          = make([]string, len(s.updateOn))
		openCol      = rec.Column(s.open)
	)
	for i := range int(rec.NumRows()) {
		key := keyBytes(rec, s.keys, i)
		open, err := parseOpen(strAt(openCol, i))
		if err != nil {
			if err := st.DeadLetter(stream.DeadLetter{Origin: s.cfg.Input, Column: s.cfg.Open, Reason: err.Error(), Raw: s.rawRow(rec, i)}); err != nil {
				return nil, err
			}
			continue
		}
		for j, c := range s.updateOn {
			upd[j] = strAt(rec.Column(c), i)
		}
		var prev []announced
		raw, ok, err := vals.get(rec, i, key)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := json.Unmarshal(raw, &prev); err != nil {
				return nil, fmt.Errorf("alerts %q: announced state of a key: %w", s.cfg.Name, err)
			}
		}
		was := make(map[string]announced, len(prev))
		for _, a := range prev {
			was[a.ID] = a
		}
		now := make([]announced, 0, len(open))
		isOpen := make(map[string]bool, len(open))
		changed := false
		for _, o := range open {
			if isOpen[o[0]] {
				continue
			}
			isOpen[o[0]] = true
			a := announced{ID: o[0], Code: o[1], Update: slices.Clone(upd)}
			now = append(now, a)
			p, known := was[a.ID]
			switch {
			case !known:
				ids, changes, codes, rows = append(ids, a.ID), append(changes, ChangeOpened), append(codes, a.Code), append(rows, int32(i))
				changed = true
			case !slices.Equal(p.Update, a.Update):
				ids, changes, codes, rows = append(ids, a.ID), append(changes, ChangeUpdated), append(codes, a.Code), append(rows, int32(i))
				changed = true
			}
		}
		for _, p := range prev {
			if !isOpen[p.ID] {
				ids, changes, codes, rows = append(ids, p.ID), append(changes, ChangeCleared), append(codes, p.Code), append(rows, int32(i))
				changed = true
			}
		}
		switch {
		case !changed:
		case len(now) == 0:
			err = vals.put(rec, i, key, nil)
		default:
			var b []byte
			b, err = json.Marshal(now)
			if err == nil {
				err = vals.put(rec, i, key, b)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("alerts %q: %w", s.cfg.Name, err)
		}
	}
	if err := vals.flush(); err != nil {
		return nil, fmt.Errorf("alerts %q: %w", s.cfg.Name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return s.build(ctx, rec, rows, ids, changes, codes)
}

// build assembles the change rows: taken input columns and the new ones.
func (s *alertsStage) build(ctx context.Context, rec arrow.RecordBatch, rows []int32, ids, changes, codes []string) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, 0, s.schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	strs := func(vs []string) arrow.Array {
		b := array.NewStringBuilder(s.mem)
		defer b.Release()
		b.AppendValues(vs, nil)
		return b.NewArray()
	}
	ib := array.NewInt32Builder(s.mem)
	ib.AppendValues(rows, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	cctx := compute.WithAllocator(ctx, s.mem)
	take := func(c int) error {
		t, err := compute.TakeArray(cctx, rec.Column(c), idx)
		if err != nil {
			return fmt.Errorf("alerts %q: %w", s.cfg.Name, err)
		}
		cols = append(cols, t)
		return nil
	}
	cols = append(cols, strs(ids), strs(changes))
	for _, k := range s.keys {
		if err := take(k); err != nil {
			return nil, err
		}
	}
	cols = append(cols, strs(codes))
	for _, c := range []int{s.codes, s.reason, s.risk, s.lvl} {
		if err := take(c); err != nil {
			return nil, err
		}
	}
	for _, c := range s.carried {
		if err := take(c); err != nil {
			return nil, err
		}
	}
	for _, v := range s.provenance {
		cols = append(cols, strs(slices.Repeat([]string{v}, len(rows))))
	}
	return array.NewRecordBatch(s.schema, cols, int64(len(rows))), nil
}

// commit makes what the run announced durable (after the sinks committed),
// or drops it when the run failed.
func (s *alertsStage) commit(ok bool) error {
	s.mu.Lock()
	v := s.values
	s.values = nil
	s.mu.Unlock()
	if v == nil {
		return nil
	}
	if !ok {
		v.Discard()
		return nil
	}
	if err := v.Commit(); err != nil {
		return fmt.Errorf("alerts %q: keep announced alerts: %w", s.cfg.Name, err)
	}
	return nil
}

// announcedStore is where an alerts stage keeps what it announced per key:
// one value per key (batch input), or versions by arrival (per-row input).
type announcedStore interface {
	// get returns what was announced for key before row i of rec.
	get(rec arrow.RecordBatch, i int, key []byte) ([]byte, bool, error)
	// put records what is announced for key after row i (nil: nothing).
	put(rec arrow.RecordBatch, i int, key, val []byte) error
	// flush ends a batch.
	flush() error
}

// valuesAnnounced keeps one pending value per key, committed by Plan.Run
// after the sinks (batch runs).
type valuesAnnounced struct{ v *state.Values }

func (a valuesAnnounced) get(_ arrow.RecordBatch, _ int, key []byte) ([]byte, bool, error) {
	return a.v.Get(key)
}

func (a valuesAnnounced) put(_ arrow.RecordBatch, _ int, key, val []byte) error {
	if val == nil {
		return a.v.Delete(key)
	}
	return a.v.Set(key, val)
}

func (valuesAnnounced) flush() error { return nil }

// versionedAnnounced keeps what was announced per source partition and
// key, versioned by the arrival sequence of the row that changed it, so
// that a replay of rows (after a crash) sees what was announced before
// each of them and writes the same versions again (a no-op), and a
// rollback (state.Store.DeleteAbove) forgets what later rows announced.
// Each batch's versions are written at its end, not synced: durability is
// the checkpoint's (docs/design/streaming.md, sections 4-6).
type versionedAnnounced struct {
	s       *alertsStage
	vs      *state.Versions
	pending []state.VersionWrite
	latest  map[string]int // p|key -> index in pending of its latest version
}

func (a *versionedAnnounced) at(rec arrow.RecordBatch, i int) (uint32, uint64) {
	p := rec.Column(a.s.part).(*array.Int32).Value(i)
	q := rec.Column(a.s.seq).(*array.Int64).Value(i)
	return uint32(p), uint64(q)
}

func (a *versionedAnnounced) get(rec arrow.RecordBatch, i int, key []byte) ([]byte, bool, error) {
	p, seq := a.at(rec, i)
	if j, ok := a.latest[string(binary.BigEndian.AppendUint32(nil, p))+string(key)]; ok && a.pending[j].Seq < seq {
		return a.pending[j].Value, true, nil
	}
	return a.vs.Before(p, key, seq)
}

func (a *versionedAnnounced) put(rec arrow.RecordBatch, i int, key, val []byte) error {
	p, seq := a.at(rec, i)
	if val == nil {
		val = []byte("[]")
	}
	if a.latest == nil {
		a.latest = map[string]int{}
	}
	a.latest[string(binary.BigEndian.AppendUint32(nil, p))+string(key)] = len(a.pending)
	a.pending = append(a.pending, state.VersionWrite{Partition: p, Key: slices.Clone(key), Seq: seq, Value: val})
	return nil
}

func (a *versionedAnnounced) flush() error {
	err := a.vs.Commit(a.pending)
	a.pending, a.latest = nil, nil
	return err
}
