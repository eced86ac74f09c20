package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

func skipWithoutRings(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("shared memory rings are Linux only")
	}
}

// ringPair is a ring created in a test directory and opened again, as the
// host and a plugin do.
func ringPair(t *testing.T, capacity int) (w *ringWriter, rd *ringReader) {
	t.Helper()
	skipWithoutRings(t)
	dir := t.TempDir()
	host, err := createRing(dir, capacity)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := openRing(host.name)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("files left once both sides mapped the ring: %v", left)
	}
	t.Cleanup(func() { host.close(); peer.close() })
	return &ringWriter{r: peer}, &ringReader{r: host}
}

func body(n int, seed byte) [][]byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	// Two parts, as SerializeBody writes a buffer and its padding.
	return [][]byte{b[:n/2], b[n/2:]}
}

func TestRingWrapAroundAndFull(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w, rd := ringPair(t, 4096)

	// Bodies of 1000 bytes: four fit (at 0, 1024, 2048, 3072 after
	// alignment); the fifth does not until the consumer reads.
	var offs []uint64
	for i := range 4 {
		off, ok := w.write(body(1000, byte(i)), 1000)
		if !ok {
			t.Fatalf("body %d did not fit", i)
		}
		offs = append(offs, off)
	}
	if _, ok := w.write(body(1000, 9), 1000); ok {
		t.Fatal("a full ring took a fifth body (it should go inline)")
	}
	for i, off := range offs[:2] {
		buf, err := rd.read(off, 1000, mem)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Join(body(1000, byte(i)), nil); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("body %d differs", i)
		}
		buf.Release()
	}
	// 2000 bytes do not fit between 4096 and the end: the producer skips
	// to the start, where the first two bodies were read.
	off, ok := w.write(body(2000, 7), 2000)
	if !ok {
		t.Fatal("wrapped body did not fit")
	}
	if off != 4096 {
		t.Errorf("wrapped body at %d, want 4096", off)
	}
	for i, off := range offs[2:] {
		buf, err := rd.read(off, 1000, mem)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Join(body(1000, byte(i+2)), nil); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("body %d differs", i+2)
		}
		buf.Release()
	}
	buf, err := rd.read(off, 2000, mem)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(body(2000, 7), nil); !bytes.Equal(buf.Bytes(), want) {
		t.Error("wrapped body differs")
	}
	buf.Release()
	// Bodies larger than the ring always go inline.
	if _, ok := w.write(body(8192, 1), 8192); ok {
		t.Error("a body larger than the ring was taken")
	}
}

// Bodies whose sizes are not multiples of the alignment leave the head
// unaligned; the producer's rounded tail may then pass head+capacity by
// less than the alignment, which is not a misbehaving consumer.
func TestRingUnalignedBodiesKeepTheRing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w, rd := ringPair(t, 4096)
	type pending struct {
		off, n uint64
		seed   byte
	}
	var queue []pending
	sizes := []int{1000, 3000, 1000, 999, 2047, 8, 4096, 1500}
	written := 0
	for i := range 400 {
		n := sizes[i%len(sizes)]
		if off, ok := w.write(body(n, byte(i)), n); ok {
			queue = append(queue, pending{off, uint64(n), byte(i)})
			written++
		}
		// The consumer lags by up to two bodies.
		for len(queue) > 2 || (len(queue) > 0 && i%3 == 0) {
			p := queue[0]
			queue = queue[1:]
			buf, err := rd.read(p.off, p.n, mem)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), bytes.Join(body(int(p.n), p.seed), nil)) {
				t.Fatalf("body at %d differs", p.off)
			}
			buf.Release()
		}
	}
	if written < 200 {
		t.Errorf("only %d of 400 bodies went through the ring", written)
	}
	if w.off {
		t.Error("the producer gave up on a well-behaved consumer")
	}
}

