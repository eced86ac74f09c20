package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Client talks to the connectors served by one plugin process (or any Flight
// server built with newServer). The connectors it returns implement Source
// and Sink, so the engine uses remote and in-process connectors alike.
type Client struct {
	fc      flight.FlightServiceClient
	version int
	rings   *ringPool
	trusted bool // read ring bodies in place (Trust)
	// inPlace are the rings of the streams read in place (Trust): larger.
	inPlace *ringPool
}

func newClient(conn grpc.ClientConnInterface, version int) *Client {
	c := &Client{fc: flight.NewFlightServiceClient(conn), version: version, rings: &ringPool{}, inPlace: &ringPool{size: inPlaceRingBytes}}
	// Unmap the kept rings of a client dropped without Close (tests).
	runtime.AddCleanup(c, (*ringPool).close, c.rings)
	runtime.AddCleanup(c, (*ringPool).close, c.inPlace)
	return c
}

// Trust says that the server is trusted not to write again what it
// published: a built-in connector served by this very binary. The Arrow
// bodies its sources write to a shared memory ring are then read in place
// instead of copied out (inplace.go). Call it before any call.
func (c *Client) Trust() { c.trusted = true }

// Close releases the shared memory kept for streams with the server. The
// client still works after, with every Arrow body inline.
func (c *Client) Close() {
	c.rings.close()
	c.inPlace.close()
}

// Version returns the protocol version spoken with the server. Version 1
// servers send no positions and cannot flush: their sources cannot resume
// and their sinks are durable only at Close.
func (c *Client) Version() int { return c.version }

func (c *Client) action(ctx context.Context, typ string, body any) ([]byte, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	stream, err := c.fc.DoAction(ctx, &flight.Action{Type: typ, Body: raw})
	if err != nil {
		return nil, fromStatus(err)
	}
	var out []byte
	for {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fromStatus(err)
		}
		out = append(out, res.Body...)
	}
}

// Specs lists the connectors the server offers.
func (c *Client) Specs(ctx context.Context) ([]protocol.Spec, error) {
	b, err := c.action(ctx, actionSpecs, nil)
	if err != nil {
		return nil, err
	}
	var specs []protocol.Spec
	if err := json.Unmarshal(b, &specs); err != nil {
		return nil, fmt.Errorf("decode specs: %w", err)
	}
	return specs, nil
}

// Connector returns the connector called name, as a Source or a Sink.
func (c *Client) Connector(ctx context.Context, name string) (protocol.Connector, error) {
	b, err := c.action(ctx, actionSpec, map[string]string{"connector": name})
	if err != nil {
		return nil, err
	}
	var spec protocol.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("decode spec of %q: %w", name, err)
	}
	switch spec.Kind {
	case protocol.KindSource:
		return &remoteSource{c: c, spec: spec}, nil
	case protocol.KindSink:
		return &remoteSink{c: c, spec: spec}, nil
	}
	return nil, fmt.Errorf("connector %q has unknown kind %q", name, spec.Kind)
}

type remoteSource struct {
	c    *Client
	spec protocol.Spec
}

var _ protocol.Source = (*remoteSource)(nil)

func (s *remoteSource) Spec() protocol.Spec { return s.spec }

func (s *remoteSource) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	// The contract gives Schema no allocator; the messages it builds and
	// reads are transient, so one of its own serves.
	mem := memory.NewGoAllocator()
	raw, err := encodeConfig(cfg, mem)
	if err != nil {
		return nil, err
	}
	res, err := s.c.fc.GetSchema(ctx, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: raw})
	if err != nil {
		return nil, fromStatus(err)
	}
	return flight.DeserializeSchema(res.GetSchema(), mem)
}

func (s *remoteSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	raw, err := encodeConfig(cfg, mem)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Offer a shared memory ring for the Arrow bodies. The server maps
	// (and unlinks) it before it sends anything and says so in its
	// response header; a server without the capability ignores the offer.
	// Either way the file is removed when the first message or the end
	// of the call arrives.
	var rr *ringReader
	callCtx := ctx
	pool := s.c.rings
	if s.c.trusted {
		pool = s.c.inPlace
	}
	r := pool.get()
	if r != nil {
		rr = &ringReader{r: r, inPlace: s.c.trusted}
		callCtx = metadata.AppendToOutgoingContext(ctx, ringMetadataKey, r.name)
	}
	stream, err := s.c.fc.DoGet(callCtx, &flight.Ticket{Ticket: raw})
	if err != nil {
		if r != nil {
			pool.put(r, false)
		}
		return fromStatus(err)
	}
	recv := stream.Recv
	if r != nil {
		first, accepted, ended := true, false, false
		// Only this goroutine reads the mapping; it is kept for the next
		// stream only if the server's handler is over (it no longer
		// writes there).
		defer func() { pool.put(r, accepted && ended) }()
		recv = func() (*flight.FlightData, error) {
			fd, err := stream.Recv()
			if first {
				first = false
				r.unlink()
				if md, herr := stream.Header(); herr == nil && err == nil {
					accepted = pool.answered(md.Get(ringMetadataKey))
				}
			}
			if errors.Is(err, io.EOF) {
				ended = true
			}
			return fd, err
		}
	}
	mr := &messageReader{recv: recv, ring: rr, mem: mem, refs: 1, onMeta: func(m appMetadata) error {
		if len(m.DeadLetters) == 0 {
			return nil
		}
		return out.DeadLetter(ctx, m.DeadLetters)
	}}
	rdr, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(mem))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fromStatus(err)
	}
	defer rdr.Release()
	// The slices of one batch are held until its last slice arrives, so
	// that a crash never leaves part of a batch delivered, and joined
	// back into the batch the source emitted.
	j := &sliceJoiner{mem: mem}
	defer j.release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if mr.last.More {
			j.hold(rec)
			continue
		}
		whole, err := j.join(rec)
		if err != nil {
			return err
		}
		err = out.Emit(ctx, whole, mr.last.Position)
		whole.Release()
		if err != nil {
			return err
		}
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fromStatus(err)
	}
	if j.held() > 0 {
		return fmt.Errorf("source stream ended inside a batch: %w", protocol.ErrTemporary)
	}
	return nil
}

