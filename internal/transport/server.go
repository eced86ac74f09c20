package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/metadata"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// flightServer serves the connectors of a Registry as an Arrow Flight service.
// It is what runs inside a plugin process; tests may also run it in-process.
type flightServer struct {
	flight.BaseFlightServer
	reg     *protocol.Registry
	mem     memory.Allocator
	log     *slog.Logger
	version int
	rings   *ringCache // the shared memory rings hosts offered
}

func newServer(reg *protocol.Registry, mem memory.Allocator, log *slog.Logger, version int) *flightServer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if mem == nil {
		mem = memory.NewGoAllocator()
	}
	s := &flightServer{reg: reg, mem: mem, log: log, version: version, rings: &ringCache{}}
	// Unmap the rings of a server dropped (tests; a plugin process exits).
	runtime.AddCleanup(s, (*ringCache).close, s.rings)
	return s
}

// prepare decodes a request, finds its connector and checks its options.
func (s *flightServer) prepare(raw []byte) (protocol.Config, protocol.Connector, error) {
	cfg, err := decodeConfig(raw, s.mem)
	if err != nil {
		return cfg, nil, err
	}
	c, err := s.reg.Get(cfg.Connector)
	if err != nil {
		return cfg, nil, err
	}
	opts, err := c.Spec().Check(cfg.Options)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Options = opts
	return cfg, c, nil
}

func (s *flightServer) source(raw []byte) (protocol.Config, protocol.Source, error) {
	cfg, c, err := s.prepare(raw)
	if err != nil {
		return cfg, nil, err
	}
	src, ok := c.(protocol.Source)
	if !ok {
		return cfg, nil, fmt.Errorf("connector %q is not a source: %w", cfg.Connector, protocol.ErrConfig)
	}
	return cfg, src, nil
}

func (s *flightServer) sink(raw []byte) (protocol.Config, protocol.Sink, error) {
	cfg, c, err := s.prepare(raw)
	if err != nil {
		return cfg, nil, err
	}
	snk, ok := c.(protocol.Sink)
	if !ok {
		return cfg, nil, fmt.Errorf("connector %q is not a sink: %w", cfg.Connector, protocol.ErrConfig)
	}
	return cfg, snk, nil
}

// DoAction serves spec, specs and validate.
func (s *flightServer) DoAction(a *flight.Action, stream flight.FlightService_DoActionServer) error {
	var body any
	switch a.Type {
	case actionSpecs:
		body = s.reg.Specs()
	case actionSpec:
		var req struct {
			Connector string `json:"connector"`
		}
		if err := json.Unmarshal(a.Body, &req); err != nil {
			return toStatus(fmt.Errorf("decode spec request: %w: %w", err, protocol.ErrConfig))
		}
		c, err := s.reg.Get(req.Connector)
		if err != nil {
			return toStatus(err)
		}
		body = c.Spec()
	case actionValidate:
		cfg, c, err := s.prepare(a.Body)
		if err != nil {
			return toStatus(err)
		}
		switch c := c.(type) {
		case protocol.Sink:
			err = c.Validate(stream.Context(), cfg)
		case protocol.Source:
			_, err = c.Schema(stream.Context(), cfg)
		}
		if err != nil {
			return toStatus(err)
		}
		return nil
	case actionCheckpoint:
		cfg, c, err := s.prepare(a.Body)
		if err != nil {
			return toStatus(err)
		}
		cs, ok := c.(protocol.CheckpointSink)
		if !ok {
			return toStatus(fmt.Errorf("connector %q does not record checkpoints: %w", cfg.Connector, protocol.ErrConfig))
		}
		cp, err := cs.LastCheckpoint(stream.Context(), cfg)
		if err != nil {
			return toStatus(err)
		}
		body = cp
	default:
		return toStatus(fmt.Errorf("unknown action %q: %w", a.Type, protocol.ErrNotFound))
	}
	b, err := json.Marshal(body)
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&flight.Result{Body: b})
}

