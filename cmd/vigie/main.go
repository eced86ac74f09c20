// Command vigie runs Vigie pipelines.
//
//	vigie run [FILE]        run a pipeline (default pipeline.toml)
//	vigie validate [FILE]   check a pipeline without moving data
//	vigie version
//
// The binary also serves its built-in connectors as go-plugin processes
// when it re-executes itself with the hidden "__connectors" subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/plugins"
	"github.com/vigie-edu/vigie/rules/host"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// serveCommand is the hidden subcommand that serves the built-in connectors.
const serveCommand = "__connectors"

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

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: vigie <command> [arguments]

commands:
  run [FILE]        run a pipeline (default: pipeline.toml)
  validate [FILE]   check a pipeline: keys, connectors and their options,
                    rule modules, rule inputs against upstream schemas
  rule COMMAND      tools for rule authors: new, inspect, test, bench
  plugins COMMAND   connectors, built-in and third-party: list, describe, docs
  gen [flags]       write a synthetic academy with ground truth (vigie gen -h)
  eval [flags]      measure early-warning quality against ground truth or a label (vigie eval -h)
  version           print the version

run "vigie <command> -h" for a command's flags.
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case serveCommand:
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		protocol.Serve(builtin.Registry(), log)
		return exitOK
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "gen":
		return cmdGen(args[1:], stdout, stderr)
	case "eval":
		return cmdEval(args[1:], stdout, stderr)
	case "plugins":
		return cmdPlugins(args[1:], stdout, stderr)
	case "rule":
		return cmdRule(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "vigie %s (connector protocol %d, rule ABI 1)\n", version, protocol.Version)
		return exitOK
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "vigie: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

// common holds the flags shared by run and validate.
type common struct {
	inProcess bool
	logLevel  string
	stop      <-chan struct{} // closed when a graceful stop begins (run)
}

func (c *common) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.inProcess, "in-process", false, "serve built-in connectors inside the engine process instead of plugin processes (debugging, benchmarks)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
}

func parseArgs(name string, args []string, stderr io.Writer) (*common, string, bool) {
	c := &common{}
	fs := flag.NewFlagSet("vigie "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: vigie %s [flags] [FILE]\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, "", false
	}
	file := "pipeline.toml"
	switch fs.NArg() {
	case 0:
	case 1:
		file = fs.Arg(0)
	default:
		fs.Usage()
		return nil, "", false
	}
	return c, file, true
}

// engine is what a command needs to prepare a pipeline.
type engine struct {
	cfg   *config.Pipeline
	log   *slog.Logger
	host  *plugins.Host
	rules *host.Runtime
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
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, log: log}
	opts := plugins.Options{Builtins: builtin.Registry(), Logger: log, Dirs: pluginDirs(cfg), Stop: c.stop}
	if !c.inProcess {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable to serve connectors: %w", err)
		}
		opts.BuiltinCommand = func() *exec.Cmd { return exec.Command(self, serveCommand) }
	}
	e.host = plugins.NewHost(opts)
	e.rules, err = host.NewRuntime(ctx, host.WithLogger(log))
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
	return pipeline.Prepare(ctx, e.cfg, pipeline.Env{Connectors: e.host, Rules: e.rules, Log: e.log})
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	c, file, ok := parseArgs("validate", args, stderr)
	if !ok {
		return exitUsage
	}
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
	return exitOK
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	c, file, ok := parseArgs("run", args, stderr)
	if !ok {
		return exitUsage
	}
	// The first SIGINT or SIGTERM stops the sources and lets the sinks
	// flush; a second one cancels everything.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for sig := range sigs {
			n++
			if n == 1 {
				fmt.Fprintf(stderr, "vigie: %s: stopping sources, flushing sinks (again to abort)\n", sig)
				close(stop)
				continue
			}
			cancel()
			return
		}
	}()

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
	sum, err := plan.Run(ctx, pipeline.RunOptions{Stop: stop})
	sum.Print(stdout)
	if sum.DeadLettered() > 0 {
		fmt.Fprintf(stdout, "dead letters: %s\n", plan.DeadLetterPath())
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, stream.ErrInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailed
}