type remoteSink struct {
	c    *Client
	spec protocol.Spec
}

var (
	_ protocol.Sink           = (*remoteSink)(nil)
	_ protocol.CheckpointSink = (*remoteSink)(nil)
)

func (s *remoteSink) Spec() protocol.Spec { return s.spec }

func (s *remoteSink) Validate(ctx context.Context, cfg protocol.Config) error {
	_, err := s.c.action(ctx, actionValidate, cfg)
	return err
}

// LastCheckpoint asks the plugin for the sink's last committed checkpoint.
func (s *remoteSink) LastCheckpoint(ctx context.Context, cfg protocol.Config) (*protocol.Checkpoint, error) {
	b, err := s.c.action(ctx, actionCheckpoint, cfg)
	if err != nil {
		return nil, err
	}
	var cp *protocol.Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	return cp, nil
}

func (s *remoteSink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	raw, err := encodeConfig(cfg, mem)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	// Offer a shared memory ring, as Read does. Here the host writes:
	// it must not use the ring before the server said it mapped it, and
	// must not wait for that answer (a server without the capability
	// sends its header only when it first answers).
	callCtx := ctx
	r := s.c.rings.get()
	if r != nil {
		callCtx = metadata.AppendToOutgoingContext(ctx, ringMetadataKey, r.name, ringInPlaceKey, "1")
	}
	stream, err := s.c.fc.DoPut(callCtx)
	if err != nil {
		cancel()
		if r != nil {
			s.c.rings.put(r, false)
		}
		return nil, fromStatus(err)
	}
	w := newBatchWriter(stream, schema, mem)
	// Inline bodies are copied, with a ring or without: gRPC never frees
	// the buffers it holds when the connection dies (a plugin killed
	// mid-write), and the batch would stay retained for ever
	// (TestDeadConnectionRetainsNoSinkBatch).
	w.pw.noRetain = true
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: raw})
	rw := &remoteWriter{stream: stream, w: w, cancel: cancel, version: s.c.version, schema: schema, mem: mem}
	if r != nil {
		accepted, header := new(atomic.Bool), make(chan struct{})
		rw.accepted = accepted
		rw.ring, rw.pool, rw.header = r, s.c.rings, header
		w.pw.ring, w.pw.ringOK = &ringWriter{r: r}, accepted
		// A writer dropped without Close or Abort (a simulated crash)
		// unmaps its ring when collected; done cancels this.
		rw.cleanup = runtime.AddCleanup(rw, (*ring).close, r)
		go func() { // must not refer to rw, or it is never collected
			defer close(header)
			md, err := stream.Header()
			r.unlink()
			if err != nil {
				return
			}
			accepted.Store(s.c.rings.answered(md.Get(ringMetadataKey)))
		}()
	}
	return rw, nil
}

type remoteWriter struct {
	stream  flight.FlightService_DoPutClient
	w       *batchWriter
	cancel  context.CancelFunc
	version int
	schema  *arrow.Schema
	mem     memory.Allocator
	rows    int64
	sent    bool              // a batch was written: the schema and descriptor went out
	seq     int64             // last flush request
	durable int64             // rows acknowledged durable by the last flush
	pos     protocol.Position // position of the last flush
	dead    int64             // rows the sink dead-lettered, from its final acknowledgement

	// The shared memory ring offered, if any: used once accepted, given
	// back to pool when the call is over (kept if it ended cleanly).
	ring     *ring
	pool     *ringPool
	accepted *atomic.Bool
	header   chan struct{} // closed when the server's answer is in
	ended    bool          // the server's handler returned without error
	cleanup  runtime.Cleanup
}

// done gives the ring back once the call is over.
func (w *remoteWriter) done() {
	if w.ring == nil {
		return
	}
	<-w.header // the call is over, so Header has returned
	w.cleanup.Stop()
	w.pool.put(w.ring, w.ended && w.accepted.Load())
	w.ring = nil
}

