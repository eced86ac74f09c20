// Command vigie runs Vigie pipelines and the tools around them.
//
//	vigie run [FILE]        run a pipeline (default pipeline.toml: the early-warning job)
//	vigie validate [FILE]   check a pipeline without moving data
//	vigie plugins list|describe|docs   the connectors a pipeline can use
//	vigie gen               write a synthetic academy with ground truth (synth/academy)
//	vigie eval              measure early-warning quality (evaluation)
//	vigie console [FILE]    run a pipeline and serve the web console over its outputs (console)
//	vigie rule new|inspect|test|bench  tools for rule authors (rules/scaffold, rules/inspect, rules/ruletest, rules/bench)
//	vigie state export|erase --key K [FILE]  one student's data in the kept state (engine/state)
//	vigie audit verify [FILE]  check the audit trail's hash chain (engine/audit)
//	vigie help [COMMAND]    usage of a command; every command also takes -h, --help
//	vigie completion SHELL  completion script for bash, zsh, fish or powershell
//	vigie version
//
// This package defines the commands and their flags and calls the packages
// named above; nothing here is imported and nothing here imports examples/.
// The command line is built with cobra (cli.go). The binary also serves its
// built-in connectors as go-plugin processes when it re-executes itself with
// the hidden "__connectors" subcommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/pluginhost"
	"github.com/vigie-edu/vigie/internal/profiling"
	"github.com/vigie-edu/vigie/internal/transport"
	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/rules/abi"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// serveCommand is the hidden subcommand that serves the built-in connectors.
const serveCommand = "__connectors"

// defaultPipeline is the pipeline run and validate use without a FILE.
const defaultPipeline = "pipeline.toml"

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Plugins re-execute the binary with serveCommand: answered before the
	// command line is parsed, so nothing of cobra runs in a plugin process.
	role := "engine"
	if len(args) > 0 && args[0] == serveCommand {
		role = "plugin"
	}
	stopProfile, err := profiling.Start(os.Getenv(profiling.EnvDir), role)
	if err != nil {
		fmt.Fprintln(stderr, "vigie:", err)
		return exitFailed
	}
	defer func() {
		if err := stopProfile(); err != nil {
			fmt.Fprintln(stderr, "vigie:", err)
		}
	}()
	if role == "plugin" {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		transport.Serve(builtin.Registry(), memory.NewGoAllocator(), log)
		return exitOK
	}
	return execute(newRoot(stdout, stderr), args, stderr)
}

func versionLine() string {
	return fmt.Sprintf("vigie %s (connector protocol %d, rule ABI %d)\n", version, protocol.Version, abi.Version)
}

// common holds the flags shared by run and validate.
type common struct {
	inProcess bool
	perStage  bool // one plugin process per built-in stage (--plugin-per-stage)
	logLevel  string
	stop      <-chan struct{} // closed when a graceful stop begins (run)
	obs       observeFlags    // run only: --listen, --progress (observe.go)
}

func (c *common) register(fs *pflag.FlagSet) {
	fs.BoolVar(&c.inProcess, "in-process", false, "serve built-in connectors inside the engine process instead of plugin processes (debugging, benchmarks)")
	fs.BoolVar(&c.perStage, "plugin-per-stage", false, "serve each stage's built-in connector in a plugin process of its own instead of one process shared by the built-in stages (stricter isolation, one process start per stage)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
}

// newPipelineCmd is run or validate: flags of common, an optional FILE.
func newPipelineCmd(use, short, long string, body func(c *common, file string) int) *cobra.Command {
	c := &common{}
	cmd := &cobra.Command{
		Use:   use + " [FILE]",
		Short: short,
		Long:  long,
		Args:  cobra.MaximumNArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"toml"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: do(func(_ *cobra.Command, args []string) int {
			file := defaultPipeline
			if len(args) == 1 {
				file = args[0]
			}
			return body(c, file)
		}),
	}
	c.register(cmd.Flags())
	if use == "run" {
		c.obs.register(cmd.Flags())
	}
	_ = cmd.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// engine is what a command needs to prepare a pipeline.
type engine struct {
	cfg   *config.Pipeline
	log   *slog.Logger
	host  *pluginhost.Host
	rules *wasmhost.Runtime
}

func (e *engine) close(ctx context.Context) {
	if e.rules != nil {
		e.rules.Close(ctx)
	}
	if e.host != nil {
		e.host.Close()
	}
}

func (c *common) open(ctx context.Context, file string, stderr io.Writer) (*engine, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, log: log}
	opts := pluginhost.Options{Builtins: builtin.Registry(), Logger: log, Dirs: pluginDirs(cfg), Stop: c.stop, ShareBuiltins: !c.perStage}
	if !c.inProcess {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable to serve connectors: %w", err)
		}
		opts.BuiltinCommand = func() *exec.Cmd { return exec.Command(self, serveCommand) }
	}
	e.host = pluginhost.NewHost(opts)
	e.rules, err = wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithLogger(log))
	if err != nil {
		e.close(ctx)
		return nil, err
	}
	return e, nil
}

