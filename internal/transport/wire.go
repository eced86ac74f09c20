package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/arrowmem"
)

// Transport limits. A batch is sliced so that the Arrow body of one gRPC
// message stays under messageTargetBytes, below gRPC's default 4 MiB limit
// (a third-party peer with default settings can still talk to us). Both
// ends also accept messages up to maxMessageBytes, for the rare single row
// larger than the target.
const (
	messageTargetBytes = 3 << 20
	maxMessageBytes    = 256 << 20
)

// Actions served through Flight's DoAction.
const (
	actionSpec     = "vigie.spec"     // body: {"connector": name} -> Spec
	actionSpecs    = "vigie.specs"    // body: none -> []Spec
	actionValidate = "vigie.validate" // body: Config -> nothing
	// body: Config -> *Checkpoint (CheckpointSink.LastCheckpoint)
	actionCheckpoint = "vigie.checkpoint"
)

// appMetadata is the JSON carried in FlightData.app_metadata and
// PutResult.app_metadata.
//
// Source (DoGet, server to host): a batch sliced into several messages
// carries More on every slice but the last; the last carries the source's
// Position after the batch. DeadLetters travel on messages without Arrow
// data. The host joins the slices and delivers the batch only when its last
// slice arrived, so a crash never leaves half a batch delivered. The host
// tags the slices of what it writes to a sink (DoPut) the same way, and
// the server joins them before the sink's Write.
//
// A body written to the shared memory ring (see ring.go) travels as an
// empty data_body and Ring, its place in the ring.
//
// Sink (DoPut): the host sends Flush (a sequence number, on a message
// without Arrow data), with a Checkpoint for Checkpointer.FlushCheckpoint;
// the server flushes the writer and answers with a
// PutResult carrying Ack (that number), Position and Rows (durable so
// far). After Close, the final PutResult carries Final and Rows.
type appMetadata struct {
	DeadLetters []protocol.DeadLetter `json:"dead_letters,omitempty"`
	More        bool                  `json:"more,omitempty"`
	Position    protocol.Position     `json:"position,omitempty"`
	Flush       int64                 `json:"flush,omitempty"`
	Checkpoint  *protocol.Checkpoint  `json:"checkpoint,omitempty"`
	Ack         int64                 `json:"ack,omitempty"`
	Final       bool                  `json:"final,omitempty"`
	Rows        int64                 `json:"rows,omitempty"`
	// DeadLettered, on the final PutResult, is what a sink's
	// protocol.DeadLetterCounter says after Close.
	DeadLettered int64    `json:"dead_lettered,omitempty"`
	Ring         *ringRef `json:"ring,omitempty"`
}

// wireConfig is a Config as it crosses the boundary: the schema as an
// Arrow IPC schema message.
type wireConfig struct {
	protocol.Config
	Schema []byte `json:"schema,omitempty"`
}

// encodeConfig serializes cfg; mem allocates the schema message while it
// is built.
func encodeConfig(cfg protocol.Config, mem memory.Allocator) ([]byte, error) {
	w := wireConfig{Config: cfg}
	if cfg.Schema != nil {
		w.Schema = flight.SerializeSchema(cfg.Schema, mem)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode config of stage %q: %w", cfg.Stage, err)
	}
	return b, nil
}

// decodeConfig reads a config that encodeConfig wrote; mem allocates the
// schema message while it is read.
func decodeConfig(b []byte, mem memory.Allocator) (protocol.Config, error) {
	var w wireConfig
	if err := json.Unmarshal(b, &w); err != nil {
		return w.Config, fmt.Errorf("decode request: %w: %w", err, protocol.ErrConfig)
	}
	if len(w.Schema) > 0 {
		schema, err := flight.DeserializeSchema(w.Schema, mem)
		if err != nil {
			return w.Config, fmt.Errorf("decode the schema of the request: %w: %w", err, protocol.ErrConfig)
		}
		w.Config.Schema = schema
	}
	return w.Config, nil
}

// moreMetadata marks a slice that is not the last of its batch.
var moreMetadata = []byte(`{"more":true}`)

