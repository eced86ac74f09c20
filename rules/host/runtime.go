// Package host runs Vigie indicator rules: WebAssembly modules that follow
// the rule ABI (rules/abi, rules/ABI.md), on wazero.
//
// A Runtime loads and compiles modules (with an on-disk compilation cache);
// a Module is one checked rule file; a Binding ties its inputs to an
// upstream Arrow schema; an Instance evaluates batches. Several instances of
// one module may run in parallel, each with its own memory; one Instance is
// never used by two goroutines at once.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vigie-edu/vigie/rules/abi"
)

// Runtime compiles and runs rule modules. It is safe for concurrent use.
// Close it when done; modules and instances from it are unusable after.
type Runtime struct {
	rt     wazero.Runtime
	cache  wazero.CompilationCache
	logger *slog.Logger
}

// Option configures a Runtime.
type Option func(*options)

type options struct {
	cacheDir    string
	cacheDirSet bool
	logger      *slog.Logger
	memoryPages uint32
}

// CacheDirEnv names the environment variable that overrides the default
// directory of the compilation cache.
const CacheDirEnv = "VIGIE_CACHE_DIR"

// WithCacheDir sets the directory of the compilation cache, "" for a cache
// kept in memory only. Without this option the directory is
// $VIGIE_CACHE_DIR when set, else os.UserCacheDir()/vigie/wazero. When the
// directory is unusable the cache is kept in memory.
//
// The cache is wazero's: it stores machine code compiled from a module
// under a key that wazero derives from the module's bytes (a SHA-256 of
// them) and wazero's version, so a changed file or an upgraded wazero
// compiles afresh, and several runtimes, processes or versions may share
// one directory.
func WithCacheDir(dir string) Option {
	return func(o *options) { o.cacheDir, o.cacheDirSet = dir, true }
}

// WithLogger sets the logger that receives the rules' log messages,
// stdout and stderr. The default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMemoryLimitPages caps the linear memory of every instance of the
// runtime, in 64 KiB pages (the default is wazero's, 65536 pages: 4 GiB).
// It is a ceiling above the per-instance Limits.MemoryPages, which is the
// limit to use.
func WithMemoryLimitPages(pages uint32) Option {
	return func(o *options) { o.memoryPages = pages }
}

// NewRuntime returns a Runtime with the vigie host functions and a
// sandboxed WASI.
func NewRuntime(ctx context.Context, opts ...Option) (*Runtime, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.cacheDirSet {
		o.cacheDir = defaultCacheDir()
	}
	var cache wazero.CompilationCache
	if o.cacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(o.cacheDir)
		if err != nil {
			o.logger.Warn("wazero compilation cache unusable, keeping it in memory", "dir", o.cacheDir, "error", err)
		} else {
			cache = c
		}
	}
	if cache == nil {
		cache = wazero.NewCompilationCache()
	}
	// No CloseOnContextDone: calls are interrupted through the global that
	// instrument adds (interrupt.go), at a fraction of its cost.
	cfg := wazero.NewRuntimeConfig().WithCompilationCache(cache)
	if o.memoryPages > 0 {
		cfg = cfg.WithMemoryLimitPages(o.memoryPages)
	}
	r := &Runtime{rt: wazero.NewRuntimeWithConfig(ctx, cfg), cache: cache, logger: o.logger}
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

// LoadOption configures Load.
type LoadOption func(*loadOptions)

type loadOptions struct{ expectSHA256 string }

// ExpectSHA256 pins the module: Load refuses a file whose SHA-256 (hex,
// case-insensitive) is not sum, naming the file, the expected and the
// actual hash. An empty sum pins nothing.
func ExpectSHA256(sum string) LoadOption {
	return func(o *loadOptions) { o.expectSHA256 = strings.ToLower(strings.TrimSpace(sum)) }
}

// Load reads, compiles and checks a rule file: its imports, its exports and
// their signatures, its ABI version and its manifest (and its hash, with
// ExpectSHA256). Errors name the file and the reason.
func (r *Runtime) Load(ctx context.Context, path string, opts ...LoadOption) (*Module, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load rule: %w", err)
	}
	sum := sha256.Sum256(wasm)
	if actual := hex.EncodeToString(sum[:]); o.expectSHA256 != "" && actual != o.expectSHA256 {
		return nil, fmt.Errorf("rule %s: sha256 mismatch: expected %s, actual %s", path, o.expectSHA256, actual)
	}
	instrumented, err := instrument(wasm)
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

type signature struct{ params, results []api.ValueType }

// The ABI's function signatures, from the single table in rules/abi.
var (
	requiredExports = signatures(abi.Exports(), true)
	optionalExports = signatures(abi.Exports(), false)
	allowedImports  = signatures(abi.Imports(), false)
)

func signatures(fs []abi.Func, required bool) map[string]signature {
	m := map[string]signature{}
	for _, f := range fs {
		if f.Required == required {
			s := signature{}
			for _, t := range f.Signature.Params {
				s.params = append(s.params, api.ValueType(t))
			}
			for _, t := range f.Signature.Results {
				s.results = append(s.results, api.ValueType(t))
			}
			m[f.Name] = s
		}
	}
	return m
}

func (s signature) matches(f api.FunctionDefinition) bool {
	return equalTypes(s.params, f.ParamTypes()) && equalTypes(s.results, f.ResultTypes())
}

func (s signature) String() string {
	return fmt.Sprintf("%s -> %s", typeList(s.params), typeList(s.results))
}

func equalTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func typeList(ts []api.ValueType) string {
	s := "("
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += api.ValueTypeName(t)
	}
	return s + ")"
}

// check verifies the module's shape, then instantiates it once to read its
// ABI version and manifest.
func (m *Module) check(ctx context.Context) error {
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == abi.WASIModule {
			continue
		}
		sig, ok := allowedImports[name]
		if mod != abi.ImportModule || !ok {
			return fmt.Errorf("forbidden import %q (a rule may import only vigie.log, vigie.fail and wasi_snapshot_preview1)", mod+"."+name)
		}
		if !sig.matches(f) {
			return fmt.Errorf("import %q has signature %s, want %s", mod+"."+name,
				signature{f.ParamTypes(), f.ResultTypes()}, sig)
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
	for name, sig := range requiredExports {
		f, ok := exports[name]
		if !ok {
			return fmt.Errorf("missing export %q", name)
		}
		if !sig.matches(f) {
			return fmt.Errorf("export %q has signature %s, want %s", name, signature{f.ParamTypes(), f.ResultTypes()}, sig)
		}
	}
	for name, sig := range optionalExports {
		if f, ok := exports[name]; ok && !sig.matches(f) {
			return fmt.Errorf("export %q has signature %s, want %s", name, signature{f.ParamTypes(), f.ResultTypes()}, sig)
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
