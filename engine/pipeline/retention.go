package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// retentionEvery is how often a continuous run applies retention again.
const retentionEvery = time.Hour

// Retained is what one application of retention removed.
type Retained struct {
	StateRecords int      // timeline rows and values of the kept state
	Files        []string // dead letter and output files
}

// ApplyRetention removes what the pipeline's [privacy] retention says has
// expired at now: kept state rows whose event time is older than
// retention.state, and the dead letter output and the files of sinks
// (their path option) last written longer ago than retention.dead_letter
// and retention.outputs. Run calls it before moving data, and every
// retentionEvery in a continuous run; nothing is done without a
// [privacy] table.
func (p *Plan) ApplyRetention(ctx context.Context, now time.Time) (Retained, error) {
	var out Retained
	pr := p.cfg.Privacy
	if pr == nil {
		return out, nil
	}
	if ret := pr.Retention.State; ret > 0 && p.cfg.StateDir != "" {
		store, _, err := p.stateStore(true)()
		if err != nil {
			return out, fmt.Errorf("retention: %w", err)
		}
		n, err := store.Expire(now.Add(-ret))
		if err != nil {
			return out, fmt.Errorf("retention of state: %w", err)
		}
		out.StateRecords = n
	}
	old := func(path string, ret time.Duration) error {
		if ret <= 0 || path == "" {
			return nil
		}
		fi, err := os.Stat(path)
		if err == nil && fi.IsDir() {
			// A continuous run's parquet output: a folder of parts, each
			// expired on its own.
			parts, err := filepath.Glob(filepath.Join(path, "part-*.parquet"))
			if err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			for _, part := range parts {
				fi, err := os.Stat(part)
				if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(now.Add(-ret)) {
					continue
				}
				if err := os.Remove(part); err != nil {
					return fmt.Errorf("retention: %w", err)
				}
				out.Files = append(out.Files, part)
			}
			return nil
		}
		if errors.Is(err, os.ErrNotExist) || err == nil && (!fi.Mode().IsRegular() || !fi.ModTime().Before(now.Add(-ret))) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		out.Files = append(out.Files, path)
		return nil
	}
	if err := old(p.cfg.DeadLetter, pr.Retention.DeadLetter); err != nil {
		return out, err
	}
	for _, s := range p.cfg.Sinks {
		if path, ok := s.Options["path"].(string); ok {
			if err := old(p.cfg.Resolve(path), pr.Retention.Outputs); err != nil {
				return out, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	return out, nil
}

// retain applies retention once, then every retentionEvery until the
// returned function is called (continuous runs only), then also to the
// dead letters the run is writing (dl).
func (p *Plan) retain(ctx context.Context, dl *deadLetterFile) (stop func(), err error) {
	r, err := p.ApplyRetention(ctx, time.Now())
	if err != nil {
		return func() {}, err
	}
	if r.StateRecords > 0 || len(r.Files) > 0 {
		p.env.Log.Info("retention: expired data removed", "state_records", r.StateRecords, "files", r.Files)
	}
	if !p.unbounded || p.cfg.Privacy == nil {
		return func() {}, nil
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(retentionEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				now := time.Now()
				r, err := p.ApplyRetention(ctx, now)
				if err != nil {
					p.env.Log.Warn("retention failed", "err", err)
					continue
				}
				if ret := p.cfg.Privacy.Retention.DeadLetter; ret > 0 {
					n, err := dl.expire(now.Add(-ret))
					if err != nil {
						p.env.Log.Warn("retention failed", "err", err)
					} else if n > 0 {
						p.env.Log.Info("retention: expired dead letters of this run removed", "rows", n)
					}
				}
				if r.StateRecords > 0 || len(r.Files) > 0 {
					p.env.Log.Info("retention: expired data removed", "state_records", r.StateRecords, "files", r.Files)
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { close(done); <-finished }, nil
}