var (
	_ protocol.Writer            = (*remoteWriter)(nil)
	_ protocol.Flusher           = (*remoteWriter)(nil)
	_ protocol.Checkpointer      = (*remoteWriter)(nil)
	_ protocol.DeadLetterCounter = (*remoteWriter)(nil)
)

// DeadLettered is what the sink's final acknowledgement said it
// dead-lettered (0 before Close, or from a sink that keeps none).
func (w *remoteWriter) DeadLettered() int64 { return w.dead }

func (w *remoteWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	// Version 2 servers join the slices back (older ones ignore the tags
	// and write each slice).
	if err := writeChunked(w.w, rec, w.version >= 2, nil); err != nil {
		// The server ended the call; its status says why.
		if errors.Is(err, io.EOF) {
			return w.finish()
		}
		return fromStatus(err)
	}
	w.rows += rec.NumRows()
	w.sent = true
	return nil
}

// Flush asks the sink to make what it received durable and waits for its
// acknowledgement. Version 1 servers cannot flush: it returns a nil
// position, meaning durable only at Close.
func (w *remoteWriter) Flush(ctx context.Context) (protocol.Position, error) {
	if w.version < 2 {
		return nil, nil
	}
	if w.rows == w.durable {
		return w.pos, nil // nothing new (and before any data, no schema sent yet)
	}
	return w.flush(ctx, nil)
}

// FlushCheckpoint asks the sink to commit what it received with cp. It
// is sent even when no row was written since the last flush (the
// positions in cp moved on); before any batch, an empty one carries the
// schema and the descriptor the server opens the sink with.
func (w *remoteWriter) FlushCheckpoint(ctx context.Context, cp protocol.Checkpoint) (protocol.Position, error) {
	if w.version < 2 {
		return nil, fmt.Errorf("the plugin speaks protocol version %d, which cannot record checkpoints: %w", w.version, protocol.ErrConfig)
	}
	if !w.sent {
		cols := emptyColumns(w.schema, w.mem)
		empty := array.NewRecordBatch(w.schema, cols, 0)
		for _, c := range cols {
			c.Release()
		}
		err := w.Write(ctx, empty)
		empty.Release()
		if err != nil {
			return nil, err
		}
	}
	return w.flush(ctx, &cp)
}

func emptyColumns(schema *arrow.Schema, mem memory.Allocator) []arrow.Array {
	cols := make([]arrow.Array, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(mem, f.Type, 0)
	}
	return cols
}

func (w *remoteWriter) flush(ctx context.Context, cp *protocol.Checkpoint) (protocol.Position, error) {
	w.seq++
	b, err := json.Marshal(appMetadata{Flush: w.seq, Checkpoint: cp})
	if err != nil {
		return nil, err
	}
	if err := w.w.WriteMetadata(b); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, w.finish()
		}
		return nil, fromStatus(err)
	}
	for {
		res, err := w.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("sink ended the stream without acknowledging flush %d: %w", w.seq, protocol.ErrTemporary)
		}
		if err != nil {
			return nil, fromStatus(err)
		}
		var meta appMetadata
		if err := json.Unmarshal(res.GetAppMetadata(), &meta); err != nil {
			return nil, fmt.Errorf("decode acknowledgement: %w", err)
		}
		if meta.Ack != w.seq {
			continue
		}
		if meta.Rows != w.rows {
			return nil, fmt.Errorf("sink acknowledged %d durable rows, %d were sent", meta.Rows, w.rows)
		}
		w.durable, w.pos = w.rows, meta.Position
		return w.pos, nil
	}
}

// finish waits for the server's verdict after it stopped reading.
func (w *remoteWriter) finish() error {
	defer w.done()
	defer w.cancel()
	for {
		res, err := w.stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("sink ended the stream without acknowledging")
		}
		if err != nil {
			return fromStatus(err)
		}
		var meta appMetadata
		if err := json.Unmarshal(res.GetAppMetadata(), &meta); err != nil {
			return fmt.Errorf("decode acknowledgement: %w", err)
		}
		if meta.Ack != 0 {
			continue // a flush acknowledgement nobody waited for
		}
		if meta.Rows != w.rows {
			return fmt.Errorf("sink acknowledged %d rows, %d were sent", meta.Rows, w.rows)
		}
		w.dead = meta.DeadLettered
		if w.ring != nil {
			// The handler returned once the status follows: the ring
			// may serve another call.
			_, err := w.stream.Recv()
			// Not reused while the plugin holds bodies read in place.
			w.ended = errors.Is(err, io.EOF) && len(w.stream.Trailer().Get(ringHeldKey)) == 0
		}
		return nil
	}
}

func (w *remoteWriter) Close(ctx context.Context) error {
	if err := w.w.Close(); err != nil && !errors.Is(err, io.EOF) {
		w.cancel()
		w.done()
		return fromStatus(err)
	}
	if err := w.stream.CloseSend(); err != nil {
		w.cancel()
		w.done()
		return fromStatus(err)
	}
	return w.finish()
}

func (w *remoteWriter) Abort(ctx context.Context) error {
	w.cancel()
	w.done()
	return nil
}
