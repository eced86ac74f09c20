package wasmhost_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSandbox runs testdata/sandbox.wasm, which probes the WASI that the
// host serves: no arguments, no environment, no preopened directory (so no
// path_open), no sockets, deterministic random numbers and clocks, stdout
// to the log tagged with the rule.
func TestSandbox(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithCacheDir(cacheDir).WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Load(ctx, "testdata/sandbox.wasm", wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	rec := int32Record(mem, "x", 1)
	defer rec.Release()
	b, err := m.Bind(rec.Schema(), wasmhost.NewBindConfig())
	if err != nil {
		t.Fatal(err)
	}
	// run returns the probe's outputs from a fresh instance, twice.
	run := func() [2]map[string]int64 {
		inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		var res [2]map[string]int64
		for k := range res {
			out, err := inst.EvalMap(ctx, b, rec, mem)
			if err != nil {
				t.Fatal(err)
			}
			res[k] = map[string]int64{}
			for j, f := range out.Schema().Fields()[1:] {
				res[k][f.Name] = out.Column(j + 1).(*array.Int64).Value(0)
			}
			out.Release()
		}
		return res
	}
	first, second := run(), run()
	const ebadf = 8 // WASI errno
	got := first[0]
	for name, want := range map[string]int64{"argc": 0, "environc": 0, "prestat": ebadf} {
		if got[name] != want {
			t.Errorf("%s = %d, want %d", name, got[name], want)
		}
	}
	if got["path_open"] == 0 {
		t.Error("path_open of /etc/passwd succeeded")
	}
	if got["sock_accept"] == 0 {
		t.Error("sock_accept succeeded")
	}
	const fakeEpoch = 1640995200_000_000_000 // 2022-01-01, wazero's fake walltime
	if rt := got["realtime"]; rt < fakeEpoch || rt > fakeEpoch+1_000_000_000 {
		t.Errorf("realtime = %d, want wazero's fake clock near %d", rt, fakeEpoch)
	}
	if got["random"] == 0 {
		t.Error("random_get gave zeros")
	}
	if !equalProbe(first[0], second[0]) || !equalProbe(first[1], second[1]) {
		t.Errorf("two instances differ:\n%v\n%v", first, second)
	}
	if first[0]["random"] != first[1]["random"] {
		t.Errorf("random numbers differ from batch to batch of one instance (%d, %d): they restart each cycle",
			first[0]["random"], first[1]["random"])
	}
	if l := logs.String(); !strings.Contains(l, `msg="hello from stdout" rule=sandbox file=testdata/sandbox.wasm stream=stdout`) {
		t.Errorf("stdout not logged with the rule's name:\n%s", l)
	}
}

func equalProbe(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
