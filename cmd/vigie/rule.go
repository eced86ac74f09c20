package main

// vigie rule: tools for rule authors.
//
//	vigie rule new --lang go|assemblyscript|c [--kind map|group] NAME [--dir DIR] [--sdk PATH]
//	vigie rule inspect [--json] FILE.wasm
//	vigie rule test FILE.wasm CASES.toml
//	vigie rule bench FILE.wasm [--rows N] [--batch-rows N] [--seconds S]
//
// `rule new` writes a project that builds as generated and passes its own
// CASES.toml: a map rule (one output row per input row) by default, or with
// --kind group a group rule (one output row per group of rows of a key of
// the pipeline's group_by: the count and mean of the non-null marks of each
// group). Its templates are in rules/scaffold.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/transport"
	"github.com/vigie-edu/vigie/rules/abi"
	"github.com/vigie-edu/vigie/rules/host"
	"github.com/vigie-edu/vigie/rules/ruletest"
	"github.com/vigie-edu/vigie/rules/scaffold"
)

// vigieModule is the module path of this repository, which holds the Go SDK.
const vigieModule = "github.com/vigie-edu/vigie"

// newRuleCmd is `vigie rule new|inspect|test|bench`.
func newRuleCmd(stdout, stderr io.Writer) *cobra.Command {
	return newGroupCmd("rule", "Tools for rule authors: new, inspect, test, bench",
		`Tools for rule authors: scaffold a rule project, inspect a module's
manifest and conformance, run golden cases, measure rows/s.`,
		newRuleNewCmd(stdout, stderr), newRuleInspectCmd(stdout, stderr),
		newRuleTestCmd(stdout, stderr), newRuleBenchCmd(stdout, stderr))
}

// fileExt completes the i-th argument with files of the i-th extension.
func fileExt(exts ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) >= len(exts) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []string{exts[len(args)]}, cobra.ShellCompDirectiveFilterFileExt
	}
}

// ruleRuntime returns a rule runtime whose rule logs go to stderr at warn
// level and above.
func ruleRuntime(ctx context.Context, stderr io.Writer) (*host.Runtime, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return host.NewRuntime(ctx, host.WithLogger(log))
}

// ---------------------------------------------------------------- new

func newRuleNewCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Scaffold a rule project that builds and passes its golden cases as generated",
		Long: `Scaffold a rule project: a map rule (one output row per input row) by
default, or with --kind group a group rule (one output row per group of rows
of a key of the pipeline's group_by). It builds as generated and passes its
own CASES.toml.`,
		Example: "  vigie rule new --lang go late_score\n  vigie rule new --lang c --kind group mean_mark --dir rules/mean_mark",
		Args:    cobra.ExactArgs(1),
	}
	fs := cmd.Flags()
	lang := fs.String("lang", "go", "language of the rule: "+strings.Join(scaffold.Languages, ", "))
	kind := fs.String("kind", "map", "kind of rule: map (one output row per input row) or group (one output row per group of rows of a key of the pipeline's group_by)")
	dir := fs.String("dir", "", "directory of the new project (default: ./NAME); must not exist or be empty")
	sdk := fs.String("sdk", "", "vigie checkout whose SDKs the project uses (default: the checkout around the project, else the one this binary was built from)")
	_ = cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions(scaffold.Languages, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(scaffold.Kinds, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("dir")
	_ = cmd.MarkFlagDirname("sdk")
	cmd.RunE = do(func(_ *cobra.Command, pos []string) int {
		name := pos[0]
		if err := scaffold.CheckName(name); err != nil {
			fmt.Fprintf(stderr, "vigie rule new: %v\n", err)
			return exitUsage
		}
		if !slices.Contains(scaffold.Kinds, *kind) {
			fmt.Fprintf(stderr, "vigie rule new: unknown kind %q (want one of %s)\n", *kind, strings.Join(scaffold.Kinds, ", "))
			return exitUsage
		}
		if *dir == "" {
			*dir = name
		}
		absDir, err := filepath.Abs(*dir)
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule new: %v\n", err)
			return exitFailed
		}
		v := scaffold.Vars{Name: name, Module: vigieModule, Require: "v0.0.0-00010101000000-000000000000", GoVersion: "1.24"}
		root, how := findSDK(*sdk, absDir)
		if *sdk != "" && root == "" {
			fmt.Fprintf(stderr, "vigie rule new: --sdk %s: %s\n", *sdk, how)
			return exitFailed
		}
		v.SDK = root
		if root != "" {
			if gv := goDirective(filepath.Join(root, "go.mod")); gv != "" {
				v.GoVersion = gv
			}
		}
		switch *lang {
		case "go":
			if root == "" {
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == vigieModule && isReleaseVersion(bi.Main.Version) {
					v.Require = bi.Main.Version
				} else {
					fmt.Fprintf(stderr, "vigie rule new: warning: no vigie checkout found (%s); go.mod requires %s %s, which only builds once published: pass --sdk PATH to use a checkout\n", how, vigieModule, v.Require)
				}
			}
		case "assemblyscript", "c":
			if root == "" {
				fmt.Fprintf(stderr, "vigie rule new: the %s SDK comes from a vigie checkout and none was found (%s): pass --sdk PATH\n", *lang, how)
				return exitFailed
			}
			need := filepath.Join(root, "rules", "sdk", "c", "build.sh")
			if *lang == "assemblyscript" {
				need = filepath.Join(root, asSDKFile)
				v.AssemblyScript = assemblyScriptVersion(root)
			}
			if _, err := os.Stat(need); err != nil {
				fmt.Fprintf(stderr, "vigie rule new: the %s SDK is missing from %s: %v\n", *lang, root, err)
				return exitFailed
			}
		default:
			fmt.Fprintf(stderr, "vigie rule new: unknown language %q (want one of %s)\n", *lang, strings.Join(scaffold.Languages, ", "))
			return exitUsage
		}
		files, err := scaffold.Generate(*lang, *kind, absDir, v)
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule new: %v\n", err)
			return exitFailed
		}
		if *lang == "assemblyscript" {
			// The SDK is one file, copied into the project.
			const dst = "assembly/vigie.ts"
			if err := copyRegular(filepath.Join(root, asSDKFile), filepath.Join(absDir, filepath.FromSlash(dst))); err != nil {
				fmt.Fprintf(stderr, "vigie rule new: %v\n", err)
				return exitFailed
			}
			files = append(files, dst)
			sort.Strings(files)
		}
		fmt.Fprintf(stdout, "created %s %s rule %q in %s\n", *lang, *kind, name, *dir)
		for _, f := range files {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
		if root != "" {
			fmt.Fprintf(stdout, "SDK: %s (%s)\n", root, how)
		}
		fmt.Fprintf(stdout, "\nnext:\n  cd %s\n", *dir)
		switch *lang {
		case "go":
			fmt.Fprintf(stdout, "  go generate\n")
		case "assemblyscript":
			fmt.Fprintf(stdout, "  npm install && npm run build\n")
		case "c":
			fmt.Fprintf(stdout, "  ./build.sh\n")
		}
		fmt.Fprintf(stdout, "  vigie rule test %s.wasm CASES.toml\n  vigie rule inspect %s.wasm\n", name, name)
		return exitOK
	})
	return cmd
}

// asSDKFile is the AssemblyScript SDK, relative to a vigie checkout.
var asSDKFile = filepath.Join("rules", "sdk", "assemblyscript", "assembly", "vigie.ts")

// assemblyScriptVersion returns the assemblyscript version the SDK of the
// checkout at root is built with.
func assemblyScriptVersion(root string) string {
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	b, err := os.ReadFile(filepath.Join(root, "rules", "sdk", "assemblyscript", "package.json"))
	if err == nil && json.Unmarshal(b, &pkg) == nil && pkg.DevDependencies["assemblyscript"] != "" {
		return pkg.DevDependencies["assemblyscript"]
	}
	return "0.28.20"
}

