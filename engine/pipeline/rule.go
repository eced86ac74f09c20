package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/rules/host"
)

// ruleStage runs a map rule on every batch.
type ruleStage struct {
	cfg     *config.Rule
	mod     *host.Module
	inst    *host.Instance
	binding *host.Binding
	mem     memory.Allocator
}

func (r *ruleStage) Run(ctx context.Context, st *stream.Stage, in *stream.Inbox, out *stream.Outbox) error {
	for {
		rec, err := in.Recv(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		res, err := r.inst.EvalMap(ctx, r.binding, rec, r.mem)
		if err != nil {
			err = r.reject(ctx, st, rec, err)
			rec.Release()
			if err != nil {
				return err
			}
			continue
		}
		rec.Release()
		if err := out.Send(ctx, res); err != nil {
			return err
		}
	}
}

// reject applies the rule's error policy to a batch that failed.
func (r *ruleStage) reject(ctx context.Context, st *stream.Stage, rec arrow.RecordBatch, cause error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.cfg.OnError == config.OnErrorFail {
		return fmt.Errorf("rule %s: %w", r.mod.Manifest.Name, cause)
	}
	rows, err := rowsAsJSON(rec)
	if err != nil {
		return err
	}
	origin := fmt.Sprintf("rule %s %s (sha256 %s)", r.mod.Manifest.Name, r.mod.Manifest.Version, r.mod.SHA256)
	dls := make([]stream.DeadLetter, len(rows))
	for i, raw := range rows {
		dls[i] = stream.DeadLetter{Origin: origin, Reason: cause.Error(), Raw: raw}
	}
	st.Log.Warn("rule failed on a batch; rows dead-lettered", "rows", len(rows), "error", cause)
	return st.DeadLetter(dls...)
}

// rowsAsJSON renders each row of rec as a JSON object.
func rowsAsJSON(rec arrow.RecordBatch) ([]string, error) {
	var buf bytes.Buffer
	if err := array.RecordToJSON(rec, &buf); err != nil {
		return nil, fmt.Errorf("render rejected rows: %w", err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"), nil
}
