package wasmhost

import (
	"log/slog"
	"slices"
	"strings"
)

// The configuration of each step (NewRuntime, Load, Bind, NewInstance) is
// an immutable value, as in wazero: start from NewRuntimeConfig,
// NewLoadConfig, NewBindConfig or NewInstanceConfig and chain With…
// methods, each of which returns a changed copy and leaves its receiver as
// it was, so that one config can be shared and specialised freely. The
// zero value of each type is its New…Config().

// RuntimeConfig configures NewRuntime.
type RuntimeConfig struct {
	cacheDir    string
	cacheDirSet bool
	logger      *slog.Logger
	memoryPages uint32
	// rewrite replaces instrument.Rewrite, for tests that measure the
	// checks' cost (nil: instrument.Rewrite).
	rewrite func([]byte) ([]byte, error)
}

// NewRuntimeConfig returns the default configuration: the compilation cache
// in $VIGIE_CACHE_DIR or os.UserCacheDir()/vigie/wazero, the rules' logs
// discarded, and wazero's ceiling on linear memory.
func NewRuntimeConfig() RuntimeConfig { return RuntimeConfig{} }

// CacheDirEnv names the environment variable that overrides the default
// directory of the compilation cache.
const CacheDirEnv = "VIGIE_CACHE_DIR"

// WithCacheDir sets the directory of the compilation cache, "" for a cache
// kept in memory only. By default the directory is $VIGIE_CACHE_DIR when
// set, else os.UserCacheDir()/vigie/wazero. When the directory is unusable
// the cache is kept in memory.
//
// The cache is wazero's: it stores machine code compiled from a module
// under a key that wazero derives from the module's bytes (a SHA-256 of
// them) and wazero's version, so a changed file or an upgraded wazero
// compiles afresh, and several runtimes, processes or versions may share
// one directory.
func (c RuntimeConfig) WithCacheDir(dir string) RuntimeConfig {
	c.cacheDir, c.cacheDirSet = dir, true
	return c
}

// WithLogger sets the logger that receives the rules' log messages,
// stdout and stderr. The default (or nil) discards them.
func (c RuntimeConfig) WithLogger(l *slog.Logger) RuntimeConfig {
	c.logger = l
	return c
}

// WithMemoryLimitPages caps the linear memory of every instance of the
// runtime, in 64 KiB pages (0, the default, is wazero's 65536 pages:
// 4 GiB). It is a ceiling above the per-instance Limits.MemoryPages, which
// is the limit to use.
func (c RuntimeConfig) WithMemoryLimitPages(pages uint32) RuntimeConfig {
	c.memoryPages = pages
	return c
}

// LoadConfig configures Runtime.Load.
type LoadConfig struct {
	expectSHA256 string
}

// NewLoadConfig returns the default configuration: the module is not
// pinned.
func NewLoadConfig() LoadConfig { return LoadConfig{} }

// WithSHA256 pins the module: Load refuses a file whose SHA-256 (hex,
// case-insensitive) is not sum, naming the file, the expected and the
// actual hash. An empty sum pins nothing.
func (c LoadConfig) WithSHA256(sum string) LoadConfig {
	c.expectSHA256 = strings.ToLower(strings.TrimSpace(sum))
	return c
}

// BindConfig configures Module.Bind.
type BindConfig struct {
	provColumns bool
	provDict    bool
	replace     []string
}

// NewBindConfig returns the default configuration: no provenance columns,
// and an output named like an upstream column refused.
func NewBindConfig() BindConfig { return BindConfig{} }

// WithReplace lets the named map-rule outputs replace the upstream columns
// of the same name (the output takes the place of the upstream column at
// the end of the record); successive calls add to the list. Without it
// such a clash is refused. Naming a column that is not an output clashing
// with an upstream column is an error, so a typo does not go unnoticed.
func (c BindConfig) WithReplace(columns ...string) BindConfig {
	c.replace = append(slices.Clip(c.replace), columns...)
	return c
}

// WithProvenanceColumns makes every result carry three more columns after
// the outputs: rule_name, rule_version and rule_sha256, the same value on
// every row; utf8, or dictionary<int32, utf8> when dictionary is true (one
// value stored per batch instead of one per row). The schema metadata
// carries the same three values with or without this option.
func (c BindConfig) WithProvenanceColumns(dictionary bool) BindConfig {
	c.provColumns, c.provDict = true, dictionary
	return c
}

// InstanceConfig configures Module.NewInstance.
type InstanceConfig struct {
	params map[string]any
	limits Limits
}

// NewInstanceConfig returns the default configuration: no parameters (the
// manifest's defaults apply) and DefaultLimits.
func NewInstanceConfig() InstanceConfig { return InstanceConfig{} }

// WithParams sets the rule's parameters, checked against its manifest by
// NewInstance (which fills in defaults). The map is read, never changed,
// and must not change while the config is in use.
func (c InstanceConfig) WithParams(params map[string]any) InstanceConfig {
	c.params = params
	return c
}

// WithLimits sets what the instance may use; a zero field of l takes its
// default (DefaultLimits).
func (c InstanceConfig) WithLimits(l Limits) InstanceConfig {
	c.limits = l
	return c
}
