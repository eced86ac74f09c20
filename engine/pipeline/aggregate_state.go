package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// The open windows of an aggregate stage at a checkpoint. A continuous
// run with a state_dir writes, at each checkpoint's quiescent cut, one
// file per aggregate stage, state_dir/aggregates/<stage>.<checkpoint>.gob,
// before the checkpoint commits; the checkpoint record names it, and the
// files of older checkpoints are removed once it has committed. A restart
// restores the windows of the checkpoint it resumes from, so the rows read
// before the cut still count in the windows open at the crash.

// aggStateVersion is the format of the files; a file of another version,
// or of a stage whose definition changed, is refused.
const aggStateVersion = 1

func init() {
	// Key values are held as Go values (goValue); gob sends the named
	// ones only once registered.
	gob.Register(arrow.Date32(0))
	gob.Register(arrow.Timestamp(0))
}

type aggSnapshot struct {
	Version    int
	Definition string // the stage's configuration, see definition
	MaxEvent   int64
	Seen       bool
	Closed     int64
	Windows    []aggWindowSnap
	// Running and RunStart: the year to date of cumulative windows.
	Running    []aggCellSnap
	HasRunning bool
	RunStart   int64
}

type aggWindowSnap struct {
	Start, End int64
	Week       int32
	Cells      []aggCellSnap
}

type aggCellSnap struct {
	Keys     []any
	Rows     int64
	Subjects []string
	Meas     []aggAccSnap
}

type aggAccSnap struct {
	N             int64
	Sum, Min, Max float64
	Distinct      []string
	HasDistinct   bool
	Values        []float64
}

// definition is what the state depends on: a checkpoint's windows are
// restored only into the same keys, window and measures.
func (s *aggregateStage) definition() string {
	var ms []string
	for _, m := range s.cfg.Measures {
		ms = append(ms, fmt.Sprintf("%s=%s(%s,%g)", m.Name, m.Op, m.Column, m.Quantile))
	}
	return fmt.Sprintf("group_by=%q time_column=%q window=%q slide=%q cumulative=%v timezone=%s subject=%q measures=%q",
		s.cfg.GroupBy, s.cfg.TimeColumn, s.cfg.Window, s.cfg.Slide, s.cfg.Cumulative, s.timeLoc, s.cfg.Subject, ms)
}

func setKeys(m map[string]struct{}) []string {
	return slices.Sorted(maps.Keys(m))
}

func keySet(l []string) map[string]struct{} {
	m := make(map[string]struct{}, len(l))
	for _, k := range l {
		m[k] = struct{}{}
	}
	return m
}

// snapshot encodes the open windows. It runs at a checkpoint's quiescent
// cut, when the stage waits for its next batch.
func (s *aggregateStage) snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := aggSnapshot{Version: aggStateVersion, Definition: s.definition(), MaxEvent: s.maxEvent, Seen: s.seen, Closed: s.closed}
	for _, start := range slices.Sorted(maps.Keys(s.windows)) {
		w := s.windows[start]
		ws := aggWindowSnap{Start: w.start, End: w.end, Week: w.week}
		ws.Cells = cellSnaps(w.cells)
		snap.Windows = append(snap.Windows, ws)
	}
	if s.running != nil {
		snap.Running, snap.HasRunning, snap.RunStart = cellSnaps(s.running), true, s.runStart
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&snap); err != nil {
		return nil, fmt.Errorf("encode the open windows of aggregate %q: %w", s.cfg.Name, err)
	}
	return b.Bytes(), nil
}

// cellSnaps encodes cells, in key order.
func cellSnaps(cells map[string]*aggCell) []aggCellSnap {
	var out []aggCellSnap
	for _, k := range slices.Sorted(maps.Keys(cells)) {
		c := cells[k]
		cs := aggCellSnap{Keys: c.keys, Rows: c.rows, Subjects: setKeys(c.subjects)}
		for _, a := range c.meas {
			cs.Meas = append(cs.Meas, aggAccSnap{N: a.n, Sum: a.sum, Min: a.min, Max: a.max,
				Distinct: setKeys(a.distinct), HasDistinct: a.distinct != nil, Values: a.values})
		}
		out = append(out, cs)
	}
	return out
}

// cells decodes cells encoded by cellSnaps, by their key.
func (s *aggregateStage) cells(snaps []aggCellSnap) (map[string]*aggCell, error) {
	out := map[string]*aggCell{}
	var key []byte
	for _, cs := range snaps {
		c := &aggCell{keys: cs.Keys, rows: cs.Rows}
		if s.subject >= 0 {
			c.subjects = keySet(cs.Subjects)
		}
		for _, a := range cs.Meas {
			acc := aggAcc{n: a.N, sum: a.Sum, min: a.Min, max: a.Max, values: a.Values}
			if a.HasDistinct {
				acc.distinct = keySet(a.Distinct)
			}
			c.meas = append(c.meas, acc)
		}
		if len(c.meas) != len(s.measCols) || len(c.keys) != len(s.keys) {
			return nil, fmt.Errorf("aggregate %q: a restored cell has %d keys and %d measures, want %d and %d", s.cfg.Name, len(c.keys), len(c.meas), len(s.keys), len(s.measCols))
		}
		key = goKey(key[:0], c.keys)
		out[string(key)] = c
	}
	return out, nil
}

