// Package inspect examines a compiled rule module: its manifest, imports,
// exports, size and sha256, and whether it conforms to the rule ABI
// (rules/abi), checked against the ABI's single table of function
// signatures and then by the host's own Load. `vigie rule inspect` prints
// its Report.
package inspect

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
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/rules/abi"
)

// Report is what File finds in a module; `vigie rule inspect --json`
// prints it as is.
type Report struct {
	File     string        `json:"file"`
	Size     int64         `json:"size"`
	SHA256   string        `json:"sha256"`
	Manifest *abi.Manifest `json:"manifest,omitempty"`
	Imports  []Import      `json:"imports"`
	Exports  []Export      `json:"exports"`
	Checks   []Check       `json:"checks"`
	Conforms bool          `json:"conforms"`
}

// Import is one import of the module.
type Import struct {
	Module    string `json:"module"`
	Name      string `json:"name"`
	Kind      string `json:"kind"` // function or memory
	Signature string `json:"signature,omitempty"`
}

// Export is one export of the module.
type Export struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"` // function or memory
	Signature string  `json:"signature,omitempty"`
	MinPages  *uint32 `json:"min_pages,omitempty"`
	MaxPages  *uint32 `json:"max_pages,omitempty"`
}

// Statuses of a Check.
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip" // not applicable, or not checked after an earlier failure
)

// Check is one conformance check and its outcome.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (c Check) mark() string {
	switch c.Status {
	case Pass:
		return "✓"
	case Fail:
		return "✗"
	}
	return "-"
}

// hostFuncs are the ABI's imports by name.
func hostFuncs() map[string]abi.Signature {
	m := map[string]abi.Signature{}
	for _, f := range abi.Imports() {
		m[f.Name] = f.Signature
	}
	return m
}

