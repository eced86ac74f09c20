// Package wasmhost runs Vigie indicator rules: WebAssembly modules that follow
// the rule ABI (rules/abi, rules/ABI.md), on wazero.
//
// A Runtime loads and compiles modules (with an on-disk compilation cache);
// a Module is one checked rule file; a Binding ties its inputs to an
// upstream Arrow schema; an Instance evaluates batches. Several instances of
// one module may run in parallel, each with its own memory; one Instance is
// never used by two goroutines at once.
package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vigie-edu/vigie/internal/wasmhost/instrument"
	"github.com/vigie-edu/vigie/rules/abi"
)

// Runtime compiles and runs rule modules. It is safe for concurrent use.
// Close it when done; modules and instances from it are unusable after.
type Runtime struct {
	rt      wazero.Runtime
	cache   wazero.CompilationCache
	logger  *slog.Logger
	rewrite func([]byte) ([]byte, error)
}

// NewRuntime returns a Runtime with the vigie host functions and a
// sandboxed WASI, configured by cfg (NewRuntimeConfig for the defaults).
func NewRuntime(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.cacheDirSet {
		cfg.cacheDir = defaultCacheDir()
	}
	var cache wazero.CompilationCache
	if cfg.cacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.cacheDir)
		if err != nil {
			cfg.logger.Warn("wazero compilation cache unusable, keeping it in memory", "dir", cfg.cacheDir, "error", err)
		} else {
			cache = c
		}
	}
	if cache == nil {
		cache = wazero.NewCompilationCache()
	}
	// No CloseOnContextDone: calls are interrupted through the global that
	// instrument.Rewrite adds, at a fraction of its cost.
	wcfg := wazero.NewRuntimeConfig().WithCompilationCache(cache)
	if cfg.memoryPages > 0 {
		wcfg = wcfg.WithMemoryLimitPages(cfg.memoryPages)
	}
	if cfg.rewrite == nil {
		cfg.rewrite = instrument.Rewrite
	}
	r := &Runtime{rt: wazero.NewRuntimeWithConfig(ctx, wcfg), cache: cache, logger: cfg.logger, rewrite: cfg.rewrite}
	if err := r.instantiateHostModules(ctx); err != nil {
		_ = r.Close(ctx)
		return nil, err
	}
	return r, nil
}

// defaultCacheDir returns $VIGIE_CACHE_DIR, else
// os.UserCacheDir()/vigie/wazero, else "" (memory only).
func defaultCacheDir() string {
	if dir := os.Getenv(CacheDirEnv); dir != "" {
		return dir
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "vigie", "wazero")
	}
	return ""
}

func (r *Runtime) instantiateHostModules(ctx context.Context) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		return fmt.Errorf("instantiate wasi: %w", err)
	}
	_, err := r.rt.NewHostModuleBuilder(abi.ImportModule).
		NewFunctionBuilder().WithFunc(hostLog).Export(abi.ImportLog).
		NewFunctionBuilder().WithFunc(hostFail).Export(abi.ImportFail).
		Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("instantiate vigie host module: %w", err)
	}
	return nil
}

// Close releases the runtime and everything compiled or instantiated in it.
func (r *Runtime) Close(ctx context.Context) error {
	return errors.Join(r.rt.Close(ctx), r.cache.Close(ctx))
}

// Module is a loaded and checked rule file. It is safe for concurrent use.
type Module struct {
	// Path is the file the module was read from.
	Path string
	// SHA256 is the hex SHA-256 of the file, recorded in output metadata.
	SHA256 string
	// Manifest is the rule's parsed manifest.
	Manifest *abi.Manifest

	rt       *Runtime
	compiled wazero.CompiledModule
	hasInit  bool
	minPages uint32 // initial size of the memory
}