// pluginDirs lists where third-party connectors are looked for.
func pluginDirs(cfg *config.Pipeline) []string {
	var dirs []string
	if cfg.PluginsDir != "" {
		dirs = append(dirs, cfg.PluginsDir)
	}
	if d := os.Getenv("VIGIE_PLUGIN_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	return append(dirs, filepath.Join(cfg.Dir, "plugins"))
}

func (e *engine) prepare(ctx context.Context) (*pipeline.Plan, error) {
	return pipeline.Prepare(ctx, e.cfg, pipeline.Env{Connectors: e.host, Rules: e.rules, Mem: memory.NewGoAllocator(), Log: e.log})
}

func cmdValidate(c *common, file string, stdout, stderr io.Writer) int {
	ctx := context.Background()
	e, err := c.open(ctx, file, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer e.close(ctx)
	plan, err := e.prepare(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer plan.Close(ctx)
	fmt.Fprintf(stdout, "%s: pipeline %q is valid\n", file, e.cfg.Name)
	for _, name := range e.cfg.Order() {
		fmt.Fprintf(stdout, "  %-8s %-16s %s\n", e.cfg.Kind(name), name, plan.Schema(name))
	}
	if e.cfg.Privacy != nil {
		printPersonalFlows(stdout, plan)
	}
	return exitOK
}

func cmdRun(c *common, file string, stdout, stderr io.Writer) int {
	// The first SIGINT or SIGTERM stops the sources and lets the sinks
	// flush, within the pipeline's stop_timeout; a second one aborts.
	ctx, stop, release := pipeline.OnSignals(context.Background(), func(sig os.Signal, n int) {
		if n == 1 {
			fmt.Fprintf(stderr, "vigie: %s: stopping sources, flushing sinks (again to abort)\n", sig)
		} else {
			fmt.Fprintf(stderr, "vigie: %s: aborting\n", sig)
		}
	}, os.Interrupt, syscall.SIGTERM)
	defer release()

	c.stop = stop
	e, err := c.open(ctx, file, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer e.close(context.WithoutCancel(ctx))
	plan, err := e.prepare(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer plan.Close(context.WithoutCancel(ctx))
	obs, stopObs, err := c.obs.start(ctx, e, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	sum, err := plan.Run(ctx, pipeline.RunOptions{Stop: stop, Observer: obs})
	stopObs()
	sum.Print(stdout)
	if id := plan.KeyID(); id != "" {
		fmt.Fprintf(stdout, "pseudonyms: key %s%s\n", id, previousKey(plan))
	}
	if sum.DeadLettered() > 0 {
		// Not when only sinks dead-lettered rows, into files of their own
		// (the webhook sink's outbox).
		if _, err := os.Stat(plan.DeadLetterPath()); err == nil {
			fmt.Fprintf(stdout, "dead letters: %s\n", plan.DeadLetterPath())
		}
	}
	if a := plan.Audit(); a.Path != "" {
		fmt.Fprintf(stdout, "audit: %s entry %d sha256 %s\n", a.Path, a.Seq, a.Hash)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, stream.ErrInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailed
}

// previousKey describes the previous pseudonymisation key of a rotation,
// if one is still used for lookups.
func previousKey(plan *pipeline.Plan) string {
	if id := plan.PreviousKeyID(); id != "" {
		return fmt.Sprintf(" (previous key %s used for lookups until %s)", id, plan.Config().Privacy.PreviousKeyUntil.Format("2006-01-02"))
	}
	return ""
}

// printPersonalFlows says which personal columns reach which outputs.
func printPersonalFlows(w io.Writer, plan *pipeline.Plan) {
	fmt.Fprintln(w, "personal data ([privacy]):")
	for _, f := range plan.PersonalFlows() {
		cols := "none"
		if len(f.Columns) > 0 {
			cols = strings.Join(f.Columns, ", ")
		}
		fmt.Fprintf(w, "  %-16s %s\n", f.Output, cols)
	}
	dl := "raw source rows (any column)"
	if id := plan.KeyID(); id != "" {
		dl = "raw source rows withheld, quoted values pseudonymised"
		fmt.Fprintf(w, "  pseudonymisation key %s%s\n", id, previousKey(plan))
	}
	fmt.Fprintf(w, "  %-16s %s: %s\n", "dead letters", plan.DeadLetterPath(), dl)
	fmt.Fprintf(w, "  %-16s %s\n", "audit log", plan.Config().AuditLog)
}
