//go:build linux

package transport

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// blocks is the memory behind an open ring file, in bytes.
func blocks(t *testing.T, f *os.File) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// A ring the peer is done with gives its pages back once it stayed unused
// in the pool, or when it is unmapped; one taken again before that keeps
// them, and one a peer may still read from (not reusable) keeps them too.
func TestRingPagesDropped(t *testing.T) {
	old := ringIdleDrop
	ringIdleDrop = 50 * time.Millisecond
	t.Cleanup(func() { ringIdleDrop = old })
	const size = 4 << 20
	// take returns a ring of the pool with every page written, and the
	// ring's file held open so that its memory can be measured after the
	// ring is unlinked.
	take := func(p *ringPool) (*ring, *os.File) {
		t.Helper()
		r := p.get()
		if r == nil {
			t.Skip("no shared memory rings here")
		}
		f, err := os.Open(r.name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		for i := range r.data {
			r.data[i] = 1
		}
		if got := blocks(t, f); got < size {
			t.Fatalf("ring holds %d bytes after writing %d", got, size)
		}
		return r, f
	}
	settle := func() { time.Sleep(4 * ringIdleDrop) }

	t.Run("idle in the pool", func(t *testing.T) {
		p := &ringPool{size: size}
		defer p.close()
		r, f := take(p)
		p.put(r, true)
		settle()
		if got := blocks(t, f); got >= size/2 {
			t.Errorf("idle ring still holds %d bytes", got)
		}
	})
	t.Run("taken again", func(t *testing.T) {
		p := &ringPool{size: size}
		defer p.close()
		r, f := take(p)
		p.put(r, true)
		if again := p.get(); again != r {
			t.Fatalf("pool gave another ring")
		}
		settle()
		if got := blocks(t, f); got < size {
			t.Errorf("ring in use lost its pages: %d bytes left", got)
		}
		p.put(r, true)
	})
	t.Run("pool full", func(t *testing.T) {
		p := &ringPool{size: size}
		defer p.close()
		var rings []*ring
		var files []*os.File
		for range keptRings + 1 {
			r, f := take(p)
			rings, files = append(rings, r), append(files, f)
		}
		for _, r := range rings {
			p.put(r, true)
		}
		// The last one did not fit: unmapped at once, its pages freed.
		if got := blocks(t, files[keptRings]); got >= size/2 {
			t.Errorf("ring unmapped from a full pool still holds %d bytes", got)
		}
	})
	t.Run("peer may hold bodies", func(t *testing.T) {
		p := &ringPool{size: size}
		defer p.close()
		r, f := take(p)
		p.put(r, false)
		settle()
		if !r.unmapped.Load() {
			t.Fatal("ring not unmapped")
		}
		if got := blocks(t, f); got < size {
			t.Errorf("ring a peer may still read lost its pages: %d bytes left", got)
		}
	})
}