func copyRegular(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// isReleaseVersion reports whether v names a published version of the
// module (not "(devel)", not a local pseudo-version or a dirty build).
func isReleaseVersion(v string) bool {
	return strings.HasPrefix(v, "v") && !strings.Contains(v, "+") && !strings.Contains(v, "-0.") &&
		!strings.HasPrefix(v, "v0.0.0-")
}

// findSDK returns the root of the vigie checkout that holds the SDKs, and
// how it was found (or why none was). With flagPath, only that path is
// tried. Otherwise: the checkout around dir, the one around the working
// directory, then the one this binary was built from.
func findSDK(flagPath, dir string) (string, string) {
	if flagPath != "" {
		abs, err := filepath.Abs(flagPath)
		if err != nil {
			return "", err.Error()
		}
		if !isVigieRoot(abs) {
			return "", fmt.Sprintf("%s is not a vigie checkout (no go.mod of module %s with rules/sdk)", abs, vigieModule)
		}
		return abs, "--sdk"
	}
	if root := vigieRootAbove(dir); root != "" {
		return root, "the checkout around the project"
	}
	if wd, err := os.Getwd(); err == nil {
		if root := vigieRootAbove(wd); root != "" {
			return root, "the checkout around the working directory"
		}
	}
	if root := buildRoot(); root != "" {
		return root, "the checkout vigie was built from"
	}
	return "", "not around the project or the working directory, and vigie was not built from a checkout"
}

// buildRoot returns the checkout this file was compiled from, when it still
// exists (the path is empty or relative with -trimpath).
func buildRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // cmd/vigie/rule.go
	if isVigieRoot(root) {
		return root
	}
	return ""
}