// A consumer that keeps up gets every body in the first quarter of the
// ring, so most pages of the mapping are never touched.
func TestRingStartsOverWhenEmpty(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w, rd := ringPair(t, 1<<20)
	var highest uint64
	for i := range 1000 {
		n := 1000 + i%7*100
		off, ok := w.write(body(n, byte(i)), n)
		if !ok {
			t.Fatalf("body %d did not fit", i)
		}
		highest = max(highest, off%(1<<20)+uint64(n))
		buf, err := rd.read(off, uint64(n), mem)
		if err != nil {
			t.Fatal(err)
		}
		buf.Release()
	}
	if highest > 1<<18+1600 {
		t.Errorf("bodies reached offset %d of the ring, want them in the first quarter", highest)
	}
}

func TestRingRejectsBadOffsets(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	w, rd := ringPair(t, 4096)
	off, ok := w.write(body(1000, 1), 1000)
	if !ok || off != 0 {
		t.Fatalf("write = %d, %v", off, ok)
	}
	for _, c := range []struct {
		name   string
		off, n uint64
		want   string
	}{
		{"empty", 0, 0, "length 0 out of range"},
		{"longer than the ring", 0, 1 << 40, "out of range"},
		{"past the end", 4000, 1000, "crosses the end"},
		{"huge offset", 1<<64 - 8, 8, "offset"},
		{"not written yet", 1024, 1000, "not yet published"},
		{"overflowing length", 0, 1<<64 - 1, "out of range"},
	} {
		if _, err := rd.read(c.off, c.n, mem); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	buf, err := rd.read(0, 1000, mem)
	if err != nil {
		t.Fatal(err)
	}
	buf.Release()
	// Read already: going back is refused.
	if _, err := rd.read(0, 1000, mem); err == nil || !strings.Contains(err.Error(), "offset 0 out of range") {
		t.Errorf("reading again: %v", err)
	}
}

func TestRingTruncatedByThePeerIsAnError(t *testing.T) {
	skipWithoutRings(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	host, err := createRing(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer host.close()
	// A hostile peer truncates the file it was given.
	if err := os.Truncate(host.name, 0); err != nil {
		t.Fatal(err)
	}
	rd := &ringReader{r: host}
	if _, err := rd.read(0, 64, mem); err == nil || !strings.Contains(err.Error(), "shared memory ring") {
		t.Errorf("read of a truncated ring: %v", err)
	}
}

// fakeStream feeds messages to a messageReader.
func fakeStream(msgs ...*flight.FlightData) func() (*flight.FlightData, error) {
	return func() (*flight.FlightData, error) {
		if len(msgs) == 0 {
			return nil, errors.New("end")
		}
		m := msgs[0]
		msgs = msgs[1:]
		return m, nil
	}
}

func TestMessageReaderChecksRingReferences(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	header := []byte{1, 2, 3, 4}
	for _, c := range []struct {
		name string
		ring bool
		fd   *flight.FlightData
		want string
	}{
		{"no ring negotiated", false, &flight.FlightData{DataHeader: header, AppMetadata: []byte(`{"ring":{"off":0,"len":8}}`)}, "none was negotiated"},
		{"body and ring", true, &flight.FlightData{DataHeader: header, DataBody: []byte{1}, AppMetadata: []byte(`{"ring":{"off":0,"len":8}}`)}, "both"},
		{"out of range", true, &flight.FlightData{DataHeader: header, AppMetadata: []byte(`{"ring":{"off":99999999,"len":8}}`)}, "out of range"},
		{"negative", true, &flight.FlightData{DataHeader: header, AppMetadata: []byte(`{"ring":{"off":-1,"len":8}}`)}, "app_metadata"},
	} {
		mr := &messageReader{recv: fakeStream(c.fd), refs: 1, mem: mem}
		if c.ring {
			_, rd := ringPair(t, 4096)
			mr.ring = rd
		}
		if _, err := mr.Message(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		mr.Release()
	}
}

func TestAppendRingRef(t *testing.T) {
	for meta, want := range map[string]string{
		"":                     `{"ring":{"off":64,"len":8}}`,
		"{}":                   `{"ring":{"off":64,"len":8}}`,
		`{"more":true}`:        `{"ring":{"off":64,"len":8},"more":true}`,
		`{"position":{"a":1}}`: `{"ring":{"off":64,"len":8},"position":{"a":1}}`,
	} {
		if got := string(appendRingRef([]byte(meta), 64, 8)); got != want {
			t.Errorf("appendRingRef(%q) = %s, want %s", meta, got, want)
		}
	}
}

// bigSource emits "batches" batches of about 1 MiB, each with distinct
// values.
type bigSource struct{}

var bigSchema = arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)

func (bigSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "big", Kind: protocol.KindSource, Version: "1", Doc: "test source", Options: []protocol.Option{
		{Name: "batches", Type: protocol.TypeInt, Default: int64(4), Doc: "batches"},
	}}
}

func (bigSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return bigSchema, nil
}

const bigRows = 1 << 17

func (bigSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	for i := range cfg.Int("batches") {
		b := array.NewInt64Builder(mem)
		for j := range int64(bigRows) {
			b.Append(i*bigRows + j)
		}
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(bigSchema, []arrow.Array{col}, bigRows)
		col.Release()
		pos, _ := protocol.NewPosition(i + 1)
		err := out.Emit(ctx, rec, pos)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

type sumEmitter struct {
	rows, sum int64
	positions int
	recs      []arrow.RecordBatch
}

func (e *sumEmitter) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	e.rows += rec.NumRows()
	for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
		e.sum += v
	}
	if pos != nil {
		e.positions++
	}
	rec.Retain() // batches outlive the call
	e.recs = append(e.recs, rec)
	return nil
}

func (e *sumEmitter) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func TestSourceBodiesGoThroughTheRing(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) { testSourceBodiesGoThroughTheRing(t, trusted) })
	}
}

