package transport

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
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

// TestSinkReadsInPlaceAndKeepsHeldRings: a sink plugin reads the host's
// bodies in place (the host is trusted); a sink that still holds a batch
// when its stream ends says so, and the host does not give that ring to
// the next stream, which would overwrite the batch.
func TestSinkReadsInPlaceAndKeepsHeldRings(t *testing.T) {
	skipWithoutRings(t)
	var (
		mu      sync.Mutex
		keeping = true
		kept    []arrow.RecordBatch
		sum     int64
	)
	snk := &writeSink{name: "keep", write: func(_ context.Context, rec arrow.RecordBatch) error {
		mu.Lock()
		defer mu.Unlock()
		// Every batch of the first stream outlives it: whichever of them
		// were read in place (a body may also come inline), the ring they
		// are in must not serve the next stream.
		if keeping {
			rec.Retain()
			kept = append(kept, rec)
		}
		for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
			sum += v
		}
		return nil
	}}
	c, conn := dialPlugin(t, &GRPCPlugin{Registry: protocol.NewRegistry(bigSource{}, snk)}, "keep")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	write := func(batches int64) {
		t.Helper()
		w, err := conn.(protocol.Sink).Open(ctx, protocol.Config{Connector: "keep"}, mem, bigSchema)
		if err != nil {
			t.Fatal(err)
		}
		if err := (bigSource{}).Read(ctx, protocol.Config{Options: map[string]any{"batches": batches}}, mem, &sinkWriterEmitter{w: w}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	inPlace := inPlaceBodies.Load()
	write(4)
	if n := inPlaceBodies.Load() - inPlace; n == 0 {
		t.Error("the sink read no body in place")
	}
	c.rings.mu.Lock()
	free := len(c.rings.free)
	c.rings.mu.Unlock()
	if free != 0 {
		t.Errorf("%d rings kept for reuse while the sink holds a batch read in place from one", free)
	}
	mu.Lock()
	keeping = false
	first := kept
	mu.Unlock()
	sums := func() []int64 {
		out := make([]int64, len(first))
		for i, rec := range first {
			for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
				out[i] += v
			}
		}
		return out
	}
	want := sums()
	write(8) // another stream, through another ring
	got := sums()
	for i := range got {
		if got[i] != want[i] || (i == 0 && want[i] != int64(bigRows)*(bigRows-1)/2) {
			t.Errorf("kept batch %d changed: sum %d, was %d", i, got[i], want[i])
		}
	}
	for _, rec := range first {
		rec.Release()
	}
	if n := heldBodies.Load(); n != 0 {
		t.Errorf("%d bodies still held", n)
	}
}