func vigieRootAbove(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if isVigieRoot(d) {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func isVigieRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	if modulePath(b) != vigieModule {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, "rules", "sdk"))
	return err == nil && st.IsDir()
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// goDirective returns the go version of a go.mod ("1.26.0"), or "".
func goDirective(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// ---------------------------------------------------------------- inspect

// inspection is what `vigie rule inspect` finds; --json prints it.
type inspection struct {
	File     string        `json:"file"`
	Size     int64         `json:"size"`
	SHA256   string        `json:"sha256"`
	Manifest *abi.Manifest `json:"manifest,omitempty"`
	Imports  []wasmImport  `json:"imports"`
	Exports  []wasmExport  `json:"exports"`
	Checks   []check       `json:"checks"`
	Conforms bool          `json:"conforms"`
}

type wasmImport struct {
	Module    string `json:"module"`
	Name      string `json:"name"`
	Kind      string `json:"kind"` // function or memory
	Signature string `json:"signature,omitempty"`
}

type wasmExport struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"` // function or memory
	Signature string  `json:"signature,omitempty"`
	MinPages  *uint32 `json:"min_pages,omitempty"`
	MaxPages  *uint32 `json:"max_pages,omitempty"`
}

// Check statuses.
const (
	checkPass = "pass"
	checkFail = "fail"
	checkSkip = "skip" // not applicable, or not checked after an earlier failure
)

type check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (c check) mark() string {
	switch c.Status {
	case checkPass:
		return "✓"
	case checkFail:
		return "✗"
	}
	return "-"
}

type sig struct{ params, results []api.ValueType }

func (s sig) String() string { return typeList(s.params) + " -> " + typeList(s.results) }

func sigOf(f api.FunctionDefinition) sig { return sig{f.ParamTypes(), f.ResultTypes()} }

func typeList(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return "(" + strings.Join(names, ", ") + ")"
}

var (
	vi32, vi64 = api.ValueTypeI32, api.ValueTypeI64

	// The ABI's exports and imports (rule-abi.md, section 1), in the order
	// the checks are printed.
	requiredFuncs = []struct {
		name string
		sig  sig
	}{
		{abi.ExportABIVersion, sig{nil, []api.ValueType{vi32}}},
		{abi.ExportManifest, sig{nil, []api.ValueType{vi64}}},
		{abi.ExportAlloc, sig{[]api.ValueType{vi32}, []api.ValueType{vi32}}},
		{abi.ExportEval, sig{[]api.ValueType{vi32, vi32}, []api.ValueType{vi32}}},
	}
	optionalFuncs = []struct {
		name string
		sig  sig
	}{
		{abi.ExportInitialize, sig{nil, nil}},
		{abi.ExportInit, sig{[]api.ValueType{vi32, vi32}, []api.ValueType{vi32}}},
	}
	hostFuncs = map[string]sig{
		abi.ImportLog:  {[]api.ValueType{vi32, vi32, vi32}, nil},
		abi.ImportFail: {[]api.ValueType{vi32, vi32}, nil},
	}
)

func (s sig) equal(o sig) bool { return s.String() == o.String() }

// inspect examines the module at path: a static look at its imports and
// exports, then, when they allow it, a sandboxed instance that reads its ABI
// version and manifest, then the host's own Load and NewInstance.
func inspect(ctx context.Context, path string, stderr io.Writer) (*inspection, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(wasm)
	r := &inspection{File: path, Size: int64(len(wasm)), SHA256: hex.EncodeToString(sum[:]),
		Imports: []wasmImport{}, Exports: []wasmExport{}}
	add := func(name, status, detail string) {
		r.Checks = append(r.Checks, check{Name: name, Status: status, Detail: detail})
	}
	defer func() {
		r.Conforms = true
		for _, c := range r.Checks {
			if c.Status == checkFail {
				r.Conforms = false
			}
		}
	}()

	ctx, cancel := context.WithTimeout(ctx, host.DefaultTimeout)
	defer cancel()
	wrt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).WithMemoryLimitPages(host.DefaultMemoryPages))
	defer wrt.Close(context.WithoutCancel(ctx))
	cm, err := wrt.CompileModule(ctx, wasm)
	if err != nil {
		add("valid WebAssembly module", checkFail, err.Error())
		return r, nil
	}
	add("valid WebAssembly module", checkPass, "")

	// Imports.
	var forbidden, badSig []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		r.Imports = append(r.Imports, wasmImport{Module: mod, Name: name, Kind: "function", Signature: sigOf(f).String()})
		want, known := hostFuncs[name]
		switch {
		case mod == abi.WASIModule:
		case mod == abi.ImportModule && known:
			if !sigOf(f).equal(want) {
				badSig = append(badSig, fmt.Sprintf("%s.%s has signature %s, want %s", mod, name, sigOf(f), want))
			}
		default:
			forbidden = append(forbidden, fmt.Sprintf("%q", mod+"."+name))
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		r.Imports = append(r.Imports, wasmImport{Module: mod, Name: name, Kind: "memory"})
		forbidden = append(forbidden, fmt.Sprintf("%q (memory: a rule defines its own)", mod+"."+name))
	}
	const importsCheck = "imports only vigie.log, vigie.fail and wasi_snapshot_preview1.*"
	switch {
	case len(forbidden) > 0:
		add(importsCheck, checkFail, "forbidden import "+strings.Join(forbidden, ", "))
	default:
		add(importsCheck, checkPass, "")
	}
	if len(badSig) > 0 {
		add("host function signatures", checkFail, strings.Join(badSig, "; "))
	}

	// Exports.
	funcs := cm.ExportedFunctions()
	mems := cm.ExportedMemories()
	for name, f := range funcs {
		r.Exports = append(r.Exports, wasmExport{Name: name, Kind: "function", Signature: sigOf(f).String()})
	}
	for name, m := range mems {
		e := wasmExport{Name: name, Kind: "memory"}
		lo := m.Min()
		e.MinPages = &lo
		if hi, ok := m.Max(); ok {
			e.MaxPages = &hi
		}
		r.Exports = append(r.Exports, e)
	}
	sort.Slice(r.Exports, func(i, j int) bool { return r.Exports[i].Name < r.Exports[j].Name })
	if _, ok := mems[abi.ExportMemory]; ok {
		add(`exports "memory"`, checkPass, "")
	} else {
		add(`exports "memory"`, checkFail, "missing")
	}
	for _, e := range requiredFuncs {
		name := fmt.Sprintf("exports %s %s", e.name, e.sig)
		f, ok := funcs[e.name]
		switch {
		case !ok:
			add(name, checkFail, "missing")
		case !sigOf(f).equal(e.sig):
			add(name, checkFail, "has signature "+sigOf(f).String())
		default:
			add(name, checkPass, "")
		}
	}
	for _, e := range optionalFuncs {
		name := fmt.Sprintf("optional %s %s", e.name, e.sig)
		f, ok := funcs[e.name]
		switch {
		case !ok:
			add(name, checkSkip, "not exported")
		case !sigOf(f).equal(e.sig):
			add(name, checkFail, "has signature "+sigOf(f).String())
		default:
			add(name, checkPass, "")
		}
	}
	// ABI version and manifest, read from a sandboxed instance (forbidden
	// imports stubbed), even when the shape is wrong, to show what the
	// module declares.
	const versionCheck, manifestCheck = "vigie_abi_version returns 1", "manifest valid"
	_, hasVersion := funcs[abi.ExportABIVersion]
	_, hasManifest := funcs[abi.ExportManifest]
	version, raw, err := probe(ctx, wrt, cm)
	switch {
	case !hasVersion || !hasManifest:
		add(versionCheck, checkSkip, "not checked: missing export")
		add(manifestCheck, checkSkip, "not checked: missing export")
	case err != nil:
		add(versionCheck, checkFail, err.Error())
		add(manifestCheck, checkSkip, "not checked")
	default:
		if version == abi.Version {
			add(versionCheck, checkPass, "")
		} else {
			add(versionCheck, checkFail, fmt.Sprintf("returns %d", version))
		}
		if raw == nil {
			add(manifestCheck, checkFail, "vigie_manifest points outside memory")
		} else if man, err := abi.ParseManifest(raw); err != nil {
			add(manifestCheck, checkFail, err.Error())
		} else {
			r.Manifest = man
			add(manifestCheck, checkPass, "")
		}
	}

	// The host's own checks, as `vigie validate` runs them.
	rt, err := ruleRuntime(ctx, stderr)
	if err != nil {
		return nil, err
	}
	defer rt.Close(context.WithoutCancel(ctx))
	m, err := rt.Load(ctx, path)
	if err != nil {
		add("loads in the Vigie host", checkFail, err.Error())
		return r, nil
	}
	defer m.Close(ctx)
	add("loads in the Vigie host", checkPass, "")
	r.Manifest = m.Manifest
	const instCheck = "instantiates with the default params (vigie_init)"
	for _, p := range m.Manifest.Params {
		if p.Default == nil {
			add(instCheck, checkSkip, fmt.Sprintf("param %q has no default", p.Name))
			return r, nil
		}
	}
	inst, err := m.NewInstance(ctx, nil, host.DefaultLimits())
	if err != nil {
		add(instCheck, checkFail, err.Error())
		return r, nil
	}
	inst.Close(ctx)
	add(instCheck, checkPass, "")
	return r, nil
}