// testSourceBodiesGoThroughTheRing holds every batch until the stream is
// over: read in place (trusted), they fill the ring, and the rest come
// inline.
func testSourceBodiesGoThroughTheRing(t *testing.T, trusted bool) {
	skipWithoutRings(t)
	defer func(n int) { inPlaceRingBytes = n }(inPlaceRingBytes)
	inPlaceRingBytes = ringBytes // less than the 40 MiB held
	c, conn := dialPlugin(t, &GRPCPlugin{Registry: protocol.NewRegistry(bigSource{})}, "big")
	if trusted {
		c.Trust()
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const batches = 40 // 40 MiB: more than the ring holds at once
	for run := range 3 {
		inPlace := inPlaceBodies.Load()
		before := ReceivedStats()
		e := &sumEmitter{}
		if err := conn.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "big", Options: map[string]any{"batches": int64(batches)}}, mem, e); err != nil {
			t.Fatal(err)
		}
		n := int64(batches * bigRows)
		if e.rows != n || e.sum != n*(n-1)/2 || e.positions != batches {
			t.Errorf("run %d: rows %d, sum %d, positions %d", run, e.rows, e.sum, e.positions)
		}
		// The batches are still valid after the stream (and the ring)
		// moved on.
		var sum int64
		for _, rec := range e.recs {
			for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
				sum += v
			}
			rec.Release()
		}
		if sum != e.sum {
			t.Errorf("run %d: batches changed after delivery", run)
		}
		after := ReceivedStats()
		t.Logf("run %d: ring %d bodies %d bytes, inline %d bodies", run, after.RingBodies-before.RingBodies, after.RingBytes-before.RingBytes, after.InlineBodies-before.InlineBodies)
		if after.RingBodies == before.RingBodies {
			t.Errorf("run %d: no body came through the ring", run)
		}
		if n := inPlaceBodies.Load() - inPlace; trusted != (n > 0) {
			t.Errorf("run %d: %d bodies read in place (trusted %v)", run, n, trusted)
		}
		// Held in place, the batches fill the ring: the rest come inline.
		if inline := after.InlineBodies - before.InlineBodies; trusted && inline == 0 {
			t.Errorf("run %d: nothing inline, though 40 MiB of batches read in place were held", run)
		}
		if n := heldBodies.Load(); n != 0 {
			t.Errorf("run %d: %d bodies still held in place after every batch was released", run, n)
		}
	}
}

