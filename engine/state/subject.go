package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/cockroachdb/pebble"
)

// What the store keeps about one key (a student), for the rights of the
// person it is about: Export gives everything, Erase removes it. A key is
// matched against the first key column of each stage's timelines
// (group_by) and of each stage's values (the alerts stage), so that a
// student's rows are found in every stage grouped by student first.

// Record is one thing the store keeps about a key.
type Record struct {
	Stage string `json:"stage"`
	// Kind is "timeline" (a row of a group rule's kept timeline) or
	// "value" (what a stage such as alerts recorded for the key).
	Kind string `json:"kind"`
	// Row is a timeline row, column by column.
	Row map[string]any `json:"row,omitempty"`
	// Value is a recorded value, as text.
	Value string `json:"value,omitempty"`
}

// namespace reads a stage namespace (uvarint length, name) at the start
// of b, returning the name and the length read; n <= 0 when b holds none.
func namespace(b []byte) (string, int) {
	l, w := binary.Uvarint(b)
	if w <= 0 || w+int(l) > len(b) {
		return "", 0
	}
	return string(b[w : w+int(l)]), w + int(l)
}

// timelineSpec is a stage's timelines as recorded in its schema
// fingerprint: enough to find and decode its rows without the pipeline.
type timelineSpec struct {
	stage  string
	ns     []byte
	schema *arrow.Schema
	keys   []int
	order  int // -1 for arrival order
}

// timelineSpecs lists the stages that keep timelines.
func (s *Store) timelineSpecs() ([]timelineSpec, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("m"), UpperBound: []byte("n")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []timelineSpec
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[1:]
		stage, n := namespace(k)
		if n <= 0 || string(k[n:]) != "\x00schema" {
			continue
		}
		schema, keys, order, err := parseFingerprint(string(it.Value()))
		if err != nil {
			return nil, fmt.Errorf("state of stage %q: %w", stage, err)
		}
		out = append(out, timelineSpec{stage: stage, ns: append([]byte(nil), k[:n]...), schema: schema, keys: keys, order: order})
	}
	return out, it.Error()
}

// parseFingerprint reads back what fingerprint wrote: the schema, the
// key columns and the order column.
func parseFingerprint(fp string) (*arrow.Schema, []int, int, error) {
	bad := fmt.Errorf("unreadable schema record %q", fp)
	rest, ok := strings.CutPrefix(fp, "columns=")
	i := strings.LastIndex(rest, " keys=[")
	if !ok || i < 0 {
		return nil, nil, 0, bad
	}
	cols, tail := rest[:i], rest[i+len(" keys=["):]
	j := strings.IndexByte(tail, ']')
	if j < 0 {
		return nil, nil, 0, bad
	}
	var keys []int
	for _, f := range strings.Fields(tail[:j]) {
		k, err := strconv.Atoi(f)
		if err != nil {
			return nil, nil, 0, bad
		}
		keys = append(keys, k)
	}
	order, err := strconv.Atoi(strings.TrimPrefix(tail[j+1:], " order="))
	if err != nil {
		return nil, nil, 0, bad
	}
	// Columns are "name:type" joined by commas; a timestamp type holds
	// one too ("timestamp[us, tz=UTC]").
	var parts []string
	for p := range strings.SplitSeq(cols, ",") {
		if len(parts) > 0 && !strings.Contains(p, ":") {
			parts[len(parts)-1] += "," + p
			continue
		}
		parts = append(parts, p)
	}
	var fields []arrow.Field
	for _, p := range parts {
		name, ty, _ := strings.Cut(p, ":")
		t, err := parseType(ty)
		if err != nil {
			return nil, nil, 0, err
		}
		fields = append(fields, arrow.Field{Name: name, Type: t, Nullable: true})
	}
	if order >= len(fields) || slices.ContainsFunc(keys, func(k int) bool { return k < 0 || k >= len(fields) }) {
		return nil, nil, 0, bad
	}
	return arrow.NewSchema(fields, nil), keys, order, nil
}