// probe instantiates cm in wrt with a sandboxed WASI, do-nothing vigie
// host functions and, for any other imported function, a stub that returns
// zeros; it returns what vigie_abi_version returns and the manifest's bytes
// (nil when they lie outside memory).
func probe(ctx context.Context, wrt wazero.Runtime, cm wazero.CompiledModule) (uint32, []byte, error) {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wrt); err != nil {
		return 0, nil, err
	}
	builders := map[string]wazero.HostModuleBuilder{}
	seen := map[string]bool{}
	var order []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == abi.WASIModule || seen[mod+"\x00"+name] {
			continue
		}
		seen[mod+"\x00"+name] = true
		b, ok := builders[mod]
		if !ok {
			b = wrt.NewHostModuleBuilder(mod)
			builders[mod] = b
			order = append(order, mod)
		}
		nres := len(f.ResultTypes())
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			clear(stack[:nres])
		}), f.ParamTypes(), f.ResultTypes()).Export(name)
	}
	for _, mod := range order {
		if _, err := builders[mod].Instantiate(ctx); err != nil {
			return 0, nil, fmt.Errorf("stub imports of %q: %w", mod, err)
		}
	}
	mod, err := wrt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return 0, nil, fmt.Errorf("instantiate: %w", err)
	}
	defer mod.Close(ctx)
	fv, fm := mod.ExportedFunction(abi.ExportABIVersion), mod.ExportedFunction(abi.ExportManifest)
	if fv == nil || fm == nil || mod.Memory() == nil {
		return 0, nil, errors.New("missing export")
	}
	if f := mod.ExportedFunction(abi.ExportInitialize); f != nil {
		if _, err := f.Call(ctx); err != nil {
			return 0, nil, fmt.Errorf("%s: %w", abi.ExportInitialize, err)
		}
	}
	v, err := fv.Call(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", abi.ExportABIVersion, err)
	}
	pl, err := fm.Call(ctx)
	if err != nil {
		return uint32(v[0]), nil, fmt.Errorf("%s: %w", abi.ExportManifest, err)
	}
	b, ok := mod.Memory().Read(uint32(pl[0]>>32), uint32(pl[0]))
	if !ok {
		return uint32(v[0]), nil, nil
	}
	return uint32(v[0]), append([]byte(nil), b...), nil
}

func newRuleInspectCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "inspect FILE.wasm",
		Short:             "Print a module's manifest, imports, exports, size, sha256 and conformance checks",
		Long:              "Print a module's manifest, imports, exports, size, sha256 and conformance\nchecks; exit 1 when it does not conform to the rule ABI.",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: fileExt("wasm"),
	}
	asJSON := cmd.Flags().Bool("json", false, "print the result as JSON")
	cmd.RunE = do(func(_ *cobra.Command, pos []string) int {
		ctx := context.Background()
		r, err := inspect(ctx, pos[0], stderr)
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule inspect: %v\n", err)
			return exitFailed
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(r); err != nil {
				fmt.Fprintf(stderr, "vigie rule inspect: %v\n", err)
				return exitFailed
			}
		} else {
			printInspection(stdout, r)
		}
		if !r.Conforms {
			return exitFailed
		}
		return exitOK
	})
	return cmd
}

func printInspection(w io.Writer, r *inspection) {
	fmt.Fprintf(w, "%s\n", r.File)
	fmt.Fprintf(w, "  size    %s (%d bytes)\n", humanBytes(r.Size), r.Size)
	fmt.Fprintf(w, "  sha256  %s\n", r.SHA256)
	if m := r.Manifest; m != nil {
		fmt.Fprintf(w, "\nmanifest\n")
		fmt.Fprintf(w, "  name         %s\n", m.Name)
		fmt.Fprintf(w, "  version      %s\n", m.Version)
		fmt.Fprintf(w, "  kind         %s\n", m.Kind)
		if m.Description != "" {
			fmt.Fprintf(w, "  description  %s\n", m.Description)
		}
		printColumns(w, "inputs", m.Inputs)
		printColumns(w, "outputs", m.Outputs)
		if len(m.Params) == 0 {
			fmt.Fprintf(w, "  params       (none)\n")
		} else {
			fmt.Fprintf(w, "  params\n")
			for _, p := range m.Params {
				def := "required (no default)"
				if p.Default != nil {
					js, _ := json.Marshal(p.Default)
					def = "default " + string(js)
				}
				fmt.Fprintf(w, "    %-20s %-12s %s", p.Name, p.Type, def)
				if p.Description != "" {
					fmt.Fprintf(w, "  # %s", p.Description)
				}
				fmt.Fprintln(w)
			}
		}
	}
	fmt.Fprintf(w, "\nimports (%d)\n", len(r.Imports))
	for _, im := range r.Imports {
		fmt.Fprintf(w, "  %-45s %s\n", im.Module+"."+im.Name, orKind(im.Signature, im.Kind))
	}
	fmt.Fprintf(w, "\nexports (%d)\n", len(r.Exports))
	for _, e := range r.Exports {
		desc := e.Signature
		if e.Kind == "memory" {
			desc = fmt.Sprintf("memory, %d pages initially", *e.MinPages)
			if e.MaxPages != nil {
				desc += fmt.Sprintf(", at most %d", *e.MaxPages)
			}
		}
		fmt.Fprintf(w, "  %-45s %s\n", e.Name, desc)
	}
	fmt.Fprintf(w, "\nconformance (rule ABI %d)\n", abi.Version)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "  %s %s", c.mark(), c.Name)
		if c.Detail != "" {
			fmt.Fprintf(w, ": %s", c.Detail)
		}
		fmt.Fprintln(w)
	}
	if r.Conforms {
		fmt.Fprintf(w, "\n%s conforms to the rule ABI\n", r.File)
	} else {
		fmt.Fprintf(w, "\n%s does NOT conform to the rule ABI\n", r.File)
	}
}

func printColumns(w io.Writer, label string, cols []abi.Column) {
	if len(cols) == 0 {
		fmt.Fprintf(w, "  %-12s (none)\n", label)
		return
	}
	fmt.Fprintf(w, "  %s\n", label)
	for _, c := range cols {
		fmt.Fprintf(w, "    %-20s %s\n", c.Name, c.Type)
	}
}

