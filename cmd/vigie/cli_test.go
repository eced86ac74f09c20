package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/rules/abi"
)

// runIn runs the command line in-process and returns stdout, stderr and
// the exit status.
func runIn(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// commandPaths lists every visible command of the tree, as argument lists
// ("rule", "new").
func commandPaths(root *cobra.Command) [][]string {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, s := range c.Commands() {
			if s.Hidden {
				continue
			}
			p := append(slices.Clone(path), s.Name())
			paths = append(paths, p)
			walk(s, p)
		}
	}
	walk(root, nil)
	return paths
}

func TestHelpOnEveryCommand(t *testing.T) {
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	paths := commandPaths(root)
	var names []string
	for _, p := range paths {
		names = append(names, strings.Join(p, " "))
	}
	// The walk must see the whole tree, so that a command added later is
	// covered too; these are the ones the docs show.
	for _, want := range []string{"run", "validate", "gen", "eval", "version", "help",
		"rule", "rule new", "rule inspect", "rule test", "rule bench",
		"plugins", "plugins list", "plugins describe", "plugins docs",
		"completion", "completion bash", "completion zsh", "completion fish"} {
		if !slices.Contains(names, want) {
			t.Errorf("command %q missing from the tree %q", want, names)
		}
	}
	paths = append(paths, nil) // vigie itself
	for _, p := range paths {
		name := strings.TrimSpace("vigie " + strings.Join(p, " "))
		calls := [][]string{append(slices.Clone(p), "-h"), append(slices.Clone(p), "--help")}
		if len(p) > 0 {
			calls = append(calls, append([]string{"help"}, p...))
		}
		for _, args := range calls {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				stdout, stderr, code := runIn(t, args...)
				if code != exitOK {
					t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr)
				}
				if stderr != "" {
					t.Errorf("stderr not empty:\n%s", stderr)
				}
				if !strings.Contains(stdout, "Usage:\n  "+name) {
					t.Errorf("stdout lacks the usage of %q:\n%s", name, stdout)
				}
			})
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct {
		shell, want string
	}{
		{"bash", "__vigie_init_completion"},
		{"zsh", "#compdef vigie"},
		{"fish", "complete -c vigie"},
		{"powershell", "Register-ArgumentCompleter"},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			stdout, stderr, code := runIn(t, "completion", tc.shell)
			if code != exitOK || !strings.Contains(stdout, tc.want) {
				t.Errorf("exit %d, stdout lacks %q (%d bytes); stderr:\n%s", code, tc.want, len(stdout), stderr)
			}
		})
	}
}

// TestCompletionCandidates asks the hidden __complete command what a
// shell would offer.
func TestCompletionCandidates(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"ru"}, []string{"rule", "run"}},
		{[]string{"rule", ""}, []string{"bench", "inspect", "new", "test"}},
		{[]string{"rule", "new", "--lang", ""}, []string{"go", "assemblyscript", "c"}},
		{[]string{"rule", "new", "--kind", ""}, []string{"map", "group"}},
		{[]string{"run", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"plugins", "describe", "oner"}, []string{"oneroster"}},
		{[]string{"gen", "--stu"}, []string{"--students"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := runIn(t, append([]string{"__complete"}, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			var got []string
			for _, l := range strings.Split(stdout, "\n") {
				if l == "" || strings.HasPrefix(l, ":") {
					continue
				}
				name, _, _ := strings.Cut(l, "\t")
				got = append(got, name)
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("candidates %q lack %q", got, w)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Available Commands:"},
		{[]string{"rnu"}, `unknown command "rnu" for "vigie" (did you mean "run"?)`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "vigie"`},
		{[]string{"rule"}, "Available Commands:"},
		{[]string{"rule", "nwe"}, `unknown command "nwe" for "vigie rule" (did you mean "new"?)`},
		{[]string{"plugins", "lst"}, `unknown command "lst" for "vigie plugins" (did you mean "list"?)`},
		{[]string{"run", "--log-levl", "debug"}, `unknown flag: --log-levl (did you mean "--log-level"?)`},
		{[]string{"gen", "--studnets", "3"}, `unknown flag: --studnets (did you mean "--students"?)`},
		{[]string{"rule", "bench", "x.wasm", "--rwos", "3"}, `(did you mean "--rows"?)`},
		{[]string{"eval", "--zzz"}, "unknown flag: --zzz\n"},
		{[]string{"gen", "--students", "many"}, `invalid argument "many" for "--students"`},
		{[]string{"run", "a.toml", "b.toml"}, "accepts at most 1 arg(s), received 2"},
		{[]string{"gen", "extra"}, `unknown command "extra" for "vigie gen"`},
		{[]string{"eval"}, "give --alerts and --truth, or --scores and --label"},
		{[]string{"help", "rnu"}, `unknown command "rnu" for "vigie" (did you mean "run"?)`},
		{[]string{"help", "rule", "tset"}, `unknown command "tset" for "vigie rule" (did you mean "test"?)`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			stdout, stderr, code := runIn(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty:\n%s", stdout)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, _, code := runIn(t, args...)
		want := fmt.Sprintf("vigie dev (connector protocol %d, rule ABI %d)\n", protocol.Version, abi.Version)
		if code != exitOK || stdout != want {
			t.Errorf("%q: exit %d, stdout %q, want %q", args, code, stdout, want)
		}
	}
}

func TestLongFlags(t *testing.T) {
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for _, tc := range []struct {
		in, want []string
	}{
		{[]string{"run", "-log-level", "debug", "-in-process"}, []string{"run", "--log-level", "debug", "--in-process"}},
		{[]string{"run", "-log-level=debug", "p.toml"}, []string{"run", "--log-level=debug", "p.toml"}},
		{[]string{"plugins", "docs", "-o", "x.md"}, []string{"plugins", "docs", "-o", "x.md"}},
		{[]string{"gen", "-h"}, []string{"gen", "-h"}},
		{[]string{"gen", "-help"}, []string{"gen", "--help"}},
		{[]string{"rule", "new", "-lang", "c", "x"}, []string{"rule", "new", "--lang", "c", "x"}},
		{[]string{"run", "-nosuchflag"}, []string{"run", "-nosuchflag"}},
		{[]string{"run", "--", "-log-level"}, []string{"run", "--", "-log-level"}},
	} {
		if got := longFlags(root, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("longFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// Parsed end to end: the flag is understood (a missing file fails
	// with 1, not a usage error with 2).
	_, stderr, code := runIn(t, "validate", "-log-level", "debug", "-in-process", filepath.Join(t.TempDir(), "none.toml"))
	if code != exitFailed || strings.Contains(stderr, "unknown") {
		t.Errorf("validate -log-level debug: exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
}

// TestPluginsDocsOutput writes the reference with -o, as go:generate does.
func TestPluginsDocsOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "connectors.md")
	if _, stderr, code := runIn(t, "plugins", "docs", "-o", out); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(b, []byte("Built-in connectors")) {
		t.Errorf("read %s: %v, %d bytes", out, err, len(b))
	}
}