// GetSchema returns a source's schema for the config in the descriptor.
func (s *flightServer) GetSchema(ctx context.Context, d *flight.FlightDescriptor) (*flight.SchemaResult, error) {
	cfg, src, err := s.source(d.GetCmd())
	if err != nil {
		return nil, toStatus(err)
	}
	schema, err := src.Schema(ctx, cfg)
	if err != nil {
		return nil, toStatus(err)
	}
	return &flight.SchemaResult{Schema: flight.SerializeSchema(schema, s.mem)}, nil
}

// acceptRing maps the shared memory ring the host offers for the Arrow
// bodies of this call (gRPC metadata ringMetadataKey), if it offers one,
// and answers in the response header whether it is used. It returns nil
// when there is no offer or the ring cannot be used: the bodies then go
// inline. The caller releases a returned ring when the call is done.
func (s *flightServer) acceptRing(ctx context.Context, header func(metadata.MD) error) (*ring, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(ringMetadataKey)
	if len(v) != 1 {
		return nil, nil
	}
	r, err := s.rings.acquire(v[0])
	answer := "1"
	if err != nil {
		s.log.Debug("shared memory ring not used, Arrow bodies go inline", "err", err)
		r, answer = nil, "0"
	}
	if err := header(metadata.Pairs(ringMetadataKey, answer)); err != nil {
		if r != nil {
			s.rings.release(r)
		}
		return nil, err
	}
	return r, nil
}

// DoGet runs a source and streams what it reads.
func (s *flightServer) DoGet(t *flight.Ticket, stream flight.FlightService_DoGetServer) error {
	ctx := stream.Context()
	cfg, src, err := s.source(t.GetTicket())
	if err != nil {
		return toStatus(err)
	}
	if s.version < 2 {
		cfg.Resume = nil
	}
	e := &streamEmitter{stream: stream, mem: s.mem, tagged: s.version >= 2}
	r, err := s.acceptRing(ctx, stream.SetHeader)
	if err != nil {
		return toStatus(err)
	}
	if r != nil {
		defer s.rings.release(r) // after e.close: nothing writes there then
		e.ring = &ringWriter{r: r}
	}
	defer e.close()
	if err := src.Read(ctx, cfg, s.mem, e); err != nil {
		return toStatus(err)
	}
	if e.w == nil { // nothing read: the stream still carries the schema
		schema := cfg.Schema // the host's, not inferred once more
		if schema == nil {
			if schema, err = src.Schema(ctx, cfg); err != nil {
				return toStatus(err)
			}
		}
		e.start(schema)
	}
	return nil
}

// streamEmitter writes what a source emits to a DoGet stream.
type streamEmitter struct {
	mu     sync.Mutex
	stream flight.FlightService_DoGetServer
	mem    memory.Allocator
	w      *batchWriter
	tagged bool        // version 2: slices and positions in app_metadata
	ring   *ringWriter // the host's shared memory ring, if it offered one
}

func (e *streamEmitter) start(schema *arrow.Schema) {
	e.w = newBatchWriter(e.stream, schema, e.mem)
	e.w.pw.ring = e.ring
}

func (e *streamEmitter) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.w == nil {
		e.start(rec.Schema())
	}
	var last []byte
	if e.tagged && pos != nil {
		var err error
		if last, err = json.Marshal(appMetadata{Position: pos}); err != nil {
			return fmt.Errorf("encode position: %w", err)
		}
	}
	return writeChunked(e.w, rec, e.tagged, last)
}

func (e *streamEmitter) DeadLetter(ctx context.Context, rows []protocol.DeadLetter) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(appMetadata{DeadLetters: rows})
	if err != nil {
		return err
	}
	return e.stream.Send(&flight.FlightData{AppMetadata: b})
}

func (e *streamEmitter) close() {
	if e.w != nil {
		e.w.Close()
	}
}