func orKind(sig, kind string) string {
	if sig != "" {
		return sig
	}
	return kind
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ---------------------------------------------------------------- test

func newRuleTestCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "test FILE.wasm CASES.toml",
		Short:             "Run golden cases (exit 1 and a diff on a mismatch)",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: fileExt("wasm", "toml"),
	}
	cmd.RunE = do(func(_ *cobra.Command, pos []string) int {
		suite, err := ruletest.Load(pos[1])
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule test: %v\n", err)
			return exitFailed
		}
		ctx := context.Background()
		rt, err := ruleRuntime(ctx, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule test: %v\n", err)
			return exitFailed
		}
		defer rt.Close(ctx)
		rep, err := ruletest.Run(ctx, rt, pos[0], suite)
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule test: %v\n", err)
			return exitFailed
		}
		fmt.Fprint(stdout, rep.String())
		if !rep.Passed() {
			return exitFailed
		}
		return exitOK
	})
	return cmd
}

// ---------------------------------------------------------------- bench

// paramFlags collects repeated --param NAME=VALUE flags; VALUE is read as
// JSON when it parses (2, 0.5, true, "x"), else as a string.
type paramFlags map[string]any

func (p paramFlags) String() string { return "" }

// Type names the value in usage (pflag.Value).
func (p paramFlags) Type() string { return "NAME=VALUE" }

func (p paramFlags) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return errors.New("want NAME=VALUE")
	}
	dec := json.NewDecoder(strings.NewReader(val))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		v = val
	}
	p[name] = v
	return nil
}

func newRuleBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:               "bench FILE.wasm",
		Short:             "Measure rows/s on generated input matching the manifest",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: fileExt("wasm"),
	}
	fs := cmd.Flags()
	rows := fs.Int("rows", 1<<20, "rows to evaluate (the run stops at --rows or --seconds, whichever comes first)")
	batchRows := fs.Int("batch-rows", protocol.DefaultBatchRows, "rows per batch")
	seconds := fs.Float64("seconds", 10, "longest time to run, in seconds (0: no limit)")
	groupRows := fs.Int("group-rows", 16, "rows per group, for a group rule")
	seed := fs.Uint64("seed", 1, "seed of the generated input")
	params := paramFlags{}
	fs.Var(params, "param", "rule parameter NAME=VALUE (repeatable; the manifest's defaults fill the others)")
	cmd.RunE = do(func(_ *cobra.Command, pos []string) int {
		if *rows <= 0 || *batchRows <= 0 || *seconds < 0 || *groupRows <= 0 {
			fmt.Fprintln(stderr, "vigie rule bench: --rows, --batch-rows and --group-rows must be positive, --seconds not negative")
			return exitUsage
		}
		ctx := context.Background()
		rt, err := ruleRuntime(ctx, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule bench: %v\n", err)
			return exitFailed
		}
		defer rt.Close(ctx)
		m, err := rt.Load(ctx, pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule bench: %v\n", err)
			return exitFailed
		}
		defer m.Close(ctx)
		man := m.Manifest
		mem := memory.NewGoAllocator()
		batch := min(*batchRows, *rows)
		rec := generateInput(mem, man.Inputs, batch, *seed)
		defer rec.Release()
		b, err := m.Bind(rec.Schema())
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule bench: %v\n", err)
			return exitFailed
		}
		inst, err := m.NewInstance(ctx, params, host.DefaultLimits())
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule bench: %v\n", err)
			return exitFailed
		}
		defer inst.Close(ctx)
		var offsets []uint32
		if man.Kind == abi.KindGroup {
			for r := 0; r < batch; r += *groupRows {
				offsets = append(offsets, uint32(r))
			}
			offsets = append(offsets, uint32(batch))
		}
		eval := func() (int64, error) {
			var out arrow.RecordBatch
			var err error
			if man.Kind == abi.KindGroup {
				out, err = inst.EvalGroup(ctx, b, rec, offsets, mem)
			} else {
				out, err = inst.EvalMap(ctx, b, rec, mem)
			}
			if err != nil {
				return 0, err
			}
			defer out.Release()
			return outputBytes(out, len(out.Columns())-len(man.Outputs)), nil
		}
		// One batch to warm up (first allocations of the guest), not counted.
		if _, err := eval(); err != nil {
			fmt.Fprintf(stderr, "vigie rule bench: %v\n", err)
			return exitFailed
		}
		inBytes := transport.BatchBytes(rec)
		var done, batches, outBytes int64
		var worst time.Duration
		deadline := time.Duration(*seconds * float64(time.Second))
		start := time.Now()
		for done < int64(*rows) {
			t := time.Now()
			n, err := eval()
			if err != nil {
				fmt.Fprintf(stderr, "vigie rule bench: batch %d: %v\n", batches, err)
				return exitFailed
			}
			worst = max(worst, time.Since(t))
			done += int64(batch)
			batches++
			outBytes += n
			if deadline > 0 && time.Since(start) >= deadline {
				break
			}
		}
		el := time.Since(start)
		secs := el.Seconds()
		fmt.Fprintf(stdout, "rule %q %s (%s, %s), %s\n", man.Name, man.Version, man.Kind, pos[0], m.SHA256[:12])
		fmt.Fprintf(stdout, "input: %d columns (%s), %d rows per batch, ~5%% nulls, seed %d\n",
			len(man.Inputs), columnList(man.Inputs), batch, *seed)
		fmt.Fprintf(stdout, "%d rows in %d batches in %s\n", done, batches, el.Round(time.Millisecond))
		fmt.Fprintf(stdout, "%.0f rows/s\n", float64(done)/secs)
		fmt.Fprintf(stdout, "%.1f MB/s in (%.1f MB/s out)\n",
			float64(inBytes*batches)/secs/1e6, float64(outBytes)/secs/1e6)
		fmt.Fprintf(stdout, "%.1f ns/row, %s per batch on average, %s at most\n",
			float64(el.Nanoseconds())/float64(done), (el / time.Duration(batches)).Round(time.Microsecond), worst.Round(time.Microsecond))
		return exitOK
	})
	return cmd
}