// writeSink is a test sink, and its own writer, that hands every batch to
// write.
type writeSink struct {
	name  string
	write func(context.Context, arrow.RecordBatch) error
}

func (s *writeSink) Spec() protocol.Spec {
	return protocol.Spec{Name: s.name, Kind: protocol.KindSink, Version: "1", Doc: "test sink"}
}
func (s *writeSink) Validate(context.Context, protocol.Config) error { return nil }
func (s *writeSink) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return s, nil
}
func (s *writeSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	return s.write(ctx, rec)
}
func (s *writeSink) Close(context.Context) error { return nil }
func (s *writeSink) Abort(context.Context) error { return nil }

// sumSink ("sum") adds up what it is given.
type sumSink struct {
	writeSink
	rows, sum atomic.Int64
}

func newSumSink() *sumSink {
	s := &sumSink{}
	s.writeSink = writeSink{name: "sum", write: func(_ context.Context, rec arrow.RecordBatch) error {
		s.rows.Add(rec.NumRows())
		for _, v := range rec.Column(0).(*array.Int64).Int64Values() {
			s.sum.Add(v)
		}
		return nil
	}}
	return s
}

func TestSinkBodiesGoThroughTheRing(t *testing.T) {
	skipWithoutRings(t)
	snk := newSumSink()
	_, conn := dialPlugin(t, &GRPCPlugin{Registry: protocol.NewRegistry(bigSource{}, snk)}, "sum")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const batches = 40
	for run := range 3 {
		before := ReceivedStats()
		writeBig(t, conn, snk, mem, batches)
		after := ReceivedStats()
		t.Logf("run %d: ring %d bodies, inline %d bodies", run, after.RingBodies-before.RingBodies, after.InlineBodies-before.InlineBodies)
		// The first batches may go inline, before the server's answer.
		if after.RingBodies-before.RingBodies < batches/2 {
			t.Errorf("run %d: only %d bodies came through the ring", run, after.RingBodies-before.RingBodies)
		}
	}
}

// writeBig writes batches of bigSource to the "sum" sink through conn
// (Open, the batches, a flush, Close) and checks what the sink received.
func writeBig(t *testing.T, conn protocol.Connector, snk *sumSink, mem memory.Allocator, batches int) {
	t.Helper()
	ctx := context.Background()
	snk.rows.Store(0)
	snk.sum.Store(0)
	w, err := conn.(protocol.Sink).Open(ctx, protocol.Config{Connector: "sum"}, mem, bigSchema)
	if err != nil {
		t.Fatal(err)
	}
	e := &sinkWriterEmitter{w: w}
	if err := (bigSource{}).Read(ctx, protocol.Config{Options: map[string]any{"batches": int64(batches)}}, mem, e); err != nil {
		t.Fatal(err)
	}
	if _, err := w.(protocol.Flusher).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := int64(batches * bigRows); snk.rows.Load() != n || snk.sum.Load() != n*(n-1)/2 {
		t.Errorf("rows %d, sum %d; want %d rows", snk.rows.Load(), snk.sum.Load(), n)
	}
}

type sinkWriterEmitter struct{ w protocol.Writer }

func (e *sinkWriterEmitter) Emit(ctx context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	return e.w.Write(ctx, rec)
}
func (e *sinkWriterEmitter) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

// oldServer is a server from before the ring: it never sees the offer.
type oldServer struct{ *flightServer }

type noMetadataStream struct {
	flight.FlightService_DoGetServer
}

func (s noMetadataStream) Context() context.Context {
	return metadata.NewIncomingContext(s.FlightService_DoGetServer.Context(), metadata.MD{})
}

func (s oldServer) DoGet(t *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	return s.flightServer.DoGet(t, noMetadataStream{stream})
}

