//go:build unix

package pipeline_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/engine/pipeline"
)

// TestOnSignals sends the test process two signals: the first closes the
// stop channel and leaves the run's context alive (a graceful stop), the
// second cancels it (an abort); notify sees both, ranked; release cancels
// the context of a run that was never signalled.
func TestOnSignals(t *testing.T) {
	var mu sync.Mutex
	var ranks []int
	ctx, stop, release := pipeline.OnSignals(context.Background(), func(sig os.Signal, n int) {
		mu.Lock()
		defer mu.Unlock()
		if sig != syscall.SIGUSR1 {
			t.Errorf("notified of %v, want %v", sig, syscall.SIGUSR1)
		}
		ranks = append(ranks, n)
	}, syscall.SIGUSR1)
	defer release()
	select {
	case <-stop:
		t.Fatal("stop closed before any signal")
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stop:
	case <-time.After(10 * time.Second):
		t.Fatal("the first signal did not close stop")
	}
	time.Sleep(50 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("the first signal cancelled the run: %v", ctx.Err())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the second signal did not cancel the run")
	}
	release()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(ranks, []int{1, 2}) {
		t.Errorf("notify ranks %v, want [1 2]", ranks)
	}

	ctx2, stop2, release2 := pipeline.OnSignals(context.Background(), nil, syscall.SIGUSR1)
	release2()
	if ctx2.Err() == nil {
		t.Error("release left the context alive")
	}
	select {
	case <-stop2:
		t.Error("release closed stop: a run would take it for a signal")
	default:
	}
}
