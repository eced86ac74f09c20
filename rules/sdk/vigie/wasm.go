//go:build wasip1

package vigie

import (
	"errors"
	"unsafe"

	"github.com/vigie-edu/vigie/rules/abi"
)

//go:wasmimport vigie log
func vigieLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport vigie fail
func vigieFail(ptr unsafe.Pointer, n int32)

func hostLog(level Level, msg string) {
	vigieLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

func hostFail(msg string) {
	vigieFail(unsafe.Pointer(unsafe.StringData(msg)), int32(len(msg)))
}

var errNoRule = errors.New("no rule registered: call vigie.Register from an init function")

// linear is the module's own linear memory, seen through Go pointers.
type linear struct{ arena arena }

func (l *linear) bytes(ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	// Linear memory addresses are the Go heap addresses on wasm.
	return unsafe.Slice((*byte)(unsafe.Add(nil, uintptr(ptr))), n)
}

func (l *linear) alloc(n uint32) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(l.arena.alloc(int(n))))))
}

var (
	mem linear
	// evaluated is set by vigie_eval: the next vigie_alloc or vigie_eval
	// starts a new cycle and resets the arena.
	evaluated bool
)

func newCycle() {
	if evaluated {
		mem.arena.reset()
		evaluated = false
	}
}

// status reports err to the host and returns the vigie_eval/vigie_init
// result.
func status(err error) int32 {
	if err == nil {
		return 0
	}
	hostFail(err.Error())
	return 1
}

//go:wasmexport vigie_abi_version
func exportABIVersion() int32 { return abi.Version }

//go:wasmexport vigie_manifest
func exportManifest() int64 {
	if registered == nil || len(registered.json) == 0 {
		return 0
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(registered.json)))
	return int64(p)<<32 | int64(len(registered.json))
}

//go:wasmexport vigie_alloc
func exportAlloc(size int32) int32 {
	newCycle()
	if size < 0 {
		return 0
	}
	// The host overwrites all it asks for: no need to zero it first.
	return int32(uint32(uintptr(unsafe.Pointer(unsafe.SliceData(mem.arena.allocRaw(int(size)))))))
}

//go:wasmexport vigie_init
func exportInit(ptr, n int32) int32 {
	if registered == nil {
		return status(errNoRule)
	}
	return status(registered.init(mem.bytes(uint32(ptr), uint32(n))))
}

//go:wasmexport vigie_eval
func exportEval(in, out int32) int32 {
	newCycle()
	evaluated = true
	if registered == nil {
		return status(errNoRule)
	}
	return status(registered.eval(&mem, uint32(in), uint32(out)))
}
