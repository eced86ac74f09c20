package vigie

import (
	"errors"
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
				greet.Set(r, "hi "+name.Value(r))
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
			if len(b) != 10_000+i || &b[0] == nil {
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
