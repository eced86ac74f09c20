package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/csv"
	"github.com/vigie-edu/vigie/connectors/parquet"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/pluginhost"
	"github.com/vigie-edu/vigie/internal/transport"
)

// The test binary doubles as a plugin: re-executed with this variable set,
// it serves testRegistry as a real plugin process, as vigie does.
const serveEnv = "VIGIE_PLUGINS_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		if path := os.Getenv("VIGIE_PLUGINS_TEST_CPUPROFILE"); path != "" {
			f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
			if err == nil && pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
		transport.Serve(testRegistry(), memory.NewGoAllocator(), nil)
		return
	}
	if os.Getenv(hostEnv) == "1" {
		runTestHost()
		return
	}
	os.Exit(m.Run())
}

// serveCommand re-executes the test binary as a plugin serving
// testRegistry, as vigie re-executes itself.
func serveCommand(t testing.TB) func() *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func() *exec.Cmd {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), serveEnv+"=1")
		return cmd
	}
}

type pidSource struct{}

var pidSchema = arrow.NewSchema([]arrow.Field{{Name: "pid", Type: arrow.PrimitiveTypes.Int64}}, nil)

func (pidSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "pid", Kind: protocol.KindSource, Version: "1", Doc: "emits the serving process id"}
}

func (pidSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return pidSchema, nil
}

func (pidSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Append(int64(os.Getpid()))
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecordBatch(pidSchema, []arrow.Array{col}, 1)
	defer rec.Release()
	fmt.Fprintln(os.Stderr, "pid source says hello on stderr")
	return out.Emit(ctx, rec, nil)
}

// testRegistry is what the test binary serves as a plugin: test
// connectors and the built-ins.
func testRegistry() *protocol.Registry {
	return protocol.NewRegistry(pidSource{}, envSource{}, logSource{}, blobSource{}, sizeSink{}, csv.Source{}, csv.Sink{}, parquet.Sink{})
}

type pids struct{ got []int64 }

func (p *pids) Emit(ctx context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	p.got = append(p.got, rec.Column(0).(*array.Int64).Value(0))
	return nil
}
func (p *pids) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func readPID(t *testing.T, h *pluginhost.Host) int64 {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c, err := h.Connector(context.Background(), "pid")
	if err != nil {
		t.Fatal(err)
	}
	p := &pids{}
	if err := c.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "pid", BatchRows: 10}, mem, p); err != nil {
		t.Fatal(err)
	}
	if len(p.got) != 1 {
		t.Fatalf("got %v", p.got)
	}
	return p.got[0]
}

func TestBuiltinsInSubprocess(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := pluginhost.NewHost(pluginhost.Options{
		Builtins: testRegistry(),
		BuiltinCommand: func() *exec.Cmd {
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), serveEnv+"=1")
			return cmd
		},
	})
	defer h.Close()
	a, b := readPID(t, h), readPID(t, h)
	if a == int64(os.Getpid()) || b == int64(os.Getpid()) {
		t.Fatalf("connector ran in the engine process (pid %d)", a)
	}
	if a == b {
		t.Errorf("two stages shared one plugin process %d; each gets its own", a)
	}
}

