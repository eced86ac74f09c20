package transport

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func randBytes(r *rand.Rand, max int) []byte {
	if r.IntN(4) == 0 {
		return nil
	}
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randFlightData(r *rand.Rand) *flight.FlightData {
	fd := &flight.FlightData{
		DataHeader:  randBytes(r, 300),
		AppMetadata: randBytes(r, 50),
		DataBody:    randBytes(r, 5000),
	}
	if r.IntN(2) == 0 {
		fd.FlightDescriptor = &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: randBytes(r, 40), Path: []string{"a", "b"}[:r.IntN(3)]}
	}
	if r.IntN(3) == 0 { // unknown fields of each wire type
		var u []byte
		u = protowire.AppendTag(u, 17, protowire.VarintType)
		u = protowire.AppendVarint(u, r.Uint64())
		u = protowire.AppendTag(u, 18, protowire.BytesType)
		u = protowire.AppendBytes(u, randBytes(r, 30))
		u = protowire.AppendTag(u, 19, protowire.Fixed64Type)
		u = protowire.AppendFixed64(u, r.Uint64())
		u = protowire.AppendTag(u, 2000, protowire.Fixed32Type)
		u = protowire.AppendFixed32(u, r.Uint32())
		fd.ProtoReflect().SetUnknown(u)
	}
	return fd
}

// split cuts b into a BufferSlice of random pieces, as gRPC hands frames.
func split(r *rand.Rand, b []byte) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		n := min(len(b), 1+r.IntN(2000))
		s = append(s, mem.SliceBuffer(bytes.Clone(b[:n])))
		b = b[n:]
	}
	return s
}

// The codec registered as "proto" writes what proto.Marshal writes and
// reads it back equal, FlightData or not, unknown fields included.
func TestCodecMatchesProto(t *testing.T) {
	codec := encoding.GetCodecV2("proto")
	if _, ok := codec.(flightCodec); !ok {
		t.Fatalf("registered proto codec is %T", codec)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		fd := randFlightData(r)
		want, err := proto.Marshal(fd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.Marshal(fd)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Materialize(), want) {
			t.Fatalf("%d: Marshal differs from proto.Marshal", i)
		}
		got.Free()
		back := &flight.FlightData{}
		if err := codec.Unmarshal(split(r, want), back); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !proto.Equal(fd, back) {
			t.Fatalf("%d: round trip: %v != %v", i, back, fd)
		}
		// outData (batch slices) encodes the same bytes.
		var parts [][]byte
		for b := fd.DataBody; len(b) > 0; {
			n := min(len(b), r.IntN(3000))
			parts = append(parts, b[:n])
			b = b[n:]
		}
		if len(fd.ProtoReflect().GetUnknown()) == 0 {
			released := false
			od := &outData{descr: fd.FlightDescriptor, header: fd.DataHeader, meta: fd.AppMetadata, body: parts, bodySize: len(fd.DataBody), release: func() { released = true }}
			s, err := codec.Marshal(od)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.Materialize(), want) {
				t.Fatalf("%d: outData differs from proto.Marshal", i)
			}
			s.Free()
			if !released {
				t.Fatalf("%d: batch not released after gRPC freed the buffers", i)
			}
		}
	}
	// Other messages are delegated.
	a := &flight.Action{Type: "x", Body: []byte("y")}
	s, err := codec.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var b flight.Action
	if err := codec.Unmarshal(s, &b); err != nil || !proto.Equal(a, &b) {
		t.Fatalf("action: %v %v", err, &b)
	}
}

// A FlightData whose known fields come with another wire type keeps them
// as unknown fields, as proto.Unmarshal does; invalid input fails.
func TestCodecOddWire(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, fdBody, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, fdHeader, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("h"))
	want := &flight.FlightData{}
	if err := proto.Unmarshal(b, want); err != nil {
		t.Fatal(err)
	}
	got := &flight.FlightData{}
	if err := unmarshalFlightData(b, got); err != nil || !proto.Equal(got, want) {
		t.Fatalf("%v: %v != %v", err, got, want)
	}
	for _, bad := range [][]byte{{0x0a}, {0x0a, 0x05, 1}, {0x00}, {0xc2, 0x3e, 0x80}} {
		if err := unmarshalFlightData(bad, &flight.FlightData{}); err == nil {
			t.Errorf("%x: no error", bad)
		}
		if err := proto.Unmarshal(bad, &flight.FlightData{}); err == nil {
			t.Errorf("%x: proto accepts it", bad)
		}
	}
}

func FuzzCodecUnmarshal(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		b, _ := proto.Marshal(randFlightData(r))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &flight.FlightData{}
		werr := proto.Unmarshal(b, want)
		got := &flight.FlightData{}
		gerr := unmarshalFlightData(bytes.Clone(b), got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto: %v, codec: %v", werr, gerr)
		}
		if werr == nil && !proto.Equal(got, want) {
			t.Fatalf("%v != %v", got, want)
		}
	})
}
