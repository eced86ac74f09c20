package main

// The command tree, on spf13/cobra: -h/--help on every command (usage on
// stdout, exit 0), `vigie help COMMAND`, `vigie completion bash|zsh|fish`,
// and "did you mean" for unknown commands and flags. Exit codes: 0 ok,
// 1 failed, 2 usage, 130 interrupted. See RATIONALE.md, "The command line
// is cobra".

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vigie-edu/vigie/internal/suggest"
)

// exitCode is the error a command body returns for a non-zero exit status
// whose cause it has already reported.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// do adapts a command body that reports its own errors and returns an exit
// status to cobra's RunE. A body returning exitUsage has printed what was
// wrong; do adds where to find the usage.
func do(body func(cmd *cobra.Command, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		code := body(cmd, args)
		if code == exitOK {
			return nil
		}
		if code == exitUsage {
			fmt.Fprintf(cmd.ErrOrStderr(), "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitCode(code)
	}
}

// newRoot builds the command tree writing to stdout and stderr; each call
// gives a fresh tree, so tests can run commands one after the other.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "vigie",
		Short: "Vigie runs school data pipelines: connectors, WebAssembly rules, Arrow in between",
		Long: `Vigie runs school data pipelines (pipeline.toml): sources, rules in
WebAssembly, sinks, with Arrow record batches in between.

"vigie run" with no FILE runs ./pipeline.toml; in a checkout of the
repository that is the early-warning job on the bundled academy
(go generate ./... builds its rules first).`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          unknownCommand,
		RunE:          usageError,
		// It only runs to report a usage error: no "vigie [flags]" line.
		DisableFlagsInUseLine: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(versionLine())
	root.SetFlagErrorFunc(flagError)
	root.CompletionOptions.HiddenDefaultCmd = false

	root.AddCommand(
		newPipelineCmd("run", "Run a pipeline (default: pipeline.toml)",
			`Run a pipeline: read the sources, apply the rules, write the sinks and the
dead letters, then print a summary. FILE defaults to pipeline.toml.

The first SIGINT or SIGTERM stops the sources and lets the sinks flush
(exit 130); a second one aborts at once.`,
			func(c *common, file string) int { return cmdRun(c, file, stdout, stderr) }),
		newPipelineCmd("validate", "Check a pipeline without moving data",
			`Check a pipeline without moving data: keys, connectors and their options,
rule modules, rule inputs against upstream schemas. FILE defaults to
pipeline.toml.`,
			func(c *common, file string) int { return cmdValidate(c, file, stdout, stderr) }),
		newRuleCmd(stdout, stderr),
		newPluginsCmd(stdout, stderr),
		newGenCmd(stdout, stderr),
		newEvalCmd(stdout, stderr),
		newAuditCmd(stdout, stderr),
		newStateCmd(stdout, stderr),
		newConsoleCmd(stdout, stderr),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version, the connector protocol and the rule ABI",
			Args:  cobra.NoArgs,
			Run:   func(*cobra.Command, []string) { fmt.Fprint(stdout, versionLine()) },
		},
	)
	// cobra's help command prints the root's help, exit 0, for a topic it
	// does not know; vigie's is a usage error with a "did you mean".
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(_ *cobra.Command, args []string) error {
				target, rest, err := root.Find(args)
				if err != nil {
					return err
				}
				if len(rest) > 0 {
					return unknownCommand(target, rest)
				}
				target.InitDefaultHelpFlag()
				target.InitDefaultVersionFlag()
				return target.Help()
			}
		}
	}
	return root
}

// newGroupCmd is a command that only holds subcommands (rule, plugins).
func newGroupCmd(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  unknownCommand,
		RunE:  usageError,
		// It only runs to report a usage error: no "vigie rule [flags]" line.
		DisableFlagsInUseLine: true,
	}
	cmd.AddCommand(subs...)
	return cmd
}

// unknownCommand rejects an argument given to a command that only holds
// subcommands, with a "did you mean" from internal/suggest, the same for
// the root and the groups (cobra's own only checks the root's).
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return fmt.Errorf("unknown command %q for %q%s", args[0], cmd.CommandPath(), suggest.DidYouMean(args[0], names))
}

// usageError is what a command that only holds subcommands does alone:
// print its usage to stderr and exit 2.
func usageError(cmd *cobra.Command, _ []string) error {
	fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
	return exitCode(exitUsage)
}

// flagError adds a "did you mean" to an unknown flag.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return err
	}
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, "--"+f.Name) })
	return fmt.Errorf("%w%s", err, suggest.DidYouMean("--"+name, names))
}

// execute runs root over args and turns the outcome into an exit status.
// Errors cobra returns (unknown command or flag, bad flag value, wrong
// number of arguments) are usage errors: printed with where to find the
// usage, exit 2.
func execute(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(longFlags(root, args))
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "vigie: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
	return exitUsage
}

// longFlags rewrites the single-dash long flags of Go's flag package, which
// vigie used before cobra (-log-level debug, -in-process), to pflag's
// double dash, so that existing scripts and units keep working. Only the
// names of long flags the tree defines are rewritten, and nothing after
// "--".
func longFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{"help": true, "version": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if len(f.Name) > 1 {
				long[f.Name] = true
			}
		}
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				out[i] = "-" + a
			}
		}
	}
	return out
}