type noMetadataPutStream struct {
	flight.FlightService_DoPutServer
}

func (s noMetadataPutStream) Context() context.Context {
	return metadata.NewIncomingContext(s.FlightService_DoPutServer.Context(), metadata.MD{})
}

func (s oldServer) DoPut(stream flight.FlightService_DoPutServer) error {
	return s.flightServer.DoPut(noMetadataPutStream{stream})
}

type oldPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	reg *protocol.Registry
}

func (p *oldPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	flight.RegisterFlightServiceServer(s, oldServer{newServer(p.reg, memory.NewGoAllocator(), nil, protocol.Version)})
	return nil
}

func (p *oldPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return newClient(conn, protocol.Version), nil
}

func TestPeerWithoutRingsGetsEverythingInline(t *testing.T) {
	skipWithoutRings(t)
	c, conn := dialPlugin(t, &oldPlugin{reg: protocol.NewRegistry(bigSource{})}, "big")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for run := range 2 {
		before := ReceivedStats()
		e := &sumEmitter{}
		if err := conn.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "big", Options: map[string]any{"batches": int64(3)}}, mem, e); err != nil {
			t.Fatal(err)
		}
		for _, rec := range e.recs {
			rec.Release()
		}
		if n := int64(3 * bigRows); e.rows != n || e.sum != n*(n-1)/2 {
			t.Errorf("run %d: rows %d, sum %d", run, e.rows, e.sum)
		}
		after := ReceivedStats()
		if after.RingBodies != before.RingBodies || after.InlineBodies-before.InlineBodies != 3 {
			t.Errorf("run %d: %d bodies through the ring, %d inline; want 0, 3", run, after.RingBodies-before.RingBodies, after.InlineBodies-before.InlineBodies)
		}
	}
	if !c.rings.unsupported.Load() {
		t.Error("the client still offers rings to a peer that ignored the offer")
	}
	if left, _ := filepath.Glob(filepath.Join(ringDir(), ringPrefix+strconv.Itoa(os.Getpid())+"-*")); len(left) != 0 {
		t.Errorf("ring files left: %v", left)
	}
}

func TestSinkWithoutRingsGetsEverythingInline(t *testing.T) {
	skipWithoutRings(t)
	snk := newSumSink()
	c, conn := dialPlugin(t, &oldPlugin{reg: protocol.NewRegistry(snk)}, "sum")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for run := range 2 {
		before := ReceivedStats()
		writeBig(t, conn, snk, mem, 3)
		if after := ReceivedStats(); after.RingBodies != before.RingBodies {
			t.Errorf("run %d: %d bodies through the ring, want none", run, after.RingBodies-before.RingBodies)
		}
	}
	if !c.rings.unsupported.Load() {
		t.Error("the client still offers rings to a peer that ignored the offer")
	}
}

