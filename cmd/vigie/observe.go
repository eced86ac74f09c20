package main

// The flags of `vigie run` that watch a run: --listen (metrics and health,
// package metrics) and --progress (terminal progress).

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/metrics"
)

// afterRunHook, when set (tests), is called with the metrics address once
// the run is over, before the listener closes.
var afterRunHook func(addr string)

type observeFlags struct {
	listen     string
	listenAny  bool
	tokenFile  string
	progress   string
	isTerminal func(w io.Writer) bool // tests replace it
}

func (o *observeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.listen, "listen", "", "serve Prometheus /metrics, /healthz and /readyz on this address during the run (e.g. 127.0.0.1:9464; loopback only unless --listen-remote)")
	fs.BoolVar(&o.listenAny, "listen-remote", false, "allow --listen on a non-loopback address (protect /metrics with "+metrics.TokenEnv+" or --metrics-token-file)")
	fs.StringVar(&o.tokenFile, "metrics-token-file", "", "file holding the bearer token /metrics requires (default: $"+metrics.TokenFileEnv+", else $"+metrics.TokenEnv+", else none)")
	fs.StringVar(&o.progress, "progress", "auto", "progress display: auto (a bar when stderr is a terminal, else info log lines), bar, log, none")
}

// multiObserver hands every event to each observer in turn.
type multiObserver []stream.Observer

func (m multiObserver) Started(st *stream.Stage) {
	for _, o := range m {
		o.Started(st)
	}
}

func (m multiObserver) Batch(st *stream.Stage, in bool, bytes int64) {
	for _, o := range m {
		o.Batch(st, in, bytes)
	}
}

func (m multiObserver) Busy(st *stream.Stage, d time.Duration) {
	for _, o := range m {
		o.Busy(st, d)
	}
}

// Checkpointed hands a completed checkpoint to the observers that track
// them (metrics.Run, console.Watch): the engine calls it on its Observer
// when the Observer has this method (see metrics.Checkpointer).
func (m multiObserver) Checkpointed(t time.Time) {
	for _, o := range m {
		if c, ok := o.(metrics.Checkpointer); ok {
			c.Checkpointed(t)
		}
	}
}

// start sets up what watches the run; stop ends it once the run is over.
func (o *observeFlags) start(ctx context.Context, e *engine, stderr io.Writer) (obs stream.Observer, stop func(), err error) {
	var observers multiObserver
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if o.listen != "" {
		tok, err := metrics.LoadToken(o.tokenFile)
		if err != nil {
			return nil, nil, err
		}
		if o.listenAny && tok == "" {
			e.log.Warn("--listen-remote without a metrics token: anyone who reaches the address reads the metrics")
		}
		m := metrics.New(e.cfg.Name)
		m.WatchRestarts(e.host.Restarts)
		srv, err := metrics.Serve(o.listen, o.listenAny, m.Handler(tok), e.log)
		if err != nil {
			return nil, nil, fmt.Errorf("--listen: %w", err)
		}
		e.log.Info("serving metrics", "addr", "http://"+srv.Addr()+"/metrics")
		m.SetReady(true)
		observers = append(observers, m)
		stops = append(stops, func() {
			m.SetReady(false)
			if afterRunHook != nil {
				afterRunHook(srv.Addr())
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			srv.Close(ctx)
		})
	}
	mode := o.progress
	isTerm := o.isTerminal
	if isTerm == nil {
		isTerm = func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		}
	}
	if mode == "auto" {
		mode = "log"
		if isTerm(stderr) {
			mode = "bar"
		}
	}
	switch mode {
	case "none":
	case "bar", "log":
		p := metrics.NewProgress(metrics.ProgressOptions{Terminal: mode == "bar", W: stderr, Log: e.log})
		// Counting the input's lines reads it once: beside the run, not
		// before it.
		cctx, cancel := context.WithCancel(ctx)
		counted := make(chan struct{})
		go func() {
			defer close(counted)
			if n, ok := metrics.InputRows(cctx, e.cfg); ok {
				p.SetTotal(n)
			}
		}()
		p.Start()
		observers = append(observers, p)
		stops = append(stops, func() {
			cancel()
			<-counted
			p.Stop()
		})
	default:
		stop()
		return nil, nil, fmt.Errorf("--progress %q: want auto, bar, log or none", o.progress)
	}
	if len(observers) == 0 {
		return nil, stop, nil
	}
	return observers, stop, nil
}