// TestSharedBuiltins: with ShareBuiltins every built-in stage is served by
// one plugin process (not the engine's), listed once with the names of its
// connectors; a killed shared process is restarted once and serves them
// all again, each restart counted for every connector it served.
func TestSharedBuiltins(t *testing.T) {
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: serveCommand(t), ShareBuiltins: true})
	defer h.Close()
	sink, err := h.Connector(context.Background(), "sizes")
	if err != nil {
		t.Fatal(err)
	}
	a, b := readPID(t, h), readPID(t, h)
	if a == int64(os.Getpid()) {
		t.Fatalf("connector ran in the engine process (pid %d)", a)
	}
	if a != b {
		t.Errorf("two built-in stages in processes %d and %d, want one shared", a, b)
	}
	if err := sink.(protocol.Sink).Validate(context.Background(), protocol.Config{Connector: "sizes", Options: map[string]any{"path": "unused"}}); err != nil {
		t.Fatal(err)
	}
	procs := h.Processes()
	if len(procs) != 1 || procs[0].Name != "sizes+pid" || int64(procs[0].Pid) != a {
		t.Fatalf("processes %+v, want one (sizes+pid, pid %d)", procs, a)
	}

	if err := syscall.Kill(procs[0].Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The first call after the kill fails as temporary (the engine
	// retries it); the next ones start one new process for both.
	var c int64
	for range 50 {
		if c, err = tryReadPID(h); err == nil {
			break
		}
		if !errors.Is(err, protocol.ErrTemporary) {
			t.Fatalf("read after the kill: %v, want a temporary error", err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatalf("read after the kill served by the killed process %d", a)
	}
	if err := sink.(protocol.Sink).Validate(context.Background(), protocol.Config{Connector: "sizes", Options: map[string]any{"path": "unused"}}); err != nil {
		t.Fatal(err)
	}
	if procs := h.Processes(); len(procs) != 1 || int64(procs[0].Pid) != c {
		t.Errorf("processes after the restart %+v, want one, pid %d", procs, c)
	}
	if r := h.Restarts(); r["pid"] != 1 || r["sizes"] != 1 {
		t.Errorf("restarts %v, want 1 for each connector of the shared process", r)
	}
}

// tryReadPID is readPID returning its error.
func tryReadPID(h *pluginhost.Host) (int64, error) {
	mem := memory.NewGoAllocator()
	c, err := h.Connector(context.Background(), "pid")
	if err != nil {
		return 0, err
	}
	p := &pids{}
	if err := c.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "pid", BatchRows: 10}, mem, p); err != nil {
		return 0, err
	}
	if len(p.got) != 1 {
		return 0, fmt.Errorf("got %v", p.got)
	}
	return p.got[0], nil
}

// TestBuiltinStartsInTheBackground: Connector returns a built-in at once
// and its process starts meanwhile; Processes waits for the start, and a
// start that fails is reported by the first call through the connector.
func TestBuiltinStartsInTheBackground(t *testing.T) {
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: serveCommand(t)})
	defer h.Close()
	if _, err := h.Connector(context.Background(), "pid"); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Processes()); n != 1 {
		t.Errorf("%d processes listed right after Connector, want the one starting", n)
	}

	broken := pluginhost.NewHost(pluginhost.Options{
		Builtins:       testRegistry(),
		BuiltinCommand: func() *exec.Cmd { return exec.Command(t.TempDir() + "/no-such-vigie") },
		MaxRestarts:    -1,
	})
	defer broken.Close()
	c, err := broken.Connector(context.Background(), "pid")
	if err != nil {
		t.Fatalf("Connector waited for the process start: %v", err)
	}
	if c.Spec().Name != "pid" || c.Spec().Kind != protocol.KindSource {
		t.Errorf("spec %+v", c.Spec())
	}
	_, err = c.(protocol.Source).Schema(context.Background(), protocol.Config{Connector: "pid"})
	if err == nil || !strings.Contains(err.Error(), `start plugin "pid"`) {
		t.Errorf("first call: err = %v, want the failed start", err)
	}
}

func TestBuiltinsInProcess(t *testing.T) {
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry()})
	defer h.Close()
	if pid := readPID(t, h); pid != int64(os.Getpid()) {
		t.Fatalf("in-process connector ran in process %d", pid)
	}
}

func TestThirdPartyPluginFromDir(t *testing.T) {
	// A third-party plugin is any executable named vigie-connector-NAME:
	// here a script that re-executes this test binary as the plugin.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q\n", serveEnv, self)
	if err := os.WriteFile(dir+"/"+pluginhost.ExternalPrefix+"pid", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := pluginhost.NewHost(pluginhost.Options{Dirs: []string{t.TempDir(), dir}})
	defer h.Close()
	if pid := readPID(t, h); pid == int64(os.Getpid()) {
		t.Fatal("third-party connector ran in the engine process")
	}

	_, err = h.Connector(context.Background(), "pdi")
	if !errors.Is(err, protocol.ErrNotFound) || !strings.Contains(err.Error(), `unknown connector "pdi"`) {
		t.Errorf("err = %v", err)
	}
}