// restoreSnapshot replaces the open windows with those of b.
func (s *aggregateStage) restoreSnapshot(b []byte) error {
	var snap aggSnapshot
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&snap); err != nil {
		return fmt.Errorf("decode the open windows of aggregate %q: %w", s.cfg.Name, err)
	}
	if snap.Version != aggStateVersion {
		return fmt.Errorf("aggregate %q: open windows of format %d, this engine reads %d", s.cfg.Name, snap.Version, aggStateVersion)
	}
	if d := s.definition(); snap.Definition != d {
		return fmt.Errorf("aggregate %q changed since the checkpoint (then %s, now %s): its open windows cannot be restored; remove the state_dir to start again", s.cfg.Name, snap.Definition, d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxEvent, s.seen, s.closed = snap.MaxEvent, snap.Seen, snap.Closed
	s.windows = map[int64]*aggWindow{}
	for _, ws := range snap.Windows {
		cells, err := s.cells(ws.Cells)
		if err != nil {
			return err
		}
		s.windows[ws.Start] = &aggWindow{start: ws.Start, end: ws.End, week: ws.Week, cells: cells}
	}
	s.running, s.runStart = nil, snap.RunStart
	if snap.HasRunning {
		running, err := s.cells(snap.Running)
		if err != nil {
			return err
		}
		s.running = running
	}
	s.peak = max(s.peak, len(s.windows))
	return nil
}

// goKey encodes key values as cellKey encodes the row they came from.
func goKey(b []byte, keys []any) []byte {
	for _, v := range keys {
		if v == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = appendGoKey(b, v)
	}
	return b
}

// aggregateStates saves and restores the open windows of a run's
// aggregate stages at its checkpoints (see above).
type aggregateStates struct {
	dir    string // state_dir/aggregates
	stages []*aggregateStage
}

func (a *aggregateStates) file(stage string, id uint64) string {
	return filepath.Join(a.dir, stage+"."+strconv.FormatUint(id, 10)+".gob")
}

// save writes every stage's open windows for checkpoint id and returns the
// file names (relative to dir) the checkpoint record keeps.
func (a *aggregateStates) save(id uint64) (map[string]string, error) {
	if a == nil || len(a.stages) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return nil, fmt.Errorf("aggregate state: %w", err)
	}
	out := map[string]string{}
	for _, s := range a.stages {
		b, err := s.snapshot()
		if err != nil {
			return nil, err
		}
		path := a.file(s.cfg.Name, id)
		if err := writeSynced(path, b); err != nil {
			return nil, fmt.Errorf("aggregate state: %w", err)
		}
		out[s.cfg.Name] = filepath.Base(path)
	}
	return out, nil
}

// prune removes the files of checkpoints other than id (older ones, and
// those of a checkpoint that never committed).
func (a *aggregateStates) prune(id uint64) error {
	if a == nil || len(a.stages) == 0 {
		return nil
	}
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return fmt.Errorf("aggregate state: %w", err)
	}
	keep := map[string]bool{}
	for _, s := range a.stages {
		keep[filepath.Base(a.file(s.cfg.Name, id))] = true
	}
	var errs []error
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".gob") && !keep[e.Name()] {
			if err := os.Remove(filepath.Join(a.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// restore loads each stage's windows from the files a checkpoint record
// names. A stage the record does not name starts empty (a checkpoint of a
// version without aggregate state, or a stage added since).
func (a *aggregateStates) restore(files map[string]string) error {
	if a == nil {
		return nil
	}
	for _, s := range a.stages {
		name, ok := files[s.cfg.Name]
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.dir, filepath.Base(name)))
		if err != nil {
			return fmt.Errorf("aggregate %q: read its open windows: %w", s.cfg.Name, err)
		}
		if err := s.restoreSnapshot(b); err != nil {
			return err
		}
	}
	return nil
}

// writeSynced writes b to path through a temporary file, synced, then
// renamed: a crash leaves the old file or the new one.
func writeSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// appendGoKey appends v as appendKey appends the value it came from.
func appendGoKey(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	case int32:
		return binary.LittleEndian.AppendUint32(b, uint32(v))
	case int64:
		return binary.LittleEndian.AppendUint64(b, uint64(v))
	case arrow.Date32:
		return binary.LittleEndian.AppendUint32(b, uint32(v))
	case arrow.Timestamp:
		return binary.LittleEndian.AppendUint64(b, uint64(v))
	case bool:
		if v {
			return append(b, 1)
		}
		return append(b, 0)
	}
	return b
}
