package vigie

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/rules/abi"
)

// fakeMem is a linear memory for native tests: pointers are offsets into
// buf, allocated by a bump allocator (never 0).
type fakeMem struct {
	buf  []byte
	next uint32
}

func newFakeMem() *fakeMem { return &fakeMem{buf: make([]byte, 1<<16), next: 8} }

func (m *fakeMem) bytes(ptr, n uint32) []byte { return m.buf[ptr : ptr+n] }

func (m *fakeMem) alloc(n uint32) uint32 {
	p := m.next
	m.next = (p + n + 7) &^ 7
	return p
}

func (m *fakeMem) u32(ptr uint32) uint32 { return le.Uint32(m.buf[ptr:]) }

// batch writes a descriptor with the given column types and returns its
// pointer; cols holds validity, data, offsets, data_len, null_count.
func (m *fakeMem) batch(n int, types []abi.Type, cols [][5]uint32) uint32 {
	p := m.alloc(uint32(abi.DescriptorSize(len(types))))
	le.PutUint32(m.buf[p:], uint32(n))
	le.PutUint32(m.buf[p+4:], uint32(len(types)))
	for j, t := range types {
		d := m.buf[int(p)+abi.DescriptorSize(j):]
		le.PutUint32(d, uint32(t))
		if cols != nil {
			for k, v := range cols[j] {
				le.PutUint32(d[4+4*k:], v)
			}
		}
	}
	return p
}

func (m *fakeMem) put(b []byte) uint32 {
	p := m.alloc(uint32(len(b)))
	copy(m.buf[p:], b)
	return p
}

const testManifest = `{"abi":1,"name":"t","version":"1","kind":"map",
 "inputs":[{"name":"x","type":"int32"},{"name":"name","type":"utf8"}],
 "outputs":[{"name":"half","type":"float64"},{"name":"greeting","type":"utf8"}]}`

