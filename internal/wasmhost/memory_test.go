package wasmhost

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestLinearMemory grows a linear memory page by page as wazero would and
// checks what the guest relies on: new bytes are zero, old bytes survive a
// grow, the limit is refused (and flagged), and the slice handed out has no
// capacity past its length.
func TestLinearMemory(t *testing.T) {
	tests := []struct {
		name  string
		limit uint64
	}{
		{"one page", pageSize},
		{"sixteen pages", 16 * pageSize},
		{"no limit given", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &linearMemory{limit: tt.limit}
			defer l.Free()
			if tt.limit == 0 {
				if b := l.Reallocate(pageSize); b != nil || !l.denied {
					t.Fatalf("Reallocate past a zero limit = %d bytes, denied %v; want nil, denied", len(b), l.denied)
				}
				return
			}
			var prev []byte
			for size := uint64(0); size <= tt.limit; size += pageSize {
				b := l.Reallocate(size)
				if uint64(len(b)) != size || uint64(cap(b)) != size {
					t.Fatalf("Reallocate(%d): len %d cap %d", size, len(b), cap(b))
				}
				for i, v := range b[len(prev):] {
					if v != 0 {
						t.Fatalf("Reallocate(%d): byte %d of the new memory is %d, want 0", size, len(prev)+i, v)
					}
				}
				for i := range prev {
					if b[i] != byte(i*7) {
						t.Fatalf("Reallocate(%d): byte %d is %d after the grow, want %d", size, i, b[i], byte(i*7))
					}
				}
				for i := range b {
					b[i] = byte(i * 7)
				}
				prev = b
			}
			if l.denied {
				t.Fatal("a grow within the limit was flagged as denied")
			}
			if b := l.Reallocate(tt.limit + pageSize); b != nil || !l.denied {
				t.Fatalf("Reallocate past the limit = %d bytes, denied %v; want nil, denied", len(b), l.denied)
			}
			if b := l.Reallocate(tt.limit); uint64(len(b)) != tt.limit || b[len(b)-1] != byte((len(b)-1)*7) {
				t.Fatal("the memory changed after a refused grow")
			}
		})
	}
}

// TestLinearMemoryOffHeap checks that, where mmap exists, a linear memory
// grows in place and outside the Go heap: the garbage collector must not
// count (and pace itself by) the instances' memories, which hold most of
// the engine's memory in a group rule's run.
func TestLinearMemoryOffHeap(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" || runtime.GOOS == "plan9" {
		t.Skip("linear memory lives on the Go heap on " + runtime.GOOS)
	}
	const size = 256 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := &linearMemory{limit: size}
	defer l.Free()
	first := l.Reallocate(pageSize)
	b := l.Reallocate(size)
	if len(b) != size {
		t.Fatalf("Reallocate(%d) = %d bytes", size, len(b))
	}
	if unsafe.SliceData(first) != unsafe.SliceData(b) {
		t.Error("the memory moved when it grew")
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapSys) - int64(before.HeapSys); grew >= size/2 {
		t.Errorf("the Go heap grew by %d bytes with a %d-byte linear memory: it is on the heap", grew, size)
	}
}
