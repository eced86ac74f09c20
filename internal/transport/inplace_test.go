package transport

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestInPlaceHeadWaitsForRelease: bodies read in place keep their place in
// the ring until released; the head moves past the freed bodies at the
// front only, in ring order, and a body copied out does not let it pass a
// body still held.
func TestInPlaceHeadWaitsForRelease(t *testing.T) {
	w, rd := ringPair(t, 1<<16)
	rd.inPlace = true
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	head := func() uint64 { return atomic.LoadUint64(rd.r.word(hdrHead)) }

	type sent struct {
		off  uint64
		data []byte
	}
	var bodies []sent
	for i := range 4 {
		parts := body(1000, byte(i))
		off, ok := w.write(parts, 1000)
		if !ok {
			t.Fatalf("body %d did not fit", i)
		}
		bodies = append(bodies, sent{off, append(append([]byte(nil), parts[0]...), parts[1]...)})
	}
	var bufs []*memory.Buffer
	for i, b := range bodies[:3] {
		buf, err := rd.read(b.off, 1000, mem)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), b.data) {
			t.Fatalf("body %d: wrong bytes", i)
		}
		bufs = append(bufs, buf)
	}
	if mem.CurrentAlloc() != 0 {
		t.Errorf("bodies read in place allocated %d bytes", mem.CurrentAlloc())
	}
	// The fourth is copied out (as a dictionary is): the head stays.
	copied, err := rd.take(bodies[3].off, 1000, mem, true)
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Release()
	if !bytes.Equal(copied.Bytes(), bodies[3].data) {
		t.Fatal("copied body: wrong bytes")
	}
	if h := head(); h != 0 {
		t.Fatalf("head %d with every body held", h)
	}
	bufs[1].Release()
	if h := head(); h != 0 {
		t.Fatalf("head %d after releasing the second body only", h)
	}
	bufs[0].Release()
	if h, want := head(), bodies[1].off+1000; h != want {
		t.Fatalf("head %d after releasing the first two, want %d", h, want)
	}
	bufs[2].Release()
	if h, want := head(), bodies[3].off+1000; h != want {
		t.Fatalf("head %d after releasing all, want %d (past the copied body)", h, want)
	}
	if n := heldBodies.Load(); n != 0 {
		t.Errorf("%d bodies held", n)
	}
}

// TestInPlaceRingUnmappedAfterLastRelease: a ring closed while a body read
// in place is held stays mapped until that body is released.
func TestInPlaceRingUnmappedAfterLastRelease(t *testing.T) {
	w, rd := ringPair(t, 1<<16)
	rd.inPlace = true
	off, ok := w.write(body(512, 7), 512)
	if !ok {
		t.Fatal("body did not fit")
	}
	buf, err := rd.read(off, 512, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), buf.Bytes()...)
	pool := &ringPool{}
	pool.put(rd.r, true) // held: not kept for reuse, closed once released
	if len(pool.free) != 0 {
		t.Fatal("a ring with a body held was kept for another stream")
	}
	if rd.r.unmapped.Load() {
		t.Fatal("ring unmapped while a body over it is held")
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("held body changed")
	}
	buf.Release()
	if !rd.r.unmapped.Load() {
		t.Fatal("ring still mapped after its last body was released")
	}
}
