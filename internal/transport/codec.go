package transport

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec we delegate to, before ours
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The gRPC codec of Vigie processes. Arrow data crosses the plugin boundary
// as Flight FlightData messages whose data_body is most of the bytes; the
// standard proto codec copies it twice on each side (proto.Marshal into a
// buffer, and on receipt the materialised message, then proto.Unmarshal
// into a fresh zeroed slice). This codec, registered under the name "proto"
// so that peers see the standard content type, encodes FlightData by hand
// and delegates every other message (go-plugin's broker, stdio and
// controller services; Flight's actions, tickets, schemas, PutResults) to
// the standard codec:
//
//   - Marshal of a *flight.FlightData copies the message once into one
//     buffer (the caller may reuse DataBody as soon as Send returns).
//   - Marshal of an *outData (what our batchWriter sends) copies only the
//     small fields and the Arrow buffers under mem.BufferPoolingThreshold:
//     the large Arrow buffers are handed to gRPC as they are, and the
//     record batch they belong to stays retained until gRPC has written
//     them out (it frees the buffers then, or when the stream dies).
//   - Unmarshal of a *flight.FlightData copies the received bytes once,
//     into memory that is not zeroed first, and aliases data_header,
//     app_metadata and data_body into it. Unknown fields are kept.
//
// The wire format is exactly proto.Marshal's (fields in number order,
// unknown fields last), so third-party peers with the standard codec
// understand us. An init registers it: the host and every plugin process
// import this package.
type flightCodec struct {
	fallback encoding.CodecV2
}

func init() {
	std := encoding.GetCodecV2("proto")
	if std == nil {
		panic("protocol: gRPC's proto codec is not registered")
	}
	if _, ok := std.(flightCodec); ok {
		return
	}
	encoding.RegisterCodecV2(flightCodec{fallback: std})
}

// FlightData field numbers (arrow/format/Flight.proto).
const (
	fdDescriptor protowire.Number = 1
	fdHeader     protowire.Number = 2
	fdMetadata   protowire.Number = 3
	fdBody       protowire.Number = 1000
)

func (flightCodec) Name() string { return "proto" }

func (c flightCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *outData:
		return m.marshal()
	case *flight.FlightData:
		return marshalFlightData(m)
	}
	return c.fallback.Marshal(v)
}

func (c flightCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*flight.FlightData); ok {
		return unmarshalFlightData(materialize(data), m)
	}
	return c.fallback.Unmarshal(data, v)
}

// appendPrefix appends the fields before data_body.
func appendPrefix(b []byte, descr []byte, hasDescr bool, header, meta []byte) []byte {
	if hasDescr {
		b = protowire.AppendTag(b, fdDescriptor, protowire.BytesType)
		b = protowire.AppendBytes(b, descr)
	}
	if len(header) > 0 {
		b = protowire.AppendTag(b, fdHeader, protowire.BytesType)
		b = protowire.AppendBytes(b, header)
	}
	if len(meta) > 0 {
		b = protowire.AppendTag(b, fdMetadata, protowire.BytesType)
		b = protowire.AppendBytes(b, meta)
	}
	return b
}

func prefixSize(descr []byte, hasDescr bool, header, meta []byte, body int) int {
	n := 0
	if hasDescr {
		n += protowire.SizeTag(fdDescriptor) + protowire.SizeBytes(len(descr))
	}
	if len(header) > 0 {
		n += protowire.SizeTag(fdHeader) + protowire.SizeBytes(len(header))
	}
	if len(meta) > 0 {
		n += protowire.SizeTag(fdMetadata) + protowire.SizeBytes(len(meta))
	}
	if body > 0 {
		n += protowire.SizeTag(fdBody) + protowire.SizeVarint(uint64(body))
	}
	return n
}

func marshalDescriptor(d *flight.FlightDescriptor) ([]byte, bool, error) {
	if d == nil {
		return nil, false, nil
	}
	b, err := proto.Marshal(d)
	return b, true, err
}

