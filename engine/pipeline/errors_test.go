package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// TestPrepareErrorsKeepTheirCause: an error of Prepare points at the line
// and key of the stage, and still wraps the error it was written from, so
// that errors.Is finds its kind.
func TestPrepareErrorsKeepTheirCause(t *testing.T) {
	trap := hosttest.Module(t, "trap") // its memory starts at 2 pages
	tests := []struct {
		name, rule, key string
		kind            error
	}{
		{"missing module", "[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = \"none.wasm\"\n", "rule[0].module", fs.ErrNotExist},
		{"memory limit", fmt.Sprintf("[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = %q\n[rule.limits]\nmemory_pages = 1\n", trap),
			"rule[0].params", wasmhost.ErrLimit},
	}
	t.Run("no runtime", func(t *testing.T) {
		cfg := setup(t, 10, fmt.Sprintf("[[rule]]\nname = \"r\"\ninput = \"att\"\nmodule = %q\n", trap), parquetSink)
		_, err := pipeline.Prepare(context.Background(), cfg, pipeline.Env{Connectors: connectors{}})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Key != "rule[0].module" {
			t.Fatalf("err = %v, want a config error at rule[0].module", err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := setup(t, 10, tt.rule, parquetSink)
			_, err := pipeline.Prepare(context.Background(), cfg, pipeline.Env{Connectors: connectors{}, Rules: hosttest.NewRuntime(t)})
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tt.key {
				t.Fatalf("err = %v, want a config error at %s", err, tt.key)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.kind)
			}
		})
	}
}