// DoPut runs a sink over the batches of the stream. A flush request (a
// message without Arrow data whose app_metadata carries Flush) flushes the
// writer and is answered by a PutResult acknowledging the rows made durable
// and the position to resume from. The final PutResult is sent only after
// the sink's Close succeeded.
func (s *flightServer) DoPut(stream flight.FlightService_DoPutServer) error {
	ctx := stream.Context()
	var (
		w    protocol.Writer
		rows int64
	)
	mr := &messageReader{recv: stream.Recv, refs: 1, mem: s.mem}
	// The host writes into the ring once it has our answer.
	r, err := s.acceptRing(ctx, stream.SendHeader)
	if err != nil {
		return toStatus(err)
	}
	if r != nil {
		defer s.rings.release(r) // after the last read
		md, _ := metadata.FromIncomingContext(ctx)
		inPlace := len(md.Get(ringInPlaceKey)) == 1 && md.Get(ringInPlaceKey)[0] == "1"
		mr.ring = &ringReader{r: r, inPlace: inPlace}
		if inPlace {
			// After the reader and the last batch are released (defers
			// run last first): a body still held keeps the host from
			// giving the ring to another stream.
			defer func() {
				if r.inUse() {
					stream.SetTrailer(metadata.Pairs(ringHeldKey, "1"))
				}
			}()
		}
	}
	mr.onMeta = func(m appMetadata) error {
		if m.Flush == 0 {
			return nil
		}
		var pos protocol.Position
		if m.Checkpoint != nil {
			c, ok := w.(protocol.Checkpointer)
			if !ok {
				return fmt.Errorf("flush: the sink does not record checkpoints: %w", protocol.ErrConfig)
			}
			var err error
			if pos, err = c.FlushCheckpoint(ctx, *m.Checkpoint); err != nil {
				return fmt.Errorf("flush checkpoint %d: %w", m.Checkpoint.ID, err)
			}
		} else if f, ok := w.(protocol.Flusher); ok && w != nil {
			var err error
			if pos, err = f.Flush(ctx); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
		}
		b, err := json.Marshal(appMetadata{Ack: m.Flush, Position: pos, Rows: rows})
		if err != nil {
			return err
		}
		return stream.Send(&flight.PutResult{AppMetadata: b})
	}
	rdr, err := ipc.NewReaderFromMessageReader(mr, ipc.WithAllocator(s.mem))
	if err != nil {
		return toStatus(fmt.Errorf("read schema: %w", err))
	}
	defer rdr.Release()
	if mr.descr == nil {
		return toStatus(fmt.Errorf("first message carries no descriptor: %w", protocol.ErrConfig))
	}
	cfg, snk, err := s.sink(mr.descr.GetCmd())
	if err != nil {
		return toStatus(err)
	}
	if s.version < 2 {
		cfg.Resume = nil
	}
	w, err = snk.Open(ctx, cfg, s.mem, rdr.Schema())
	if err != nil {
		return toStatus(err)
	}
	// A batch the host sliced for gRPC reaches the sink whole.
	j := &sliceJoiner{mem: s.mem}
	defer j.release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if mr.last.More {
			j.hold(rec)
			continue
		}
		whole, err := j.join(rec)
		if err == nil {
			err = w.Write(ctx, whole)
			rows += whole.NumRows()
			whole.Release()
		}
		if err != nil {
			_ = w.Abort(ctx)
			return toStatus(err)
		}
	}
	if err := rdr.Err(); err != nil && !errors.Is(err, io.EOF) {
		_ = w.Abort(ctx)
		return toStatus(fmt.Errorf("receive batches: %w", err))
	}
	if j.held() > 0 {
		_ = w.Abort(ctx)
		return toStatus(fmt.Errorf("receive batches: the stream ended inside a batch: %w", protocol.ErrTemporary))
	}
	if err := w.Close(ctx); err != nil {
		return toStatus(err)
	}
	final := appMetadata{Final: true, Rows: rows}
	if c, ok := w.(protocol.DeadLetterCounter); ok {
		final.DeadLettered = c.DeadLettered()
	}
	b, _ := json.Marshal(final)
	return stream.Send(&flight.PutResult{AppMetadata: b})
}
