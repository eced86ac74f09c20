package main

//go:generate go run . plugins docs -o ../../docs/connectors.md

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/plugins"
)

// cmdPlugins runs `vigie plugins list|describe|docs`.
func cmdPlugins(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprint(stderr, `usage: vigie plugins <command> [flags]

commands:
  list [-pipeline FILE]                   built-in connectors and third-party plugins found
  describe [-pipeline FILE] NAME          a connector's doc and options (types, defaults, docs)
  docs [-o FILE]                          Markdown reference of the built-in connectors

Third-party plugins (executables named vigie-connector-NAME) are looked for
in the pipeline's plugins_dir, $VIGIE_PLUGIN_DIR and ./plugins.
`)
	}
	if len(args) == 0 {
		usage()
		return exitUsage
	}
	fs := flag.NewFlagSet("vigie plugins "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	pipelineFile := fs.String("pipeline", "", "pipeline file whose plugins_dir to search")
	out := fs.String("o", "", "write to this file instead of stdout (docs)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	dirs, err := pluginSearchDirs(*pipelineFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailed
	}
	// Built-ins are described in-process; third-party plugins are started
	// to ask for their spec, which the handshake checks.
	h := plugins.NewHost(plugins.Options{Builtins: builtin.Registry(), Dirs: dirs})
	defer h.Close()
	ctx := context.Background()
	switch args[0] {
	case "list":
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
	case "describe":
		if fs.NArg() != 1 {
			usage()
			return exitUsage
		}
		c, err := h.Connector(ctx, fs.Arg(0))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		describe(stdout, c.Spec())
		return exitOK
	case "docs":
		var buf bytes.Buffer
		if err := protocol.WriteReference(&buf, "Built-in connectors", builtin.Registry().Specs()); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		if *out == "" {
			stdout.Write(buf.Bytes())
			return exitOK
		}
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "vigie plugins: unknown command %q\n", args[0])
	usage()
	return exitUsage
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
		if d := protocol.DefaultString(o); d != "" {
			attr += ", default " + strings.Trim(d, "`")
		}
		if len(o.Enum) > 0 {
			attr += ", one of " + strings.Join(o.Enum, " | ")
		}
		fmt.Fprintf(w, "  %s (%s)\n      %s\n", o.Name, attr, o.Doc)
	}
}