// marshalFlightData copies m once into a single buffer.
func marshalFlightData(m *flight.FlightData) (mem.BufferSlice, error) {
	descr, hasDescr, err := marshalDescriptor(m.FlightDescriptor)
	if err != nil {
		return nil, err
	}
	unknown := m.ProtoReflect().GetUnknown()
	size := prefixSize(descr, hasDescr, m.DataHeader, m.AppMetadata, len(m.DataBody)) + len(m.DataBody) + len(unknown)
	var buf *[]byte
	pool := bufferPool
	if mem.IsBelowBufferPoolingThreshold(size) {
		b := make([]byte, 0, size)
		buf = &b
	} else {
		buf = pool.Get(size)
		*buf = (*buf)[:0]
	}
	b := appendPrefix(*buf, descr, hasDescr, m.DataHeader, m.AppMetadata)
	if len(m.DataBody) > 0 {
		b = protowire.AppendTag(b, fdBody, protowire.BytesType)
		b = protowire.AppendBytes(b, m.DataBody)
	}
	b = append(b, unknown...)
	*buf = b
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// outData is a FlightData message whose Arrow body is a list of slices of
// the buffers of a record batch, written without being copied together.
// release, if set, is called once gRPC no longer needs the slices (or
// never got them: see batchWriter).
type outData struct {
	descr     *flight.FlightDescriptor
	header    []byte
	meta      []byte
	body      [][]byte
	bodySize  int
	release   func()
	marshaled bool
}

// keeper is the mem.BufferPool of the large body slices of one outData:
// gRPC "returns" them to it when done; after the last, the batch is
// released.
type keeper struct {
	n       atomic.Int64
	release func()
}

func (k *keeper) Get(int) *[]byte { panic("protocol: keeper cannot allocate") }

func (k *keeper) Put(*[]byte) {
	if k.n.Add(-1) == 0 {
		k.release()
	}
}

func (m *outData) marshal() (mem.BufferSlice, error) {
	m.marshaled = true
	descr, hasDescr, err := marshalDescriptor(m.descr)
	if err != nil {
		if m.release != nil {
			m.release()
		}
		return nil, err
	}
	size := prefixSize(descr, hasDescr, m.header, m.meta, m.bodySize) + 256
	if m.release == nil {
		size += m.bodySize // copied whole
	}
	small := make([]byte, 0, size)
	small = appendPrefix(small, descr, hasDescr, m.header, m.meta)
	if m.bodySize > 0 {
		small = protowire.AppendTag(small, fdBody, protowire.BytesType)
		small = protowire.AppendVarint(small, uint64(m.bodySize))
	}
	var (
		out mem.BufferSlice
		k   *keeper
	)
	if m.release != nil {
		k = &keeper{release: m.release}
		k.n.Store(1) // ours, dropped below: no release before all are handed over
	}
	for _, p := range m.body {
		if k == nil || mem.IsBelowBufferPoolingThreshold(len(p)) {
			small = append(small, p...)
			continue
		}
		if len(small) > 0 {
			out = append(out, mem.SliceBuffer(small))
			small = nil
		}
		k.n.Add(1)
		p := p
		out = append(out, mem.NewBuffer(&p, k))
	}
	if len(small) > 0 {
		out = append(out, mem.SliceBuffer(small))
	}
	if k != nil {
		k.Put(nil)
	}
	return out, nil
}

var errInvalidWire = errors.New("proto: cannot parse invalid wire-format data")

// materialize copies data into one new slice, without zeroing it first
// (strings.Builder allocates without zeroing; the bytes are ours alone, so
// writing them through a []byte is sound).
func materialize(data mem.BufferSlice) []byte {
	n := data.Len()
	if n == 0 {
		return nil
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, b := range data {
		sb.Write(b.ReadOnlyData())
	}
	s := sb.String()
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// unmarshalFlightData parses b into m, aliasing the bytes fields into b.
func unmarshalFlightData(b []byte, m *flight.FlightData) error {
	m.Reset()
	var unknown []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", errInvalidWire, protowire.ParseError(n))
		}
		field := b
		if typ == protowire.BytesType && (num == fdDescriptor || num == fdHeader || num == fdMetadata || num == fdBody) {
			v, vn := protowire.ConsumeBytes(b[n:])
			if vn < 0 {
				return fmt.Errorf("%w: %v", errInvalidWire, protowire.ParseError(vn))
			}
			v = v[:len(v):len(v)]
			switch num {
			case fdDescriptor:
				if m.FlightDescriptor == nil {
					m.FlightDescriptor = &flight.FlightDescriptor{}
				}
				if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(v, m.FlightDescriptor); err != nil {
					return err
				}
			case fdHeader:
				m.DataHeader = v
			case fdMetadata:
				m.AppMetadata = v
			case fdBody:
				m.DataBody = v
			}
			b = b[n+vn:]
			continue
		}
		if !num.IsValid() {
			return errInvalidWire
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			return fmt.Errorf("%w: %v", errInvalidWire, protowire.ParseError(vn))
		}
		// The tag is re-encoded minimally, as proto.Unmarshal does.
		unknown = protowire.AppendTag(unknown, num, typ)
		unknown = append(unknown, field[n:n+vn]...)
		b = b[n+vn:]
	}
	if len(unknown) > 0 {
		m.ProtoReflect().SetUnknown(unknown)
	}
	return nil
}

// bodyParts collects the slices ipc.Payload.SerializeBody writes, without
// copying them.
type bodyParts struct {
	parts [][]byte
	n     int
}

func (p *bodyParts) Write(b []byte) (int, error) {
	if len(b) > 0 {
		p.parts = append(p.parts, b)
		p.n += len(b)
	}
	return len(b), nil
}

// dirtyPool is the gRPC buffer pool of our connections: like gRPC's
// default pool, but it does not zero the buffers it hands out again (every
// user, the transport reading a frame or a codec marshalling, overwrites
// what it asked for). gRPC's default pool clears each reused buffer, which
// cost about 6 % of the host's CPU receiving Arrow data.
type dirtyPool struct {
	classes [dirtyMaxClass + 1]sync.Pool
}

const dirtyMaxClass = 24 // 16 MiB; larger buffers are allocated each time

var bufferPool mem.BufferPool = &dirtyPool{}

func (p *dirtyPool) Get(size int) *[]byte {
	c := bits.Len(uint(size - 1))
	if size <= 0 || c > dirtyMaxClass {
		b := make([]byte, size)
		return &b
	}
	if v, ok := p.classes[c].Get().(*[]byte); ok {
		*v = (*v)[:size]
		return v
	}
	b := make([]byte, size, 1<<c)
	return &b
}

func (p *dirtyPool) Put(b *[]byte) {
	n := cap(*b)
	if n == 0 || n&(n-1) != 0 {
		return
	}
	if c := bits.Len(uint(n - 1)); c <= dirtyMaxClass {
		p.classes[c].Put(b)
	}
}