// A sink writer dropped without Close or Abort (as the conformance suite
// simulates a crash) unmaps its ring once collected.
func TestAbandonedWriterUnmapsItsRing(t *testing.T) {
	skipWithoutRings(t)
	snk := newSumSink()
	ctx := context.Background()
	_, conn := dialPlugin(t, &GRPCPlugin{Registry: protocol.NewRegistry(snk)}, "sum")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	r := func() *ring {
		w, err := conn.(protocol.Sink).Open(ctx, protocol.Config{Connector: "sum"}, mem, bigSchema)
		if err != nil {
			t.Fatal(err)
		}
		if err := (bigSource{}).Read(ctx, protocol.Config{Options: map[string]any{"batches": int64(2)}}, mem, &sinkWriterEmitter{w: w}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.(protocol.Flusher).Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return w.(*remoteWriter).ring
	}()
	if r == nil || r.unmapped.Load() {
		t.Fatal("no ring in use")
	}
	for range 100 {
		runtime.GC()
		if r.unmapped.Load() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the ring of a dropped writer is still mapped")
}

// slowEmitter is a consumer that lags: it waits before taking the first
// batch, so that the producer fills the ring meanwhile.
type slowEmitter struct {
	sumEmitter
	wait time.Duration
}

func (e *slowEmitter) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	if e.rows == 0 {
		time.Sleep(e.wait)
	}
	return e.sumEmitter.Emit(ctx, rec, pos)
}

// TestLaggingReaderKeepsTheRing: a reader slow to take the first batch
// is behind, not stuck: the producer waits for room in the ring instead
// of sending inline, as a full gRPC window would make it wait.
func TestLaggingReaderKeepsTheRing(t *testing.T) {
	skipWithoutRings(t)
	defer func(n int) { ringBytes = n }(ringBytes)
	ringBytes = 4 << 20 // four of bigSource's 1 MiB bodies
	_, conn := dialPlugin(t, &GRPCPlugin{Registry: protocol.NewRegistry(bigSource{})}, "big")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const batches = 16
	before := ReceivedStats()
	e := &slowEmitter{wait: 300 * time.Millisecond}
	if err := conn.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "big", Options: map[string]any{"batches": int64(batches)}}, mem, e); err != nil {
		t.Fatal(err)
	}
	for _, rec := range e.recs {
		rec.Release()
	}
	if n := int64(batches * bigRows); e.rows != n || e.sum != n*(n-1)/2 || e.positions != batches {
		t.Errorf("rows %d, sum %d, positions %d", e.rows, e.sum, e.positions)
	}
	after := ReceivedStats()
	ring, inline := after.RingBodies-before.RingBodies, after.InlineBodies-before.InlineBodies
	t.Logf("%d bodies through the ring, %d inline", ring, inline)
	if ring != batches || inline != 0 {
		t.Errorf("%d bodies through the ring and %d inline, want all %d through the ring", ring, inline, batches)
	}
}

// dialPlugin serves p over a real gRPC connection, in-process, and returns
// the client (closed at the end of the test) and its connector name.
func dialPlugin(t *testing.T, p plugin.Plugin, name string) (*Client, protocol.Connector) {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: p})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*Client)
	t.Cleanup(func() { c.Close() })
	conn, err := c.Connector(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c, conn
}

// TestPeerThatDeclinesIsOfferedNoMoreRings: a peer that cannot map our
// rings (another /dev/shm) answers "0" to every offer; after maxDeclines
// in a row it is offered none, while a passing decline is forgiven.
func TestPeerThatDeclinesIsOfferedNoMoreRings(t *testing.T) {
	p := &ringPool{}
	for range maxDeclines - 1 {
		if p.answered([]string{"0"}) {
			t.Fatal("a decline counted as accepted")
		}
	}
	if !p.answered([]string{"1"}) || p.unsupported.Load() {
		t.Fatal("an accepted offer after declines: want accepted, offers going on")
	}
	for i := range maxDeclines {
		if p.unsupported.Load() {
			t.Fatalf("offers stopped after %d declines in a row, want %d", i, maxDeclines)
		}
		p.answered([]string{"0"})
	}
	if !p.unsupported.Load() {
		t.Fatalf("still offering after %d declines in a row", maxDeclines)
	}
	if r := p.get(); r != nil {
		r.close()
		t.Fatal("get returned a ring after the peer declined them")
	}
	old := &ringPool{}
	if old.answered(nil) || !old.unsupported.Load() {
		t.Fatal("a peer that ignores the offer (no answer) must get no more offers")
	}
}

// stuckSink ("stuck") takes its first batch, then blocks in Write until
// released.
type stuckSink struct {
	writeSink
	got     chan struct{}
	release chan struct{}
	once    sync.Once
}

func newStuckSink() *stuckSink {
	s := &stuckSink{got: make(chan struct{}), release: make(chan struct{})}
	s.writeSink = writeSink{name: "stuck", write: func(ctx context.Context, _ arrow.RecordBatch) error {
		s.once.Do(func() { close(s.got) })
		select {
		case <-s.release:
		case <-ctx.Done():
		}
		return nil
	}}
	return s
}

