package main

//go:generate go run . plugins docs -o ../../docs/connectors.md

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/internal/pluginhost"
)

// newPluginsCmd is `vigie plugins list|describe|docs`.
func newPluginsCmd(stdout, stderr io.Writer) *cobra.Command {
	pipelineFlag := func(cmd *cobra.Command) *string {
		p := cmd.Flags().String("pipeline", "", "pipeline file whose plugins_dir to search (default: ./pipeline.toml if it exists)")
		_ = cmd.MarkFlagFilename("pipeline", "toml")
		return p
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List built-in connectors and the third-party plugins found",
		Args:  cobra.NoArgs,
	}
	listPipeline := pipelineFlag(list)
	list.RunE = do(func(*cobra.Command, []string) int { return pluginsList(*listPipeline, stdout, stderr) })

	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Print a connector's doc and options (types, defaults, docs)",
		Args:  cobra.ExactArgs(1),
		ValidArgsFunction: func(_ *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, s := range builtin.Registry().Specs() {
				if strings.HasPrefix(s.Name, prefix) {
					names = append(names, s.Name+"\t"+summary(s.Doc))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
	describePipeline := pipelineFlag(describe)
	describe.RunE = do(func(_ *cobra.Command, args []string) int {
		return pluginsDescribe(*describePipeline, args[0], stdout, stderr)
	})

	docs := &cobra.Command{
		Use:   "docs",
		Short: "Write the Markdown reference of the built-in connectors",
		Args:  cobra.NoArgs,
	}
	out := docs.Flags().StringP("output", "o", "", "write to this file instead of stdout")
	docs.RunE = do(func(*cobra.Command, []string) int { return pluginsDocs(*out, stdout, stderr) })

	return newGroupCmd("plugins", "Connectors, built-in and third-party: list, describe, docs",
		`Connectors, built-in and third-party.

Third-party plugins (executables named vigie-connector-NAME) are looked for
in the pipeline's plugins_dir, $VIGIE_PLUGIN_DIR and ./plugins.`,
		list, describe, docs)
}

// pluginHost returns a host of the built-ins and the third-party plugins
// in the search directories of the pipeline file.
func pluginHost(pipelineFile string) (*pluginhost.Host, []string, error) {
	dirs, err := pluginSearchDirs(pipelineFile)
	if err != nil {
		return nil, nil, err
	}
	// Built-ins are described in-process; third-party plugins are started
	// to ask for their spec, which the handshake checks.
	return pluginhost.NewHost(pluginhost.Options{Builtins: builtin.Registry(), Dirs: dirs}), dirs, nil
}

func pluginsList(pipelineFile string, stdout, stderr io.Writer) int {
	h, dirs, err := pluginHost(pipelineFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer h.Close()
	ctx := context.Background()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tFROM\tSUMMARY")
	for _, s := range builtin.Registry().Specs() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Version, "built-in", summary(s.Doc))
	}
	code := exitOK
	for _, p := range h.Installed() {
		c, err := h.Connector(ctx, p.Name)
		if err != nil {
			fmt.Fprintf(tw, "%s\t?\t?\t%s\tcannot start: %v\n", p.Name, p.Path, err)
			code = exitFailed
			continue
		}
		s := c.Spec()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Version, p.Path, summary(s.Doc))
	}
	tw.Flush()
	if len(h.Installed()) == 0 {
		fmt.Fprintf(stdout, "\nno third-party plugins in %s\n", strings.Join(dirs, ", "))
	}
	return code
}

func pluginsDescribe(pipelineFile, name string, stdout, stderr io.Writer) int {
	h, _, err := pluginHost(pipelineFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	defer h.Close()
	c, err := h.Connector(context.Background(), name)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	describe(stdout, c.Spec())
	return exitOK
}

func pluginsDocs(out string, stdout, stderr io.Writer) int {
	var buf bytes.Buffer
	if err := writeReference(&buf, "Built-in connectors", builtin.Registry().Specs()); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	if out == "" {
		stdout.Write(buf.Bytes())
		return exitOK
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	return exitOK
}

// pluginSearchDirs is where third-party plugins are looked for: the
// pipeline's plugins_dir (when a pipeline is given, or ./pipeline.toml
// exists), $VIGIE_PLUGIN_DIR, ./plugins.
func pluginSearchDirs(file string) ([]string, error) {
	if file == "" {
		if _, err := os.Stat("pipeline.toml"); err != nil {
			var dirs []string
			if d := os.Getenv("VIGIE_PLUGIN_DIR"); d != "" {
				dirs = append(dirs, d)
			}
			return append(dirs, "plugins"), nil
		}
		file = "pipeline.toml"
	}
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	return pluginDirs(cfg), nil
}

func summary(doc string) string {
	doc = strings.Join(strings.Fields(doc), " ")
	if i := strings.Index(doc, ". "); i >= 0 {
		doc = doc[:i+1]
	}
	if len(doc) > 100 {
		doc = doc[:97] + "..."
	}
	return doc
}

func describe(w io.Writer, s protocol.Spec) {
	fmt.Fprintf(w, "%s (%s, version %s)\n\n%s\n\noptions:\n", s.Name, s.Kind, s.Version, strings.TrimSpace(s.Doc))
	if len(s.Options) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, o := range s.Options {
		attr := string(o.Type)
		if o.Required {
			attr += ", required"
		}
		if d := defaultString(o); d != "" {
			attr += ", default " + strings.Trim(d, "`")
		}
		if len(o.Enum) > 0 {
			attr += ", one of " + strings.Join(o.Enum, " | ")
		}
		fmt.Fprintf(w, "  %s (%s)\n      %s\n", o.Name, attr, o.Doc)
	}
}
