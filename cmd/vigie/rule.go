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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/rules/bench"
	"github.com/vigie-edu/vigie/rules/host"
	"github.com/vigie-edu/vigie/rules/inspect"
	"github.com/vigie-edu/vigie/rules/ruletest"
	"github.com/vigie-edu/vigie/rules/scaffold"
)

// vigieModule is the module path of this repository, which holds the Go SDK.
const vigieModule = scaffold.Module

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
	return host.NewRuntime(ctx, host.WithLogger(ruleLogger(stderr)))
}

// ruleLogger logs to stderr at warn level and above.
func ruleLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
		root, how := scaffold.FindSDK(*sdk, absDir)
		if *sdk != "" && root == "" {
			fmt.Fprintf(stderr, "vigie rule new: --sdk %s: %s\n", *sdk, how)
			return exitFailed
		}
		v.SDK = root
		if root != "" {
			if gv := scaffold.GoDirective(filepath.Join(root, "go.mod")); gv != "" {
				v.GoVersion = gv
			}
		}
		switch *lang {
		case "go":
			if root == "" {
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == vigieModule && scaffold.IsReleaseVersion(bi.Main.Version) {
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
				need = filepath.Join(root, scaffold.AssemblyScriptSDK)
				v.AssemblyScript = scaffold.AssemblyScriptVersion(root)
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
			dst, err := scaffold.CopyAssemblyScriptSDK(root, absDir)
			if err != nil {
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

// ---------------------------------------------------------------- inspect

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
		r, err := inspect.File(ctx, pos[0], ruleLogger(stderr))
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
			r.Print(stdout)
		}
		if !r.Conforms {
			return exitFailed
		}
		return exitOK
	})
	return cmd
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
		res, err := bench.Run(ctx, rt, pos[0], bench.Options{Rows: *rows, BatchRows: *batchRows,
			Duration: time.Duration(*seconds * float64(time.Second)), GroupRows: *groupRows, Seed: *seed, Params: params})
		if err != nil {
			fmt.Fprintf(stderr, "vigie rule bench: %v\n", err)
			return exitFailed
		}
		res.Print(stdout)
		return exitOK
	})
	return cmd
}
