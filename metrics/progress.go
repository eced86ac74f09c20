package metrics

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/schollz/progressbar/v3"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// Progress reports a run's progress while it goes: rows read by the
// sources, their rate and, when the input size is known (InputRows), a
// percentage and an estimated time left. On a terminal it draws a bar
// (schollz/progressbar); elsewhere it logs a line at info level every
// LogEvery. It is a stream.Observer; Start it before the run and Stop it
// after.
type Progress struct {
	total    atomic.Int64 // rows expected, -1: unknown
	tty      bool
	w        io.Writer
	log      *slog.Logger
	logEvery time.Duration

	mu      sync.Mutex
	sources []*stream.Stage

	stop chan struct{}
	done chan struct{}
}

var _ stream.Observer = (*Progress)(nil)

// ProgressOptions configure NewProgress.
type ProgressOptions struct {
	// Total is the number of rows the sources will read; -1 or 0 when
	// unknown (no percentage nor ETA then).
	Total int64
	// Terminal draws a bar on W; otherwise Progress logs to Log.
	Terminal bool
	W        io.Writer
	Log      *slog.Logger
	// LogEvery is the period of the log lines (default 10s).
	LogEvery time.Duration
}

// NewProgress returns a progress reporter; nothing is shown until Start.
func NewProgress(opts ProgressOptions) *Progress {
	if opts.Total <= 0 {
		opts.Total = -1
	}
	if opts.LogEvery <= 0 {
		opts.LogEvery = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	p := &Progress{tty: opts.Terminal, w: opts.W, log: opts.Log, logEvery: opts.LogEvery}
	p.total.Store(opts.Total)
	return p
}

// SetTotal sets the rows expected, once known (InputRows may take a while
// on large files: it can run beside the run).
func (p *Progress) SetTotal(n int64) {
	if n <= 0 {
		n = -1
	}
	p.total.Store(n)
}

// Started implements stream.Observer: Progress counts the sources' rows.
func (p *Progress) Started(st *stream.Stage) {
	if st.Kind != stream.KindSource {
		return
	}
	p.mu.Lock()
	p.sources = append(p.sources, st)
	p.mu.Unlock()
}

// Batch implements stream.Observer.
func (p *Progress) Batch(*stream.Stage, bool, int64) {}

// Busy implements stream.Observer.
func (p *Progress) Busy(*stream.Stage, time.Duration) {}

// Rows is the number of rows the sources have read so far, dead letters
// included (the summary's "rows read").
func (p *Progress) Rows() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, st := range p.sources {
		n += st.Stats.RowsOut.Load() + st.Stats.DeadLettered.Load()
	}
	return n
}

// Start begins reporting, until Stop.
func (p *Progress) Start() {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		if p.tty {
			p.drawBar()
		} else {
			p.logLines()
		}
	}()
}

// Stop ends reporting (the bar is cleared: the summary follows).
func (p *Progress) Stop() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
}

func (p *Progress) drawBar() {
	max := p.total.Load()
	bar := p.newBar(max)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if m := p.total.Load(); m != max {
			// The total became known: a bar instead of a spinner.
			bar.Clear()
			max, bar = m, p.newBar(m)
		}
		n := p.Rows()
		if max > 0 && n >= max {
			// The total is an estimate (a quoted field over several lines
			// counts once): never show 100% before the end.
			n = max - 1
		}
		bar.Set64(n)
		select {
		case <-t.C:
		case <-p.stop:
			bar.Clear()
			return
		}
	}
}

func (p *Progress) newBar(max int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("rows"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionSetPredictTime(max > 0),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionUseANSICodes(true),
		// No render goroutine of the library's own (for a spinner it
		// never stops, and its renders race with Clear): drawBar's ticker
		// renders, from one goroutine.
		progressbar.OptionSetSpinnerChangeInterval(0),
	)
}

func (p *Progress) logLines() {
	start := time.Now()
	t := time.NewTicker(p.logEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.stop:
			return
		}
		n := p.Rows()
		elapsed := time.Since(start)
		rate := float64(n) / elapsed.Seconds()
		attrs := []any{"rows", n, "rows_per_s", int64(rate)}
		if total := p.total.Load(); total > 0 {
			pct := min(99.9, 100*float64(n)/float64(total))
			attrs = append(attrs, "percent", float64(int(pct*10))/10)
			if rate > 0 && n < total {
				eta := time.Duration(float64(total-n) / rate * float64(time.Second))
				attrs = append(attrs, "eta", eta.Round(time.Second))
			}
		}
		p.log.Info("progress", attrs...)
	}
}

// InputRows estimates the rows the pipeline's sources will read, from the
// files they name: a CSV file counts its lines (less the header), a
// Parquet file the rows in its footer. It reports false when a source
// reads something else (a glob, a gzipped file, a FIFO or other file that
// is not regular, Kafka, a plugin), since the total is then unknown. It
// reads every CSV file once: run it beside the run (Progress.SetTotal).
func InputRows(ctx context.Context, cfg *config.Pipeline) (int64, bool) {
	var total int64
	for _, s := range cfg.Sources {
		if ctx.Err() != nil {
			return 0, false
		}
		path, _ := s.Options["path"].(string)
		if path == "" || strings.ContainsAny(path, "*?[{") {
			return 0, false
		}
		path = cfg.Resolve(path)
		if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
			return 0, false // reading a FIFO would take its rows from the run
		}
		var n int64
		var err error
		switch {
		case s.Connector == "csv" && !strings.HasSuffix(path, ".gz"):
			n, err = csvRows(ctx, path, s.Options["header"] != false)
		case s.Connector == "parquet":
			n, err = parquetRows(path)
		default:
			return 0, false
		}
		if err != nil {
			return 0, false
		}
		total += n
	}
	return total, total > 0
}

func csvRows(ctx context.Context, path string, header bool) (int64, error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	var last byte = '\n'
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if k > 0 {
			last = buf[k-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if last != '\n' {
		n++ // a last line without a newline
	}
	if header && n > 0 {
		n--
	}
	return n, nil
}

func parquetRows(path string) (int64, error) {
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.NumRows(), nil
}