// writeChunked writes rec as one message when it goes through the shared
// memory ring or is small, else as slices each under messageTargetBytes
// when rows allow it: only what goes inline in gRPC messages is sliced.
// With tagged set, every slice but the last carries moreMetadata and the
// last carries last (which may be nil), and the receiver joins the slices
// back into one batch (sliceJoiner), so that a batch keeps its size across
// the boundary; without, no slice carries metadata (protocol version 1).
func writeChunked(w *batchWriter, rec arrow.RecordBatch, tagged bool, last []byte) error {
	rows := rec.NumRows()
	size := arrowmem.BatchBytes(rec)
	if size <= messageTargetBytes || rows <= 1 || w.pw.ringWait(bodyBound(rec)) {
		return w.WriteWithAppMetadata(rec, last)
	}
	per := max(1, rows*messageTargetBytes/size)
	for off := int64(0); off < rows; off += per {
		end := min(off+per, rows)
		meta := last
		if end < rows && tagged {
			meta = moreMetadata
		}
		part := rec.NewSlice(off, end)
		err := w.WriteWithAppMetadata(part, meta)
		part.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// bodyBound is at least the size of rec's Arrow IPC body: every buffer,
// padded to 64 bytes, plus room for a validity bitmap the writer rebuilds
// for a sliced array.
func bodyBound(rec arrow.RecordBatch) int {
	var n int
	var walk func(d arrow.ArrayData)
	walk = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += b.Len() + 128
			}
		}
		for _, c := range d.Children() {
			walk(c)
		}
		if d.DataType().ID() == arrow.DICTIONARY {
			walk(d.Dictionary())
		}
	}
	for _, col := range rec.Columns() {
		walk(col.Data())
	}
	return n
}

// sliceJoiner puts back together the slices of a batch a peer sent as
// several messages (writeChunked), so that what a source emits or a sink
// receives has the size the other side gave it.
type sliceJoiner struct {
	mem     memory.Allocator
	pending []arrow.RecordBatch
}

// hold keeps rec (borrowed; it is retained) as a slice that is not the last.
func (j *sliceJoiner) hold(rec arrow.RecordBatch) {
	rec.Retain()
	j.pending = append(j.pending, rec)
}

