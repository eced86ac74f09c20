// Package profiling writes CPU and heap profiles of a vigie process when
// the environment asks for them, so that the engine and each of its plugin
// processes can be profiled in one run:
//
//	VIGIE_PROFILE_DIR=/tmp/prof vigie run pipeline.toml
//	go tool pprof -top /tmp/prof/cpu-plugin-*.pprof
//
// Each process writes into the folder cpu-ROLE-PID.pprof (from Start to
// the stop function), allocs-ROLE-PID.pprof (every allocation over the
// life of the process) and heap-ROLE-PID.pprof: the heap profile taken
// when the heap was at its largest, checked every 100 ms (what was live
// at the garbage collection before that peak: the batches, buffers and
// caches that make a process's memory). Plugin
// processes see the variable because VIGIE_* reaches them
// (pluginhost.AllowedEnv).
package profiling

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// EnvDir is the environment variable naming the folder profiles go to.
const EnvDir = "VIGIE_PROFILE_DIR"

// Start begins a CPU profile of this process when dir is not empty and
// returns the function that ends it and writes the heap profile. role
// names the process in the file names (engine, plugin). Errors are
// reported to the returned error of stop, or at once when the profile
// cannot start; without dir both are no-ops.
func Start(dir, role string) (stop func() error, err error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("profile folder: %w", err)
	}
	name := func(kind string) string {
		return filepath.Join(dir, fmt.Sprintf("%s-%s-%d.pprof", kind, role, os.Getpid()))
	}
	cpu, err := os.Create(name("cpu"))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	done := make(chan struct{})
	peak := make(chan []byte, 1)
	go watchHeap(done, peak)
	return func() error {
		pprof.StopCPUProfile()
		close(done)
		if err := cpu.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := os.WriteFile(name("heap"), <-peak, 0o644); err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		// The allocs profile is as of the last completed collection: a
		// short process (a plugin of a small run) may have had none since
		// its start.
		runtime.GC()
		allocs, err := os.Create(name("allocs"))
		if err != nil {
			return fmt.Errorf("allocs profile: %w", err)
		}
		if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
			allocs.Close()
			return fmt.Errorf("allocs profile: %w", err)
		}
		return allocs.Close()
	}, nil
}

// watchHeap sends on peak, once done is closed, the heap profile taken
// when the heap (objects, live or not yet collected) was at its largest.
func watchHeap(done <-chan struct{}, peak chan<- []byte) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var most uint64
	var best bytes.Buffer
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if n := sample[0].Value.Uint64(); n > most || best.Len() == 0 {
			most = n
			best.Reset()
			_ = pprof.Lookup("heap").WriteTo(&best, 0)
		}
		select {
		case <-done:
			peak <- best.Bytes()
			return
		case <-tick.C:
		}
	}
}
