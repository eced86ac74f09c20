package transport

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	tuneGC("")
	if got := debug.SetGCPercent(100); got != pluginGCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, pluginGCPercent)
	}
	tuneGC("50") // the runtime read GOGC=50 itself: left alone
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: GC percent changed to %d", got)
	}
}
