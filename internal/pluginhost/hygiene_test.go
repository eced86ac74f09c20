package pluginhost_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/pluginhost"
)

// envSource emits one row: the value of the environment variable named by
// its "name" option in the serving process, or "<unset>".
type envSource struct{}

var envSchema = arrow.NewSchema([]arrow.Field{{Name: "value", Type: arrow.BinaryTypes.String}}, nil)

func (envSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "env", Kind: protocol.KindSource, Version: "1", Doc: "emits an environment variable",
		Options: []protocol.Option{{Name: "name", Type: protocol.TypeString, Required: true, Doc: "variable"}}}
}

func (envSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return envSchema, nil
}

func (envSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	v, ok := os.LookupEnv(cfg.String("name"))
	if !ok {
		v = "<unset>"
	}
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Append(v)
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecordBatch(envSchema, []arrow.Array{col}, 1)
	defer rec.Release()
	return out.Emit(ctx, rec, nil)
}

// logSource writes to its stderr and logs with slog, then fails with a
// kind or emits nothing.
type logSource struct{}

func (logSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "log", Kind: protocol.KindSource, Version: "1", Doc: "logs",
		Options: []protocol.Option{{Name: "fail", Type: protocol.TypeString, Default: "", Doc: "config, not_found, temporary"}}}
}

func (logSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return envSchema, nil
}

func (logSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	fmt.Fprintln(os.Stderr, "plain line on stderr")
	slog.New(slog.NewTextHandler(os.Stderr, nil)).Warn("slog warning", "answer", 42)
	switch cfg.String("fail") {
	case "config":
		return fmt.Errorf("option x is wrong: %w", protocol.ErrConfig)
	case "not_found":
		return fmt.Errorf("table y: %w", protocol.ErrNotFound)
	case "temporary":
		return fmt.Errorf("try later: %w", protocol.ErrTemporary)
	}
	return nil
}

// records is a slog handler's output, safe to read while plugins log.
type records struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *records) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}

// find waits up to 5s for a record whose message contains msg.
func (r *records) find(t *testing.T, msg string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r.mu.Lock()
		lines := strings.Split(r.buf.String(), "\n")
		r.mu.Unlock()
		for _, l := range lines {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && strings.Contains(fmt.Sprint(rec["msg"]), msg) {
				return rec
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no log record with %q in:\n%s", msg, r.buf.String())
	return nil
}

func TestPluginOutputReachesSlogTaggedWithPlugin(t *testing.T) {
	out := &records{}
	h := pluginhost.NewHost(pluginhost.Options{
		Builtins:       testRegistry(),
		BuiltinCommand: serveCommand(t),
		Logger:         slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	defer h.Close()
	c, err := h.Connector(context.Background(), "log")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "log"}, memory.NewGoAllocator(), &pids{}); err != nil {
		t.Fatal(err)
	}
	plain := out.find(t, "plain line on stderr")
	warn := out.find(t, "slog warning")
	if plain["plugin"] != "log" || warn["plugin"] != "log" {
		t.Errorf("records not tagged with the plugin: %v, %v", plain, warn)
	}
	if warn["level"] != "WARN" || !strings.Contains(fmt.Sprint(warn["msg"]), "answer=42") {
		t.Errorf("slog warning logged as %v", warn)
	}
	if plain["level"] != "INFO" {
		t.Errorf("plain stderr line logged as %v", plain)
	}
	// go-plugin's own messages arrive through hclog; its echo of the
	// plugin's stderr does not (lineLogger logged the line already).
	h.Close()
	if exited := out.find(t, "plugin process exited"); exited["level"] != "INFO" {
		t.Errorf("go-plugin's exit message logged as %v", exited)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if n := strings.Count(out.buf.String(), "plain line on stderr"); n != 1 {
		t.Errorf("plain stderr line logged %d times, want once:\n%s", n, out.buf.String())
	}
}

func TestSecretEnvironmentDoesNotReachPlugins(t *testing.T) {
	t.Setenv("DATABASE_PASSWORD", "hunter2")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "shh")
	t.Setenv("VIGIE_REGION", "occitanie")
	t.Setenv("GOMEMLIMIT", "1GiB") // the Go runtime's tuning passes
	// A third-party plugin: an executable in a plugin directory.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q\n", serveEnv, self)
	if err := os.WriteFile(dir+"/"+pluginhost.ExternalPrefix+"env", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := pluginhost.NewHost(pluginhost.Options{Dirs: []string{dir}})
	defer h.Close()
	for _, tc := range []struct{ name, want string }{
		{"DATABASE_PASSWORD", "<unset>"},
		{"AWS_SECRET_ACCESS_KEY", "<unset>"},
		{"VIGIE_REGION", "occitanie"},
		{"GOMEMLIMIT", "1GiB"},
		{"PATH", os.Getenv("PATH")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			c, err := h.Connector(context.Background(), "env")
			if err != nil {
				t.Fatal(err)
			}
			got := &values{}
			if err := c.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "env", Options: map[string]any{"name": tc.name}}, mem, got); err != nil {
				t.Fatal(err)
			}
			if len(got.v) != 1 || got.v[0] != tc.want {
				t.Errorf("plugin sees %s = %q, want %q", tc.name, got.v, tc.want)
			}
		})
	}
}

type values struct{ v []string }

func (p *values) Emit(ctx context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	p.v = append(p.v, rec.Column(0).(*array.String).Value(0))
	return nil
}
func (p *values) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func TestErrorKindsCrossTheProcessBoundary(t *testing.T) {
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: serveCommand(t)})
	defer h.Close()
	c, err := h.Connector(context.Background(), "log")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		fail string
		kind error
		text string
	}{
		{"config", protocol.ErrConfig, "option x is wrong"},
		{"not_found", protocol.ErrNotFound, "table y"},
		{"temporary", protocol.ErrTemporary, "try later"},
	} {
		err := c.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "log", Options: map[string]any{"fail": tc.fail}}, memory.NewGoAllocator(), &pids{})
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: err = %v, want kind %v", tc.fail, err, tc.kind)
		}
		for _, other := range []error{protocol.ErrConfig, protocol.ErrNotFound, protocol.ErrTemporary} {
			if other != tc.kind && errors.Is(err, other) {
				t.Errorf("%s: err %v is also %v", tc.fail, err, other)
			}
		}
	}
	// The plugin is alive: a connector's own temporary error does not
	// restart it.
	if n := len(h.Processes()); n != 1 {
		t.Errorf("%d processes after connector errors, want the 1 still running", n)
	}
}
