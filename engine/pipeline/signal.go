package pipeline

import (
	"context"
	"os"
	"os/signal"
)

// OnSignals turns signals into the two ways a run ends early: the first
// of sigs closes the returned stop channel (pass it as RunOptions.Stop: a
// graceful stop, bounded by the pipeline's stop_timeout), the second
// cancels the returned context (an abort: rule calls are interrupted at
// once, sinks abort). notify, when not nil, is called for each signal with
// its rank (1 or 2) before it takes effect. Call release when the run is
// over: it stops listening and cancels the context.
func OnSignals(ctx context.Context, notify func(sig os.Signal, n int), sigs ...os.Signal) (runCtx context.Context, stop <-chan struct{}, release func()) {
	ctx, cancel := context.WithCancel(ctx)
	stopCh := make(chan struct{})
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		for {
			select {
			case sig := <-ch:
				n++
				if notify != nil {
					notify(sig, n)
				}
				if n == 1 {
					close(stopCh)
					continue
				}
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, stopCh, func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}