// Load reads, compiles and checks a rule file: its imports, its exports and
// their signatures, its ABI version and its manifest (and its hash, with
// LoadConfig.WithSHA256). Errors name the file and the reason.
func (r *Runtime) Load(ctx context.Context, path string, cfg LoadConfig) (*Module, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load rule: %w", err)
	}
	sum := sha256.Sum256(wasm)
	if actual := hex.EncodeToString(sum[:]); cfg.expectSHA256 != "" && actual != cfg.expectSHA256 {
		return nil, fmt.Errorf("rule %s: sha256 mismatch: expected %s, actual %s", path, cfg.expectSHA256, actual)
	}
	instrumented, err := r.rewrite(wasm)
	if err != nil {
		return nil, fmt.Errorf("rule %s: compile: %w", path, err)
	}
	compiled, err := r.rt.CompileModule(ctx, instrumented)
	if err != nil {
		return nil, fmt.Errorf("rule %s: compile: %w", path, err)
	}
	m := &Module{Path: path, SHA256: hex.EncodeToString(sum[:]), rt: r, compiled: compiled}
	if err := m.check(ctx); err != nil {
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("rule %s: %w", path, err)
	}
	return m, nil
}

// SignatureOf is a compiled function's signature in the terms of the ABI's
// table (rules/abi), which Load checks modules against.
func SignatureOf(f api.FunctionDefinition) abi.Signature {
	conv := func(ts []api.ValueType) []abi.ValueType {
		out := make([]abi.ValueType, len(ts))
		for i, t := range ts {
			out[i] = abi.ValueType(t) // the same binary encoding
		}
		return out
	}
	return abi.Signature{Params: conv(f.ParamTypes()), Results: conv(f.ResultTypes())}
}

// check verifies the module's shape, then instantiates it once to read its
// ABI version and manifest.
func (m *Module) check(ctx context.Context) error {
	allowed := map[string]abi.Signature{}
	for _, f := range abi.Imports() {
		allowed[f.Name] = f.Signature
	}
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == abi.WASIModule {
			continue
		}
		want, ok := allowed[name]
		if mod != abi.ImportModule || !ok {
			return fmt.Errorf("forbidden import %q (a rule may import only vigie.log, vigie.fail and wasi_snapshot_preview1)", mod+"."+name)
		}
		if got := SignatureOf(f); !got.Equal(want) {
			return fmt.Errorf("import %q has signature %s, want %s", mod+"."+name, got, want)
		}
	}
	for _, mem := range m.compiled.ImportedMemories() {
		mod, name, _ := mem.Import()
		return fmt.Errorf("forbidden import %q (a rule must define its own memory)", mod+"."+name)
	}
	if _, ok := m.compiled.ExportedMemories()[abi.ExportMemory]; !ok {
		return errors.New(`missing export "memory"`)
	}
	exports := m.compiled.ExportedFunctions()
	for _, e := range abi.Exports() { // the required ones first
		f, ok := exports[e.Name]
		if !ok {
			if e.Required {
				return fmt.Errorf("missing export %q", e.Name)
			}
			continue
		}
		if got := SignatureOf(f); !got.Equal(e.Signature) {
			return fmt.Errorf("export %q has signature %s, want %s", e.Name, got, e.Signature)
		}
	}
	_, m.hasInit = exports[abi.ExportInit]
	m.minPages = m.compiled.ExportedMemories()[abi.ExportMemory].Min()

	// The manifest is read from an instance within the default limits,
	// whatever its memory's initial size.
	limits := DefaultLimits()
	limits.MemoryPages = max(limits.MemoryPages, m.minPages)
	inst := m.newInstance("", limits, nil)
	if err := inst.start(ctx); err != nil {
		return err
	}
	defer inst.Close(ctx)
	return m.readManifest(ctx, inst)
}

func (m *Module) readManifest(ctx context.Context, inst *Instance) error {
	v, err := inst.call(ctx, inst.mod.ExportedFunction(abi.ExportABIVersion), abi.ExportABIVersion)
	if err != nil {
		return err
	}
	if v := uint32(v); v != abi.Version {
		return fmt.Errorf("abi version %d, want %d", v, abi.Version)
	}
	pl, err := inst.call(ctx, inst.mod.ExportedFunction(abi.ExportManifest), abi.ExportManifest)
	if err != nil {
		return err
	}
	ptr, n := uint32(pl>>32), uint32(pl)
	b, ok := inst.mod.Memory().Read(ptr, n)
	if !ok {
		return fmt.Errorf("manifest at %d (%d bytes) is outside memory", ptr, n)
	}
	man, err := abi.ParseManifest(b)
	if err != nil {
		return err
	}
	m.Manifest = man
	return nil
}

// Close releases the compiled module. Instances already created keep
// working until closed.
func (m *Module) Close(ctx context.Context) error { return m.compiled.Close(ctx) }