// join returns the batch whose last slice is rec (borrowed): rec itself
// when nothing is held, else the held slices and rec concatenated into
// memory from mem. The caller releases the result.
func (j *sliceJoiner) join(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(j.pending) == 0 {
		rec.Retain()
		return rec, nil
	}
	parts := append(j.pending, rec)
	defer j.release()
	mem := j.mem
	schema := rec.Schema()
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, p := range parts {
		if !p.Schema().Equal(schema) {
			return nil, fmt.Errorf("slices of one batch have different schemas")
		}
		rows += p.NumRows()
	}
	arrs := make([]arrow.Array, len(parts))
	for i := range cols {
		for k, p := range parts {
			arrs[k] = p.Column(i)
		}
		c, err := array.Concatenate(arrs, mem)
		if err != nil {
			return nil, fmt.Errorf("join the slices of a batch: column %q: %w", schema.Field(i).Name, err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(schema, cols, rows), nil
}

// held is the number of slices held for a batch not yet complete.
func (j *sliceJoiner) held() int { return len(j.pending) }

// release drops the slices held.
func (j *sliceJoiner) release() {
	for _, p := range j.pending {
		p.Release()
	}
	j.pending = j.pending[:0]
}

// messageReader feeds the Arrow IPC messages of a FlightData stream to an
// ipc.Reader and hands metadata-only messages to onMeta. The metadata of
// the last data message returned is in last.
type messageReader struct {
	recv   func() (*flight.FlightData, error)
	onMeta func(appMetadata) error
	descr  *flight.FlightDescriptor
	msg    *ipc.Message
	refs   int64
	last   appMetadata
	// ring, if set, is the shared memory ring bodies may come through;
	// they are copied out into buffers from mem.
	ring *ringReader
	mem  memory.Allocator
}

func (m *messageReader) Message() (*ipc.Message, error) {
	for {
		fd, err := m.recv()
		if err != nil {
			return nil, err
		}
		if fd.FlightDescriptor != nil {
			m.descr = fd.FlightDescriptor
		}
		var meta appMetadata
		if len(fd.AppMetadata) > 0 {
			if err := json.Unmarshal(fd.AppMetadata, &meta); err != nil {
				return nil, fmt.Errorf("decode app_metadata: %w", err)
			}
		}
		if len(fd.DataHeader) == 0 {
			if len(fd.AppMetadata) > 0 && m.onMeta != nil {
				if err := m.onMeta(meta); err != nil {
					return nil, err
				}
			}
			continue
		}
		body, err := m.body(fd, meta.Ring)
		if err != nil {
			return nil, err
		}
		meta.Ring = nil
		m.last = meta
		if m.msg != nil {
			m.msg.Release()
		}
		m.msg = ipc.NewMessage(memory.NewBufferBytes(fd.DataHeader), body)
		body.Release() // the message holds it
		return m.msg, nil
	}
}

// body returns the Arrow body of fd: its data_body, or the bytes ref
// points to in the ring, copied out.
func (m *messageReader) body(fd *flight.FlightData, ref *ringRef) (*memory.Buffer, error) {
	if ref == nil {
		if n := len(fd.DataBody); n > 0 {
			stats.inlineBodies.Add(1)
			stats.inlineBytes.Add(int64(n))
		}
		return memory.NewBufferBytes(fd.DataBody), nil
	}
	if m.ring == nil {
		return nil, fmt.Errorf("message refers to a shared memory ring, none was negotiated")
	}
	if len(fd.DataBody) > 0 {
		return nil, fmt.Errorf("message has both a data_body and a shared memory ring reference")
	}
	mem := m.mem
	// A dictionary stays with the IPC reader for the whole stream: read
	// in place, it would hold the ring's head back as long.
	copy := m.ring.inPlace && ipc.NewMessage(memory.NewBufferBytes(fd.DataHeader), noBody).Type() != ipc.MessageRecordBatch
	buf, err := m.ring.take(ref.Off, ref.Len, mem, copy)
	if err != nil {
		return nil, err
	}
	stats.ringBodies.Add(1)
	stats.ringBytes.Add(int64(ref.Len))
	return buf, nil
}

// noBody is the empty body of a message built only to read its type.
var noBody = memory.NewBufferBytes(nil)

func (m *messageReader) Retain() { m.refs++ }

func (m *messageReader) Release() {
	m.refs--
	if m.refs <= 0 && m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
}

// batchWriter writes record batches to a Flight stream (DoGet server side,
// DoPut client side) as flight.Writer does, except that the Arrow buffers
// are handed to gRPC as they are instead of being copied into one body
// (see flightCodec). The batch being written is retained until gRPC has
// written its buffers out. Temporary buffers the IPC writer makes (rebased
// offsets of sliced arrays) come from the Go allocator, so they stay valid
// for as long as gRPC holds them.
type batchWriter struct {
	w  *ipc.Writer
	pw *payloadWriter
}

type msgSender interface {
	SendMsg(any) error
}

type payloadWriter struct {
	s     msgSender
	descr *flight.FlightDescriptor
	meta  []byte
	rec   arrow.RecordBatch
	body  bodyParts
	ring  *ringWriter // bodies go there when it has room
	// ringOK, if set, says when ring may be used (the peer accepted it).
	ringOK *atomic.Bool
	// stalled says that the last wait for room in the ring ran out:
	// bodies go inline without waiting until one fits again.
	stalled bool
	// noRetain copies inline bodies instead of handing gRPC the batch's
	// buffers: gRPC does not free the buffers of a stream whose
	// connection died, which kept such batches retained for ever.
	noRetain bool
}

func newBatchWriter(s msgSender, schema *arrow.Schema, mem memory.Allocator) *batchWriter {
	pw := &payloadWriter{s: s}
	return &batchWriter{w: ipc.NewWriterWithPayloadWriter(pw, ipc.WithSchema(schema), ipc.WithAllocator(mem)), pw: pw}
}

func (p *payloadWriter) Start() error { return nil }
func (p *payloadWriter) Close() error { return nil }

func (p *payloadWriter) WritePayload(payload ipc.Payload) error {
	m := payload.Meta()
	defer m.Release()
	p.body.parts, p.body.n = p.body.parts[:0], 0
	if err := payload.SerializeBody(&p.body); err != nil {
		return err
	}
	if p.ring != nil && p.body.n > 0 && (p.ringOK == nil || p.ringOK.Load()) {
		off, ok := p.ring.write(p.body.parts, p.body.n)
		if ok {
			p.stalled = false
		} else if p.ringWait(p.body.n) {
			// The reader freed room: the body waited for it rather than
			// going inline (see ringWait).
			off, ok = p.ring.write(p.body.parts, p.body.n)
		}
		if ok {
			clear(p.body.parts)
			fd := &flight.FlightData{FlightDescriptor: p.descr, DataHeader: m.Bytes(), AppMetadata: appendRingRef(p.meta, off, p.body.n)}
			p.descr = nil
			return p.s.SendMsg(fd)
		}
	}
	out := &outData{descr: p.descr, header: m.Bytes(), meta: p.meta, body: p.body.parts, bodySize: p.body.n}
	if rec := p.rec; rec != nil && p.body.n > 0 && !p.noRetain {
		rec.Retain()
		var once sync.Once
		out.release = func() { once.Do(rec.Release) }
	}
	p.descr = nil
	err := p.s.SendMsg(out)
	if !out.marshaled && out.release != nil {
		out.release() // gRPC never took the buffers
	}
	clear(p.body.parts) // drop references to the batch's memory
	return err
}

// maxRingWait bounds how long a body waits for room in the ring while the
// reader frees none before it goes inline (a batch too big for one gRPC
// message is then sliced).
var maxRingWait = 200 * time.Millisecond

// ringWait says whether a body of n bytes would go through the shared
// memory ring now, waiting for the reader to free room: the bodies it
// frees were sent already, so this is the same backpressure a full gRPC
// window applies. While the reader has bodies still to read (hdrRead), it
// is behind and the wait lasts until it frees room or the stream ends, as
// a full gRPC window would. Once it has read everything and still frees
// nothing, it holds what it read in place (a stage keeping every batch,
// inplace.go): the wait then ends after maxRingWait without progress, and
// bodies go inline, without waiting again until one fits. A reader that
// predates hdrRead gets the bounded wait.
//
// Every body waits, not only those too big for one message: a body sent
// inline because the reader was behind costs more copies on both sides,
// and the reader's gRPC buffers held up to the 64 MiB window of such
// bodies (35 MB of the engine's heap at its peak on the 10M-row attendance
// benchmark, where the engine reads slower than the CSV plugin parses); a
// whole batch through the ring also saves the receiver joining slices
// sent inline.
func (p *payloadWriter) ringWait(n int) bool {
	if p.ring == nil || (p.ringOK != nil && !p.ringOK.Load()) || n > int(p.ring.r.cap) {
		return false
	}
	if p.ring.fits(n) {
		p.stalled = false
		return true
	}
	if p.stalled {
		return false
	}
	var done <-chan struct{}
	if s, ok := p.s.(interface{ Context() context.Context }); ok {
		done = s.Context().Done()
	}
	head, _, _ := p.ring.head()
	deadline := time.Now().Add(maxRingWait)
	for wait := 20 * time.Microsecond; ; wait = min(2*wait, time.Millisecond) {
		select {
		case <-done:
			return false // the send fails and says why
		case <-time.After(wait):
		}
		if p.ring.fits(n) {
			return true
		}
		h, read, ok := p.ring.head()
		switch {
		case !ok:
			return false
		case h != head:
			head, deadline = h, time.Now().Add(maxRingWait) // progress
		case read != 0 && read < p.ring.end:
			deadline = time.Now().Add(maxRingWait) // behind in its reading
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	p.stalled = true
	ringWaitsRanOut.Add(1)
	return false
}

// ringWaitsRanOut counts the waits for room in a ring that ran out, in
// this process (tests).
var ringWaitsRanOut atomic.Int64

// SetFlightDescriptor sets the descriptor of the next message.
func (w *batchWriter) SetFlightDescriptor(d *flight.FlightDescriptor) { w.pw.descr = d }

// WriteWithAppMetadata writes rec with meta in app_metadata.
func (w *batchWriter) WriteWithAppMetadata(rec arrow.RecordBatch, meta []byte) error {
	w.pw.rec, w.pw.meta = rec, meta
	defer func() { w.pw.rec, w.pw.meta = nil, nil }()
	return w.w.Write(rec)
}

// WriteMetadata sends a message carrying only app_metadata.
func (w *batchWriter) WriteMetadata(meta []byte) error {
	return w.pw.s.SendMsg(&flight.FlightData{AppMetadata: meta})
}

// Close writes the end-of-stream marker.
func (w *batchWriter) Close() error { return w.w.Close() }