func TestEvalCycle(t *testing.T) {
	g, err := newGuest(Rule{Manifest: testManifest, Eval: func(in *Input, out *Output) error {
		x, name := in.Int32(in.Index("x")), in.Utf8(in.Index("name"))
		half, greet := out.Float64(0), out.Utf8(out.Index("greeting"))
		for r := range in.Len() {
			if !x.IsNull(r) {
				half.Set(r, float64(x.Value(r))/2)
			}
			if !name.IsNull(r) && name.Value(r) != "" {
				if string(name.Bytes(r)) != name.Value(r) {
					return fmt.Errorf("row %d: Bytes %q, Value %q", r, name.Bytes(r), name.Value(r))
				}
				greet.Set(r, "hi "+string(name.Bytes(r)))
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMem()
	// 3 rows: x = 4, null, 9; name = "ana", "", null.
	xs := m.put([]byte{4, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0})
	xv := m.put([]byte{0b101})
	offs := m.put([]byte{0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0})
	strs := m.put([]byte("ana"))
	sv := m.put([]byte{0b011})
	in := m.batch(3, []abi.Type{abi.Int32, abi.Utf8}, [][5]uint32{{xv, xs, 0, 12, 1}, {sv, strs, offs, 3, 1}})
	out := m.batch(3, []abi.Type{abi.Float64, abi.Utf8}, nil)
	if err := g.eval(m, in, out); err != nil {
		t.Fatal(err)
	}
	col := func(j int, field int) uint32 { return m.u32(out + uint32(abi.DescriptorSize(j)+field)) }
	// half: 2, null, 4.5
	if v := m.bytes(col(0, abi.ColValidity), 1)[0] & 7; v != 0b101 || col(0, abi.ColNullCount) != 1 {
		t.Errorf("half validity %03b nulls %d", v, col(0, abi.ColNullCount))
	}
	half := (&column{data: m.bytes(col(0, abi.ColData), 24)})
	if getFloat64(half, 0) != 2 || getFloat64(half, 2) != 4.5 || col(0, abi.ColDataLen) != 24 {
		t.Errorf("half = %v, %v", getFloat64(half, 0), getFloat64(half, 2))
	}
	// greeting: "hi ana", null, null
	if col(1, abi.ColNullCount) != 2 || col(1, abi.ColDataLen) != 6 {
		t.Errorf("greeting nulls %d data_len %d", col(1, abi.ColNullCount), col(1, abi.ColDataLen))
	}
	g1 := &column{n: 3, data: m.bytes(col(1, abi.ColData), 6), offsets: m.bytes(col(1, abi.ColOffsets), 16)}
	if s := getString(g1, 0); s != "hi ana" {
		t.Errorf("greeting[0] = %q", s)
	}
	if getString(g1, 1) != "" || getString(g1, 2) != "" {
		t.Errorf("null greetings are not empty")
	}
}

func TestEvalErrors(t *testing.T) {
	tests := []struct {
		name string
		eval func(in *Input, out *Output) error
		want string
	}{
		{"returned error", func(*Input, *Output) error { return errors.New("boom") }, "boom"},
		{"Fail", func(*Input, *Output) error { Fail("failed"); return nil }, "failed"},
		{"wrong accessor", func(in *Input, _ *Output) error { in.Float64(0); return nil }, `panic: input "x" is int32, not float64`},
		{"utf8 out of order", func(_ *Input, out *Output) error {
			out.Utf8(1).Set(0, "a")
			out.Utf8(1).Set(0, "b")
			return nil
		}, "row 0 out of order"},
		{"utf8 past the end", func(_ *Input, out *Output) error { out.Utf8(1).Set(1, "a"); return nil }, "row 1 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := newGuest(Rule{Manifest: testManifest, Eval: tt.eval})
			if err != nil {
				t.Fatal(err)
			}
			registered = g
			defer func() { registered = nil }()
			m := newFakeMem()
			in := m.batch(1, []abi.Type{abi.Int32, abi.Utf8}, [][5]uint32{{0, m.put(make([]byte, 4)), 0, 4, 0}, {0, 0, m.put(make([]byte, 8)), 0, 0}})
			out := m.batch(1, []abi.Type{abi.Float64, abi.Utf8}, nil)
			err = g.eval(m, in, out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParams(t *testing.T) {
	p, err := parseParams([]byte(`{"threshold": 1, "n": 7, "on": true, "label": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Float64("threshold") != 1 || p.Int32("n") != 7 || !p.Bool("on") || p.String("label") != "x" || p.Has("zz") {
		t.Errorf("params %+v", p)
	}
	g, _ := newGuest(Rule{Manifest: testManifest, Eval: func(*Input, *Output) error { return nil },
		Init: func(p Params) error { p.Float64("missing"); return nil }})
	if err := g.init([]byte(`{}`)); err == nil || !strings.Contains(err.Error(), `param "missing" is not a number`) {
		t.Errorf("init err = %v", err)
	}
}

func TestArena(t *testing.T) {
	var a arena
	for cycle := range 4 {
		for i := range 50 {
			b := a.alloc(10_000 + i)
			if len(b) != 10_000+i {
				t.Fatal("bad allocation")
			}
			for _, x := range b {
				if x != 0 {
					t.Fatalf("cycle %d: allocation not zeroed", cycle)
				}
			}
			for k := range b {
				b[k] = 0xff
			}
		}
		if cycle > 0 && len(a.chunks) != 1 {
			t.Errorf("cycle %d: %d chunks, want 1 after a reset", cycle, len(a.chunks))
		}
		a.reset()
	}
}

const groupManifest = `{"abi":1,"name":"mean_score","version":"1","kind":"group",
 "inputs":[{"name":"score","type":"float64"}],
 "outputs":[{"name":"mean","type":"float64"},{"name":"n","type":"int32"}]}`

// meanScore is an example group rule: the mean of the non-null scores of
// each group (null when there are none) and their count.
func meanScore(in *Input, out *Output) error {
	score := in.Float64(0)
	vals := score.Values()
	mean, count := out.Float64(0), out.Int32(1)
	for g := range in.NumGroups() {
		start, end := in.GroupBounds(g)
		sum, n := 0.0, int32(0)
		for r := start; r < end; r++ {
			if !score.IsNull(r) {
				sum += vals[r]
				n++
			}
		}
		count.Set(g, n)
		if n > 0 {
			mean.Set(g, sum/float64(n))
		}
	}
	return nil
}

func TestGroupEval(t *testing.T) {
	g, err := newGuest(Rule{Manifest: groupManifest, Eval: meanScore})
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMem()
	// 5 rows in 3 groups: [10, 20], [], [null, 4, 8].
	scores := make([]byte, 40)
	for i, v := range []float64{10, 20, 0, 4, 8} {
		le.PutUint64(scores[8*i:], math.Float64bits(v))
	}
	data, valid := m.put(scores), m.put([]byte{0b11011})
	groups := m.put([]byte{0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0})
	in := m.batch(5, []abi.Type{abi.Float64}, [][5]uint32{{valid, data, 0, 40, 1}})
	le.PutUint32(m.buf[in+abi.BatchNumGroups:], 3)
	le.PutUint32(m.buf[in+abi.BatchGroupOffsets:], groups)
	out := m.batch(3, []abi.Type{abi.Float64, abi.Int32}, nil)
	if err := g.eval(m, in, out); err != nil {
		t.Fatal(err)
	}
	col := func(j int, field int) uint32 { return m.u32(out + uint32(abi.DescriptorSize(j)+field)) }
	means := &column{typ: abi.Float64, n: 3, data: m.bytes(col(0, abi.ColData), 24)}
	if got := values[float64](means); got[0] != 15 || got[2] != 6 {
		t.Errorf("means = %v, want [15 _ 6]", got)
	}
	if v := m.bytes(col(0, abi.ColValidity), 1)[0] & 7; v != 0b101 || col(0, abi.ColNullCount) != 1 {
		t.Errorf("mean validity %03b nulls %d, want 101 and 1", v, col(0, abi.ColNullCount))
	}
	counts := &column{typ: abi.Int32, n: 3, data: m.bytes(col(1, abi.ColData), 12)}
	if got := values[int32](counts); got[0] != 2 || got[1] != 0 || got[2] != 2 {
		t.Errorf("counts = %v, want [2 0 2]", got)
	}
	if col(1, abi.ColValidity) != 0 || col(1, abi.ColNullCount) != 0 {
		t.Errorf("counts have nulls")
	}
}

func TestValuesAndSetAllValid(t *testing.T) {
	g, err := newGuest(Rule{Manifest: testManifest, Eval: func(in *Input, out *Output) error {
		half := out.Float64(0)
		hv := half.Values()
		for r, x := range in.Int32(0).Values() {
			hv[r] = float64(x) / 2
		}
		half.SetAllValid()
		half.SetNull(1)
		func() {
			defer func() { _ = recover() }()
			in.Int32(0).Bytes(0) // panics: not utf8
			t.Error("Bytes of an int32 column did not panic")
		}()
		defer func() { _ = recover() }()
		in.Utf8(1).Values() // panics: no fixed-width values
		t.Error("Values of a utf8 column did not panic")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMem()
	xs := m.put([]byte{4, 0, 0, 0, 6, 0, 0, 0, 9, 0, 0, 0})
	in := m.batch(3, []abi.Type{abi.Int32, abi.Utf8}, [][5]uint32{{0, xs, 0, 12, 0}, {0, 0, m.put(make([]byte, 16)), 0, 0}})
	out := m.batch(3, []abi.Type{abi.Float64, abi.Utf8}, nil)
	if err := g.eval(m, in, out); err != nil {
		t.Fatal(err)
	}
	col := func(j int, field int) uint32 { return m.u32(out + uint32(abi.DescriptorSize(j)+field)) }
	half := &column{typ: abi.Float64, n: 3, data: m.bytes(col(0, abi.ColData), 24)}
	if got := values[float64](half); got[0] != 2 || got[2] != 4.5 {
		t.Errorf("half = %v", got)
	}
	if v := m.bytes(col(0, abi.ColValidity), 1)[0]; v != 0b101 || col(0, abi.ColNullCount) != 1 {
		t.Errorf("half validity %08b nulls %d, want 00000101 and 1", v, col(0, abi.ColNullCount))
	}
}

func TestBits(t *testing.T) {
	const manifest = `{"abi": 1, "name": "bits", "version": "1.0.0", "kind": "map",
	  "inputs": [{"name": "x", "type": "int32"}], "outputs": [{"name": "even", "type": "bool"}, {"name": "half", "type": "float64"}]}`
	g, err := newGuest(Rule{Manifest: manifest, Eval: func(in *Input, out *Output) error {
		even := out.Bool(0)
		bits := even.Bits()
		for r, x := range in.Int32(0).Values() {
			if x%2 == 0 {
				bits[r/8] |= 1 << (r % 8)
			}
		}
		even.SetAllValid()
		even.SetNull(9)
		defer func() { _ = recover() }()
		out.Float64(1).Bits() // panics: not bool
		t.Error("Bits of a float64 column did not panic")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeMem()
	var xs []byte
	for x := range 10 {
		xs = append(xs, byte(x), 0, 0, 0)
	}
	in := m.batch(10, []abi.Type{abi.Int32}, [][5]uint32{{0, m.put(xs), 0, 40, 0}})
	out := m.batch(10, []abi.Type{abi.Bool, abi.Float64}, nil)
	if err := g.eval(m, in, out); err != nil {
		t.Fatal(err)
	}
	col := func(j int, field int) uint32 { return m.u32(out + uint32(abi.DescriptorSize(j)+field)) }
	if got := m.bytes(col(0, abi.ColData), 2); got[0] != 0b01010101 || got[1] != 0b01 {
		t.Errorf("even bits = %08b %08b, want 01010101 00000001", got[0], got[1])
	}
	if v := m.bytes(col(0, abi.ColValidity), 2); v[0] != 0xff || v[1] != 0b01 || col(0, abi.ColNullCount) != 1 {
		t.Errorf("even validity %08b %08b nulls %d, want 11111111 00000001 and 1", v[0], v[1], col(0, abi.ColNullCount))
	}
}
