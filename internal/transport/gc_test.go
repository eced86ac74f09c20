package transport

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	origPercent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(origPercent)
	origLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(origLimit)
	tuneGC("", "")
	if got := debug.SetGCPercent(100); got != pluginGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, pluginGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != pluginMemoryLimit {
		t.Errorf("GOMEMLIMIT unset: memory limit %d, want %d", got, pluginMemoryLimit)
	}
	// The runtime read GOGC=50 and GOMEMLIMIT=1GiB itself: left alone.
	debug.SetMemoryLimit(1 << 30)
	tuneGC("50", "1GiB")
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: GC percent changed to %d", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != 1<<30 {
		t.Errorf("GOMEMLIMIT set: memory limit changed to %d", got)
	}
}