func parseType(s string) (arrow.DataType, error) {
	switch s {
	case "utf8":
		return arrow.BinaryTypes.String, nil
	case "bool":
		return arrow.FixedWidthTypes.Boolean, nil
	case "int32":
		return arrow.PrimitiveTypes.Int32, nil
	case "int64":
		return arrow.PrimitiveTypes.Int64, nil
	case "float64":
		return arrow.PrimitiveTypes.Float64, nil
	case "date32":
		return arrow.FixedWidthTypes.Date32, nil
	}
	if in, ok := strings.CutPrefix(s, "timestamp["); ok {
		unit, tz, _ := strings.Cut(strings.TrimSuffix(in, "]"), ",")
		tz = strings.TrimPrefix(strings.TrimSpace(tz), "tz=")
		for _, u := range []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond} {
			if u.String() == unit {
				return &arrow.TimestampType{Unit: u, TimeZone: tz}, nil
			}
		}
	}
	return nil, fmt.Errorf("column type %q cannot be read back", s)
}

// timelinePrefix is the prefix of the rows of key in the timelines of t
// whose first key column is a string; nil otherwise.
func (t timelineSpec) prefix(tag byte, key string) []byte {
	if len(t.keys) == 0 || t.schema.Field(t.keys[0]).Type.ID() != arrow.STRING {
		return nil
	}
	p := append([]byte{tag}, t.ns...)
	p = append(p, 1)
	return appendOrderedString(p, key)
}

// valuePrefix is the prefix of a value key whose first key column is key
// (the encoding of engine/pipeline's alerts stage).
func valuePrefix(key string) []byte {
	p := []byte{1}
	p = binary.AppendUvarint(p, uint64(len(key)))
	return append(p, key...)
}

// Export returns every record kept about key.
func (s *Store) Export(key string) ([]Record, error) {
	var out []Record
	err := s.visit(key, func(stage string, spec *timelineSpec, k, v []byte) error {
		if spec == nil {
			out = append(out, Record{Stage: stage, Kind: "value", Value: string(v)})
			return nil
		}
		row, err := decodeRow(spec.schema, v)
		if err != nil {
			return err
		}
		out = append(out, Record{Stage: stage, Kind: "timeline", Row: row})
		return nil
	})
	return out, err
}

// Erase removes every record kept about key (timeline rows, pending
// touches, values) and returns how many records it removed. It is durable
// when it returns.
func (s *Store) Erase(key string) (int, error) {
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	err := s.visit(key, func(_ string, _ *timelineSpec, k, _ []byte) error {
		n++
		return b.Delete(k, nil)
	})
	if err != nil {
		return 0, err
	}
	specs, err := s.timelineSpecs()
	if err != nil {
		return 0, err
	}
	for _, t := range specs {
		if p := t.prefix('t', key); p != nil {
			if err := b.DeleteRange(p, upperBound(p), nil); err != nil {
				return 0, err
			}
		}
	}
	if err := b.Commit(s.writeOpts()); err != nil {
		return 0, fmt.Errorf("state: erase: %w", err)
	}
	return n, nil
}

// visit calls fn for every timeline row and value kept about key; spec is
// nil for a value.
func (s *Store) visit(key string, fn func(stage string, spec *timelineSpec, k, v []byte) error) error {
	specs, err := s.timelineSpecs()
	if err != nil {
		return err
	}
	scan := func(lo, hi []byte, each func(k, v []byte) error) error {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			if err := each(append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)); err != nil {
				return err
			}
		}
		return it.Error()
	}
	for i := range specs {
		t := &specs[i]
		p := t.prefix('r', key)
		if p == nil {
			continue
		}
		if err := scan(p, upperBound(p), func(k, v []byte) error { return fn(t.stage, t, k, v) }); err != nil {
			return err
		}
	}
	want := valuePrefix(key)
	return scan([]byte("v"), []byte("w"), func(k, v []byte) error {
		stage, n := namespace(k[1:])
		if n > 0 && bytes.HasPrefix(k[1+n:], want) {
			return fn(stage, nil, k, v)
		}
		return nil
	})
}

// decodeRow decodes one stored row into column values.
func decodeRow(schema *arrow.Schema, v []byte) (map[string]any, error) {
	codec, err := newRowCodec(schema)
	if err != nil {
		return nil, err
	}
	mem := memory.NewGoAllocator()
	bs := make([]array.Builder, len(codec.types))
	for k, ty := range codec.types {
		bs[k] = array.NewBuilder(mem, ty)
		defer bs[k].Release()
	}
	if err := codec.decode(v, bs); err != nil {
		return nil, err
	}
	row := map[string]any{}
	for k, b := range bs {
		a := b.NewArray()
		if a.IsNull(0) {
			row[schema.Field(k).Name] = nil
		} else {
			row[schema.Field(k).Name] = a.GetOneForMarshal(0)
		}
		a.Release()
	}
	return row, nil
}