func columnList(cols []abi.Column) string {
	if len(cols) == 0 {
		return "none"
	}
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.Name + " " + c.Type.String()
	}
	return strings.Join(s, ", ")
}

// outputBytes returns the bytes of out's columns from index from on.
func outputBytes(out arrow.RecordBatch, from int) int64 {
	var n int64
	for _, c := range out.Columns()[max(from, 0):] {
		n += transport.ArrayBytes(c)
	}
	return n
}

// generateInput returns n rows of the manifest's inputs, deterministic for
// a seed, with about 5 % nulls in every column.
func generateInput(mem memory.Allocator, inputs []abi.Column, n int, seed uint64) arrow.RecordBatch {
	rng := newSplitMix(seed)
	fields := make([]arrow.Field, len(inputs))
	cols := make([]arrow.Array, len(inputs))
	const (
		epochDay2024 = 19723 // 2024-01-01
		usPerDay     = 86400 * 1_000_000
	)
	for i, in := range inputs {
		fields[i] = arrow.Field{Name: in.Name, Type: host.ArrowType(in.Type), Nullable: true}
		bld := array.NewBuilder(mem, fields[i].Type)
		bld.Reserve(n)
		for range n {
			if rng.next()%20 == 0 {
				bld.AppendNull()
				continue
			}
			r := rng.next()
			switch in.Type {
			case abi.Bool:
				bld.(*array.BooleanBuilder).Append(r&1 == 1)
			case abi.Int32:
				bld.(*array.Int32Builder).Append(int32(r % 1000))
			case abi.Int64:
				bld.(*array.Int64Builder).Append(int64(r % 1_000_000))
			case abi.Float64:
				bld.(*array.Float64Builder).Append(float64(r>>11) / (1 << 53))
			case abi.Utf8:
				bld.(*array.StringBuilder).Append(randomWord(r))
			case abi.TimestampUS:
				us := (epochDay2024*86400 + int64(r%(366*86400))) * 1_000_000
				bld.(*array.TimestampBuilder).Append(arrow.Timestamp(us))
			case abi.Date32:
				bld.(*array.Date32Builder).Append(arrow.Date32(epochDay2024 + int32(r%366)))
			}
		}
		cols[i] = bld.NewArray()
		bld.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// randomWord returns a lower-case word of 3 to 12 letters drawn from r.
func randomWord(r uint64) string {
	n := 3 + int(r%10)
	r /= 10
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r%26)
		r /= 26
		if r == 0 {
			r = 0x9e3779b97f4a7c15
		}
	}
	return string(b)
}

// splitMix is SplitMix64: a small, fast, deterministic generator.
type splitMix struct{ s uint64 }

func newSplitMix(seed uint64) *splitMix { return &splitMix{seed} }

func (g *splitMix) next() uint64 {
	g.s += 0x9e3779b97f4a7c15
	z := g.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