// File examines the module at path: a static look at its imports and
// exports, then, when they allow it, a sandboxed instance that reads its ABI
// version and manifest, then the host's own Load and NewInstance (rule logs
// go to log). A module that does not conform is a Report with Conforms
// false, not an error; the error is for a file that cannot be read or a
// host that cannot start.
func File(ctx context.Context, path string, log *slog.Logger) (*Report, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(wasm)
	r := &Report{File: path, Size: int64(len(wasm)), SHA256: hex.EncodeToString(sum[:]),
		Imports: []Import{}, Exports: []Export{}}
	add := func(name, status, detail string) {
		r.Checks = append(r.Checks, Check{Name: name, Status: status, Detail: detail})
	}
	defer func() {
		r.Conforms = true
		for _, c := range r.Checks {
			if c.Status == Fail {
				r.Conforms = false
			}
		}
	}()

	// Compiling is not the rule's time: only the probe's calls into the
	// guest are bounded (by wasmhost.DefaultTimeout, as the host bounds a
	// call), so that a large module on a loaded machine is not reported as
	// hanging.
	wrt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).WithMemoryLimitPages(wasmhost.DefaultMemoryPages))
	defer wrt.Close(context.WithoutCancel(ctx))
	cm, err := wrt.CompileModule(ctx, wasm)
	if err != nil {
		add("valid WebAssembly module", Fail, err.Error())
		return r, nil
	}
	add("valid WebAssembly module", Pass, "")

	// Imports.
	var forbidden, badSig []string
	hosts := hostFuncs()
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		r.Imports = append(r.Imports, Import{Module: mod, Name: name, Kind: "function", Signature: wasmhost.SignatureOf(f).String()})
		want, known := hosts[name]
		switch {
		case mod == abi.WASIModule:
		case mod == abi.ImportModule && known:
			if !wasmhost.SignatureOf(f).Equal(want) {
				badSig = append(badSig, fmt.Sprintf("%s.%s has signature %s, want %s", mod, name, wasmhost.SignatureOf(f), want))
			}
		default:
			forbidden = append(forbidden, fmt.Sprintf("%q", mod+"."+name))
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		r.Imports = append(r.Imports, Import{Module: mod, Name: name, Kind: "memory"})
		forbidden = append(forbidden, fmt.Sprintf("%q (memory: a rule defines its own)", mod+"."+name))
	}
	const importsCheck = "imports only vigie.log, vigie.fail and wasi_snapshot_preview1.*"
	switch {
	case len(forbidden) > 0:
		add(importsCheck, Fail, "forbidden import "+strings.Join(forbidden, ", "))
	default:
		add(importsCheck, Pass, "")
	}
	if len(badSig) > 0 {
		add("host function signatures", Fail, strings.Join(badSig, "; "))
	}

	// Exports.
	funcs := cm.ExportedFunctions()
	mems := cm.ExportedMemories()
	for name, f := range funcs {
		r.Exports = append(r.Exports, Export{Name: name, Kind: "function", Signature: wasmhost.SignatureOf(f).String()})
	}
	for name, m := range mems {
		e := Export{Name: name, Kind: "memory"}
		lo := m.Min()
		e.MinPages = &lo
		if hi, ok := m.Max(); ok {
			e.MaxPages = &hi
		}
		r.Exports = append(r.Exports, e)
	}
	sort.Slice(r.Exports, func(i, j int) bool { return r.Exports[i].Name < r.Exports[j].Name })
	if _, ok := mems[abi.ExportMemory]; ok {
		add(`exports "memory"`, Pass, "")
	} else {
		add(`exports "memory"`, Fail, "missing")
	}
	for _, e := range abi.Exports() {
		if !e.Required {
			continue
		}
		name := fmt.Sprintf("exports %s %s", e.Name, e.Signature)
		f, ok := funcs[e.Name]
		switch {
		case !ok:
			add(name, Fail, "missing")
		case !wasmhost.SignatureOf(f).Equal(e.Signature):
			add(name, Fail, "has signature "+wasmhost.SignatureOf(f).String())
		default:
			add(name, Pass, "")
		}
	}
	for _, e := range abi.Exports() {
		if e.Required {
			continue
		}
		name := fmt.Sprintf("optional %s %s", e.Name, e.Signature)
		f, ok := funcs[e.Name]
		switch {
		case !ok:
			add(name, Skip, "not exported")
		case !wasmhost.SignatureOf(f).Equal(e.Signature):
			add(name, Fail, "has signature "+wasmhost.SignatureOf(f).String())
		default:
			add(name, Pass, "")
		}
	}
	// ABI version and manifest, read from a sandboxed instance (forbidden
	// imports stubbed), even when the shape is wrong, to show what the
	// module declares.
	const versionCheck, manifestCheck = "vigie_abi_version returns 1", "manifest valid"
	_, hasVersion := funcs[abi.ExportABIVersion]
	_, hasManifest := funcs[abi.ExportManifest]
	pctx, cancel := context.WithTimeout(ctx, wasmhost.DefaultTimeout)
	version, raw, err := probe(pctx, wrt, cm)
	cancel()
	switch {
	case !hasVersion || !hasManifest:
		add(versionCheck, Skip, "not checked: missing export")
		add(manifestCheck, Skip, "not checked: missing export")
	case err != nil:
		add(versionCheck, Fail, err.Error())
		add(manifestCheck, Skip, "not checked")
	default:
		if version == abi.Version {
			add(versionCheck, Pass, "")
		} else {
			add(versionCheck, Fail, fmt.Sprintf("returns %d", version))
		}
		if raw == nil {
			add(manifestCheck, Fail, "vigie_manifest points outside memory")
		} else if man, err := abi.ParseManifest(raw); err != nil {
			add(manifestCheck, Fail, err.Error())
		} else {
			r.Manifest = man
			add(manifestCheck, Pass, "")
		}
	}

	// The host's own checks, as `vigie validate` runs them.
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithLogger(log))
	if err != nil {
		return nil, err
	}
	defer rt.Close(context.WithoutCancel(ctx))
	m, err := rt.Load(ctx, path, wasmhost.NewLoadConfig())
	if err != nil {
		add("loads in the Vigie host", Fail, err.Error())
		return r, nil
	}
	defer m.Close(ctx)
	add("loads in the Vigie host", Pass, "")
	r.Manifest = m.Manifest
	const instCheck = "instantiates with the default params (vigie_init)"
	for _, p := range m.Manifest.Params {
		if p.Default == nil {
			add(instCheck, Skip, fmt.Sprintf("param %q has no default", p.Name))
			return r, nil
		}
	}
	inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
	if err != nil {
		add(instCheck, Fail, err.Error())
		return r, nil
	}
	inst.Close(ctx)
	add(instCheck, Pass, "")
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

// Print writes the report for a reader: what `vigie rule inspect` prints.
func (r *Report) Print(w io.Writer) {
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
