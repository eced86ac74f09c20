package arrowmem

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestCopy(t *testing.T) {
	src := []byte("0123456789abcdef0123456789abcdef")
	checked := memory.NewCheckedAllocator(memory.NewGoAllocator())
	for name, mem := range map[string]memory.Allocator{"go": memory.NewGoAllocator(), "default": memory.DefaultAllocator, "checked": checked} {
		buf := Copy(mem, src)
		if !bytes.Equal(buf.Bytes(), src) || buf.Len() != len(src) {
			t.Errorf("%s: got %q", name, buf.Bytes())
		}
		src[0] = 'X'
		if buf.Bytes()[0] != '0' {
			t.Errorf("%s: the buffer aliases its source", name)
		}
		src[0] = '0'
		if name == "checked" && checked.CurrentAlloc() == 0 {
			t.Error("checked: the copy was not allocated from the allocator")
		}
		buf.Release()
	}
	checked.AssertSize(t, 0)
}

func BenchmarkCopy(b *testing.B) {
	src := make([]byte, 512<<10)
	for _, mem := range []memory.Allocator{memory.NewGoAllocator()} {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			Copy(mem, src).Release()
		}
	}
}
