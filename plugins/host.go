// Package plugins starts connector plugins and hands their connectors to the
// engine.
//
// Built-in connectors are served by the vigie binary itself, re-executed
// with a hidden subcommand (as Packer and Terraform do), so one binary works
// alone. Third-party connectors are executables named
// "vigie-connector-NAME" found in the plugin directories. Either way each
// stage gets its own plugin process: a crash or leak in one connector cannot
// take the engine or another stage down.
package plugins

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// ExternalPrefix is the file-name prefix of a third-party connector plugin.
const ExternalPrefix = "vigie-connector-"

// Options configure a Host.
type Options struct {
	// Builtins is the registry of built-in connectors.
	Builtins *protocol.Registry
	// BuiltinCommand returns the command that serves Builtins in a plugin
	// process (normally the vigie binary with its hidden subcommand).
	// Nil serves built-ins in-process, which tests and benchmarks use.
	BuiltinCommand func() *exec.Cmd
	// Dirs are searched, in order, for third-party plugins.
	Dirs []string
	// Logger receives plugin logs, tagged with the plugin's name.
	Logger *slog.Logger
}

// Host launches plugin processes and kills them on Close. Safe for
// concurrent use.
type Host struct {
	opts    Options
	mu      sync.Mutex
	clients []*plugin.Client
}

// NewHost returns a host. Call Close when done with its connectors.
func NewHost(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Host{opts: opts}
}

// Connector returns the connector called name, in a new plugin process
// unless built-ins are served in-process. The connector is valid until
// Close.
func (h *Host) Connector(ctx context.Context, name string) (protocol.Connector, error) {
	if h.opts.Builtins != nil {
		if c, err := h.opts.Builtins.Get(name); err == nil {
			if h.opts.BuiltinCommand == nil {
				return c, nil
			}
			return h.launch(ctx, name, h.opts.BuiltinCommand())
		}
	}
	if path := h.find(name); path != "" {
		return h.launch(ctx, name, exec.Command(path))
	}
	var known []string
	if h.opts.Builtins != nil {
		known = h.opts.Builtins.Names()
	}
	msg := fmt.Sprintf("unknown connector %q", name)
	if near := protocol.Nearest(name, known); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	} else {
		msg += fmt.Sprintf(" (built-in: %s; no %s%s in %s)", strings.Join(known, ", "), ExternalPrefix, name, strings.Join(h.opts.Dirs, ", "))
	}
	return nil, protocol.WithKind(errors.New(msg), protocol.ErrNotFound)
}

func (h *Host) find(name string) string {
	for _, dir := range h.opts.Dirs {
		p := filepath.Join(dir, ExternalPrefix+name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func (h *Host) launch(ctx context.Context, name string, cmd *exec.Cmd) (protocol.Connector, error) {
	log := h.opts.Logger.With("plugin", name)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.VersionedPlugins(nil, nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  protocol.GRPCDialOptions(),
		Logger:           hclogTo(log),
	})
	h.mu.Lock()
	h.clients = append(h.clients, client)
	h.mu.Unlock()
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("start plugin %q: %w", name, err)
	}
	raw, err := rpc.Dispense(protocol.PluginName)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", name, err)
	}
	pc, ok := raw.(*protocol.Client)
	if !ok {
		return nil, fmt.Errorf("plugin %q: unexpected client type %T", name, raw)
	}
	return pc.Connector(ctx, name)
}

// Close kills every plugin process started by the host.
func (h *Host) Close() {
	h.mu.Lock()
	clients := h.clients
	h.clients = nil
	h.mu.Unlock()
	for _, c := range clients {
		c.Kill()
	}
}

// hclogTo routes go-plugin's hclog output (including the plugin's stderr)
// to slog, one record per line.
func hclogTo(log *slog.Logger) hclog.Logger {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			level := slog.LevelInfo
			switch {
			case strings.Contains(line, "[ERROR]"):
				level = slog.LevelError
			case strings.Contains(line, "[WARN]"):
				level = slog.LevelWarn
			case strings.Contains(line, "[DEBUG]"), strings.Contains(line, "[TRACE]"):
				level = slog.LevelDebug
			}
			log.Log(context.Background(), level, line)
		}
	}()
	return hclog.New(&hclog.LoggerOptions{
		Name:            "plugin",
		Output:          pw,
		Level:           hclog.Info,
		DisableTime:     true,
		IncludeLocation: false,
	})
}