// TestDeadConnectionRetainsNoSinkBatch: a batch written inline (a plugin
// without rings) is handed to gRPC without a copy and stays retained until
// gRPC wrote it; when the connection dies while the plugin is stuck and the
// write waits, it must be released all the same.
func TestDeadConnectionRetainsNoSinkBatch(t *testing.T) {
	snk := newStuckSink()
	defer close(snk.release)
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{PluginName: &oldPlugin{reg: protocol.NewRegistry(snk, newSumSink())}})
	defer client.Close()
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*Client)
	defer c.Close()
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	// A first stream tells the client that the plugin has no rings: only
	// then are batches handed to gRPC without a copy.
	sum, err := c.Connector(ctx, "sum")
	if err != nil {
		t.Fatal(err)
	}
	w, err := sum.(protocol.Sink).Open(ctx, protocol.Config{Connector: "sum"}, mem, bigSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := (bigSource{}).Read(ctx, protocol.Config{Options: map[string]any{"batches": int64(1)}}, mem, &sinkWriterEmitter{w: w}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.rings.unsupported.Load() {
		t.Fatal("the client still offers rings to a plugin without them")
	}
	conn, err := c.Connector(ctx, "stuck")
	if err != nil {
		t.Fatal(err)
	}
	w, err = conn.(protocol.Sink).Open(ctx, protocol.Config{Connector: "stuck"}, mem, bigSchema)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Far more than gRPC's windows: the writes stall once they are full.
		done <- (bigSource{}).Read(ctx, protocol.Config{Options: map[string]any{"batches": int64(64)}}, mem, &sinkWriterEmitter{w: w})
	}()
	<-snk.got
	time.Sleep(200 * time.Millisecond) // let frames queue up
	// A batch handed to gRPC stays retained until written out: the one
	// being sent is, else this tests nothing.
	if held := mem.CurrentAlloc(); held < 8*bigRows {
		t.Fatalf("%d bytes retained before the connection dies: no batch in gRPC's hands", held)
	}
	server.Stop() // the plugin's end of the connection dies
	select {
	case err := <-done:
		if err == nil {
			t.Error("writing to a dead connection succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writes to a dead connection did not end")
	}
	w.Abort(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for mem.CurrentAlloc() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mem.AssertSize(t, 0)
}

// sentMessages records what a payloadWriter sends.
type sentMessages struct {
	mu   sync.Mutex
	msgs []any
}

func (s *sentMessages) SendMsg(m any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := m.(*outData); ok && o.release != nil {
		o.release()
	}
	s.msgs = append(s.msgs, m)
	return nil
}

// TestBodyWaitsForRoomInTheRing checks that a body that does not fit in
// the ring while the reader is behind waits for the reader to free room
// and goes through the ring, rather than inline.
func TestBodyWaitsForRoomInTheRing(t *testing.T) {
	defer func(d time.Duration) { maxRingWait = d }(maxRingWait)
	maxRingWait = 10 * time.Second // the reader frees room long before
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	rec := int64Batch(mem, 40_000) // 320 KB: two do not fit in the ring
	defer rec.Release()
	schema := rec.Schema()

	w, rd := ringPair(t, 512<<10)
	sent := &sentMessages{}
	bw := newBatchWriter(sent, schema, mem)
	bw.pw.ring = w
	if err := bw.WriteWithAppMetadata(rec, nil); err != nil {
		t.Fatal(err)
	}
	first := sent.msgs[len(sent.msgs)-1].(*flight.FlightData)
	var meta appMetadata
	if err := json.Unmarshal(first.AppMetadata, &meta); err != nil || meta.Ring == nil {
		t.Fatalf("first body not through the ring: %s (%v)", first.AppMetadata, err)
	}
	// The reader takes the first body a moment after the second is sent.
	done := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		buf, err := rd.read(meta.Ring.Off, meta.Ring.Len, mem)
		if err == nil {
			buf.Release()
		}
		done <- err
	}()
	if err := bw.WriteWithAppMetadata(rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second, ok := sent.msgs[len(sent.msgs)-1].(*flight.FlightData)
	if !ok {
		t.Fatalf("second body sent inline (%T) instead of waiting for room in the ring", sent.msgs[len(sent.msgs)-1])
	}
	if err := json.Unmarshal(second.AppMetadata, &meta); err != nil || meta.Ring == nil {
		t.Fatalf("second body not through the ring: %s (%v)", second.AppMetadata, err)
	}
}

// TestStalledRingDoesNotDelayEveryBody: when the reader frees nothing (it
// keeps every batch it read in place), the writer waits for room once,
// then sends inline without waiting until the ring has room again.
func TestStalledRingDoesNotDelayEveryBody(t *testing.T) {
	defer func(d time.Duration) { maxRingWait = d }(maxRingWait)
	maxRingWait = 10 * time.Millisecond
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := int64Batch(mem, 40_000)
	defer rec.Release()
	schema := rec.Schema()

	w, _ := ringPair(t, 512<<10)
	sent := &sentMessages{}
	bw := newBatchWriter(sent, schema, mem)
	bw.pw.ring = w
	before := ringWaitsRanOut.Load()
	for range 6 { // the first fills the ring; nobody reads
		if err := bw.WriteWithAppMetadata(rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := ringWaitsRanOut.Load() - before; n != 1 {
		t.Errorf("the writer waited in vain %d times for room in a ring nobody reads, want once", n)
	}
	inline := 0
	for _, m := range sent.msgs {
		if o, ok := m.(*outData); ok && o.bodySize > 0 {
			inline++
		}
	}
	if inline != 5 {
		t.Errorf("%d bodies inline, want 5", inline)
	}
}

// TestBodyWaitsForAReaderBehind: a reader that has bodies still to read
// is behind, not stuck: the writer waits for it past maxRingWait (as a
// full gRPC window would), and the body goes through the ring.
func TestBodyWaitsForAReaderBehind(t *testing.T) {
	defer func(d time.Duration) { maxRingWait = d }(maxRingWait)
	maxRingWait = 5 * time.Millisecond
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := int64Batch(mem, 20_000) // 160 KB: three fill the ring
	defer rec.Release()
	schema := rec.Schema()

	w, rd := ringPair(t, 500<<10)
	rd.inPlace = true
	sent := &sentMessages{}
	bw := newBatchWriter(sent, schema, mem)
	bw.pw.ring = w
	var refs []*ringRef
	for range 3 {
		if err := bw.WriteWithAppMetadata(rec, nil); err != nil {
			t.Fatal(err)
		}
		var meta appMetadata
		fd, ok := sent.msgs[len(sent.msgs)-1].(*flight.FlightData)
		if !ok || json.Unmarshal(fd.AppMetadata, &meta) != nil || meta.Ring == nil {
			t.Fatal("body not through the ring")
		}
		refs = append(refs, meta.Ring)
	}
	// The reader holds the first body and reads the other two later, well
	// after maxRingWait; then it releases all.
	first, err := rd.read(refs[0].Off, refs[0].Len, mem)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(20 * maxRingWait)
		var err error
		for _, ref := range refs[1:] {
			var buf *memory.Buffer
			if buf, err = rd.read(ref.Off, ref.Len, mem); err != nil {
				break
			}
			buf.Release()
		}
		first.Release()
		done <- err
	}()
	if err := bw.WriteWithAppMetadata(rec, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := sent.msgs[len(sent.msgs)-1].(*flight.FlightData); !ok {
		t.Fatalf("body sent inline (%T) while the reader was only behind", sent.msgs[len(sent.msgs)-1])
	}
}

// int64Batch is a batch of one int64 column "v" holding 0..n-1 (8n bytes
// of body).
func int64Batch(mem memory.Allocator, n int) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	for i := range n {
		b.Append(int64(i))
	}
	col := b.NewArray()
	defer col.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{col}, int64(n))
}
