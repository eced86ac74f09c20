// Package plugins starts connector plugins and hands their connectors to the
// engine.
//
// Built-in connectors are served by the vigie binary itself, re-executed
// with a hidden subcommand (as Packer and Terraform do), so one binary works
// alone. Third-party connectors are executables named
// "vigie-connector-NAME" found in the plugin directories. Each stage gets
// its own plugin process, so that a crash or leak in one connector cannot
// take the engine or another stage down; with Options.ShareBuiltins the
// built-in connectors of all stages share one process instead (a crash
// still cannot take the engine down, but it interrupts every built-in
// stage until the process is restarted), which halves the fixed cost of a
// run with a built-in source and a built-in sink.
//
// A plugin process that dies or stops answering (gRPC keepalive) makes the
// calls in flight fail with protocol.ErrTemporary; the next call through
// the same connector starts a new process, up to Options.MaxRestarts times.
// The engine (engine/pipeline) retries with backoff and resumes sources
// from their last position and sinks from their last flush.
//
// Plugin processes get only an allow-listed environment (AllowedEnv), and
// their stderr, stdout and go-plugin logs reach the host's slog tagged with
// the plugin's name.
//
// Shutdown belongs to the engine. On Unix a plugin process runs in a
// process group of its own (the signals a terminal or timeout(1) sends to
// the engine's group do not reach it) and the plugin side (transport.Serve) ignores SIGINT and
// SIGTERM while its host lives (systemd signals the whole cgroup); on Linux
// the kernel kills it if the engine dies, and elsewhere it exits when it
// finds its parent gone. Once Options.Stop is closed, a plugin process that
// dies is not restarted.
package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/suggest"
	"github.com/vigie-edu/vigie/internal/transport"
)

// ExternalPrefix is the file-name prefix of a third-party connector plugin.
const ExternalPrefix = "vigie-connector-"

// DefaultMaxRestarts is how many times a stage's plugin process is
// restarted after dying, unless Options.MaxRestarts says otherwise.
const DefaultMaxRestarts = 10

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
	// MaxRestarts bounds the restarts of one stage's plugin process
	// (0: DefaultMaxRestarts, negative: none).
	MaxRestarts int
	// Stop, when closed, says that a graceful stop has begun: from then on
	// a plugin process that dies is not restarted, and the failure of a
	// call it was serving is not marked protocol.ErrTemporary, so the
	// engine does not retry it. Nil: never.
	Stop <-chan struct{}
	// ShareBuiltins serves every built-in connector the host hands out
	// from one plugin process (started by the first, restarted as one)
	// instead of one process per connector. It applies only with
	// BuiltinCommand; third-party plugins keep a process each.
	ShareBuiltins bool
}

// AllowedEnv reports whether the environment variable called name is
// passed to plugin processes: PATH, HOME, TMPDIR, LANG, LC_*, TZ, the Go
// runtime's GOGC and GOMEMLIMIT (to tune plugins' memory) and VIGIE_*.
// Nothing else (credentials, tokens) reaches a plugin.
func AllowedEnv(name string) bool {
	switch name {
	case "PATH", "HOME", "TMPDIR", "LANG", "TZ", "GOGC", "GOMEMLIMIT":
		return true
	}
	return strings.HasPrefix(name, "LC_") || strings.HasPrefix(name, "VIGIE_")
}

func filterEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if AllowedEnv(name) {
			out = append(out, kv)
		}
	}
	return out
}

// Host launches plugin processes and kills them on Close. Safe for
// concurrent use.
type Host struct {
	opts   Options
	mu     sync.Mutex
	procs  []*process
	shared *process // the built-ins' process with Options.ShareBuiltins
}

// NewHost returns a host. Call Close when done with its connectors.
func NewHost(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRestarts == 0 {
		opts.MaxRestarts = DefaultMaxRestarts
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
			return h.launchBuiltin(ctx, name, c.Spec())
		}
	}
	if path := h.find(name); path != "" {
		return h.launch(ctx, name, func() *exec.Cmd { return exec.Command(path) }, false)
	}
	var known []string
	if h.opts.Builtins != nil {
		known = h.opts.Builtins.Names()
	}
	msg := fmt.Sprintf("unknown connector %q", name)
	if s := suggest.DidYouMean(name, append(known, h.installedNames()...)); s != "" {
		msg += s
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

// Installed is a third-party plugin found in the plugin directories.
type Installed struct {
	Name string // connector name: the file name without ExternalPrefix
	Path string
}

// Installed lists the third-party plugins found in Options.Dirs, by name;
// when two directories hold the same name, the first wins (as Connector
// does).
func (h *Host) Installed() []Installed {
	seen := map[string]bool{}
	var out []Installed
	for _, dir := range h.opts.Dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), ExternalPrefix)
			if !ok || name == "" || seen[name] {
				continue
			}
			if p := h.find(name); p != "" {
				seen[name] = true
				out = append(out, Installed{Name: name, Path: p})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (h *Host) installedNames() []string {
	var out []string
	for _, i := range h.Installed() {
		out = append(out, i.Name)
	}
	return out
}

// Process is a running plugin process.
type Process struct {
	Name string // the connector it serves; those of a shared process joined by "+"
	Pid  int
}

// Processes lists the plugin processes running now (tests use it to kill
// them).
func (h *Host) Processes() []Process {
	h.mu.Lock()
	procs := append([]*process(nil), h.procs...)
	names := make([]string, len(procs))
	for i, p := range procs {
		names[i] = strings.Join(p.names, "+")
	}
	h.mu.Unlock()
	var out []Process
	for i, p := range procs {
		p.mu.Lock()
		if p.client != nil && !p.client.Exited() {
			if rc := p.client.ReattachConfig(); rc != nil {
				out = append(out, Process{Name: names[i], Pid: rc.Pid})
			}
		}
		p.mu.Unlock()
	}
	return out
}

// Restarts returns how many times each connector's plugin processes were
// restarted after dying, by connector name, since the host started
// (metrics read it).
func (h *Host) Restarts() map[string]int {
	h.mu.Lock()
	procs := append([]*process(nil), h.procs...)
	names := make([][]string, len(procs))
	for i, p := range procs {
		names[i] = append([]string(nil), p.names...)
	}
	h.mu.Unlock()
	out := map[string]int{}
	for i, p := range procs {
		p.mu.Lock()
		for _, name := range names[i] {
			out[name] += p.restarts
		}
		p.mu.Unlock()
	}
	return out
}

// launch starts the plugin process serving name; builtin says it is this
// binary serving a built-in connector, whose shared memory bodies the
// engine reads in place (transport.Client.Trust).
func (h *Host) launch(ctx context.Context, name string, cmd func() *exec.Cmd, builtin bool) (protocol.Connector, error) {
	p := &process{h: h, name: name, names: []string{name}, cmd: cmd, builtin: builtin, log: h.opts.Logger.With("plugin", name)}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	c, err := p.connector(ctx, name)
	if err != nil {
		return nil, err
	}
	switch c := c.(type) {
	case protocol.Source:
		return &source{p: p, name: name, spec: c.Spec()}, nil
	case protocol.Sink:
		return &sink{p: p, name: name, spec: c.Spec()}, nil
	}
	return nil, fmt.Errorf("plugin %q: connector of unknown kind %q", name, c.Spec().Kind)
}

// launchBuiltin returns the built-in connector called name at once and
// starts its plugin process in the background: the engine meanwhile starts
// the other stages' processes and compiles its rules, and the first call
// through the connector waits for the start (process.mu is held until
// then). Its spec is the registry's: the process is this binary. With
// Options.ShareBuiltins only the first built-in starts a process; the
// others are served by it.
func (h *Host) launchBuiltin(ctx context.Context, name string, spec protocol.Spec) (protocol.Connector, error) {
	if spec.Kind != protocol.KindSource && spec.Kind != protocol.KindSink {
		return nil, fmt.Errorf("plugin %q: connector of unknown kind %q", name, spec.Kind)
	}
	var p *process
	start := false
	h.mu.Lock()
	if h.opts.ShareBuiltins && h.shared != nil {
		p = h.shared
	} else {
		p = &process{h: h, name: name, cmd: h.opts.BuiltinCommand, builtin: true, log: h.opts.Logger.With("plugin", name)}
		if h.opts.ShareBuiltins {
			p.name, p.log = sharedName, h.opts.Logger.With("plugin", sharedName)
			h.shared = p
		}
		h.procs = append(h.procs, p)
		start = true
	}
	if !slices.Contains(p.names, name) {
		p.names = append(p.names, name)
	}
	if start {
		p.mu.Lock() // free: p is new; held until the start ends
	}
	h.mu.Unlock()
	if start {
		go func() {
			defer p.mu.Unlock()
			_, p.startErr = p.connectorLocked(context.WithoutCancel(ctx), name)
		}()
	}
	if spec.Kind == protocol.KindSource {
		return &source{p: p, name: name, spec: spec}, nil
	}
	return &sink{p: p, name: name, spec: spec}, nil
}

// sharedName tags the logs of the built-ins' shared process
// (Options.ShareBuiltins).
const sharedName = "builtin"

// stopping reports whether Options.Stop is closed.
func (h *Host) stopping() bool {
	select {
	case <-h.opts.Stop:
		return true
	default:
		return false
	}
}

// Close stops every plugin process started by the host, side by side, and
// returns when they are all gone.
func (h *Host) Close() {
	h.mu.Lock()
	procs := h.procs
	h.procs = nil
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.close)
	}
	wg.Wait()
}

// process is the plugin process of one stage, started again when it died.
type process struct {
	h       *Host
	name    string
	cmd     func() *exec.Cmd
	builtin bool // the vigie binary itself: trusted (launch)
	log     *slog.Logger

	names []string // the connectors it serves (one, unless shared); guarded by h.mu

	mu       sync.Mutex
	client   *plugin.Client
	rpc      plugin.ClientProtocol
	pc       *transport.Client
	conns    map[string]protocol.Connector // of the live process, by name
	broken   bool
	closed   bool
	restarts int
	startErr error // of a start in the background (launchBuiltin), for the next call
}

// connector returns the connector called name of the live process,
// starting one if there is none or the last one died.
func (p *process) connector(ctx context.Context, name string) (protocol.Connector, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.startErr; err != nil {
		p.startErr = nil
		return nil, err
	}
	return p.connectorLocked(ctx, name)
}

// connectorLocked is connector, with p.mu held.
func (p *process) connectorLocked(ctx context.Context, name string) (protocol.Connector, error) {
	if p.closed {
		return nil, fmt.Errorf("plugin %q: host closed", p.name)
	}
	if p.pc != nil && !p.broken && !p.client.Exited() {
		if c := p.conns[name]; c != nil {
			return c, nil
		}
		if len(p.conns) > 0 {
			// A live shared process, asked for another of its connectors.
			c, err := p.pc.Connector(ctx, name)
			if err != nil {
				return nil, err
			}
			p.conns[name] = c
			return c, nil
		}
	}
	if p.client != nil {
		if p.broken {
			// A stopped process would make go-plugin's graceful shutdown
			// wait on a connection that never answers: kill it first.
			if rc := p.client.ReattachConfig(); rc != nil && rc.Pid > 0 {
				if proc, err := os.FindProcess(rc.Pid); err == nil {
					proc.Kill()
				}
			}
		}
		p.client.Kill()
		if p.pc != nil {
			p.pc.Close()
			p.pc = nil
		}
		if p.h.stopping() {
			return nil, fmt.Errorf("plugin %q: process stopped during a graceful stop, not restarted", p.name)
		}
		if p.restarts >= p.h.opts.MaxRestarts {
			return nil, fmt.Errorf("plugin %q: restarted %d times already, giving up", p.name, p.restarts)
		}
		p.restarts++
		p.log.Warn("restarting plugin process", "restart", p.restarts)
	}
	p.conns, p.broken = nil, false
	cmd := p.cmd()
	detach(cmd)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = filterEnv(cmd.Env)
	out := &lineLogger{log: p.log}
	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  transport.Handshake,
		VersionedPlugins: transport.VersionedPlugins(nil, nil, nil),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  transport.GRPCDialOptions(),
		Logger:           hclogTo(p.log, filepath.Base(cmd.Path)),
		Stderr:           out,
		SyncStderr:       out,
		SyncStdout:       out,
	})
	rpc, err := p.client.Client()
	if err != nil {
		return nil, protocol.WithKind(fmt.Errorf("start plugin %q: %w", p.name, err), protocol.ErrTemporary)
	}
	raw, err := rpc.Dispense(transport.PluginName)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", p.name, err)
	}
	pc, ok := raw.(*transport.Client)
	if !ok {
		return nil, fmt.Errorf("plugin %q: unexpected client type %T", p.name, raw)
	}
	if p.builtin {
		pc.Trust()
	}
	p.pc = pc
	c, err := pc.Connector(ctx, name)
	if err != nil {
		return nil, err
	}
	p.rpc, p.conns = rpc, map[string]protocol.Connector{name: c}
	return c, nil
}

// check looks at the error of a call through the process's connector: if
// the process died or its connection broke, the process is marked for
// restart and the error becomes ErrTemporary, which the engine retries.
func (p *process) check(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil || p.closed {
		return err
	}
	if !p.client.Exited() && p.rpc != nil && ping(p.rpc, pingTimeout) == nil {
		return err // the plugin is alive: the error is the connector's
	}
	p.broken = true
	pid := 0
	if rc := p.client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	p.log.Warn("plugin process stopped", "pid", pid, "err", err)
	if p.h.stopping() {
		// %v, not %w: err may carry ErrTemporary (a broken connection),
		// which would have the engine retry a call that cannot succeed.
		return fmt.Errorf("plugin %q (pid %d) stopped during a graceful stop: %v", p.name, pid, err)
	}
	return protocol.WithKind(fmt.Errorf("plugin %q (pid %d) stopped: %w", p.name, pid, err), protocol.ErrTemporary)
}

// pingTimeout bounds the liveness check of a plugin whose call failed: a
// stopped process accepts connections but never answers.
const pingTimeout = 2 * time.Second

// ping checks that the plugin answers within timeout. go-plugin's Ping
// takes no context; a ping that times out finishes in the background.
func ping(rpc plugin.ClientProtocol, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- rpc.Ping() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no answer to a ping within %s", timeout)
	}
}

func (p *process) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.client != nil {
		p.client.Kill()
	}
	if p.pc != nil {
		p.pc.Close()
		p.pc = nil
	}
}

// source is a plugin's source: every call goes to the live process.
type source struct {
	p    *process
	name string
	spec protocol.Spec
}

var _ protocol.Source = (*source)(nil)

func (s *source) Spec() protocol.Spec { return s.spec }

func (s *source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	c, err := s.p.connector(ctx, s.name)
	if err != nil {
		return nil, err
	}
	schema, err := c.(protocol.Source).Schema(ctx, cfg)
	return schema, s.p.check(err)
}

func (s *source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	c, err := s.p.connector(ctx, s.name)
	if err != nil {
		return err
	}
	return s.p.check(c.(protocol.Source).Read(ctx, cfg, mem, out))
}

// sink is a plugin's sink: every call goes to the live process.
type sink struct {
	p    *process
	name string
	spec protocol.Spec
}

var (
	_ protocol.Sink           = (*sink)(nil)
	_ protocol.CheckpointSink = (*sink)(nil)
)

func (s *sink) Spec() protocol.Spec { return s.spec }

func (s *sink) Validate(ctx context.Context, cfg protocol.Config) error {
	c, err := s.p.connector(ctx, s.name)
	if err != nil {
		return err
	}
	return s.p.check(c.(protocol.Sink).Validate(ctx, cfg))
}

// LastCheckpoint asks the plugin's sink for its last committed checkpoint.
func (s *sink) LastCheckpoint(ctx context.Context, cfg protocol.Config) (*protocol.Checkpoint, error) {
	c, err := s.p.connector(ctx, s.name)
	if err != nil {
		return nil, err
	}
	cs, ok := c.(protocol.CheckpointSink)
	if !ok {
		return nil, fmt.Errorf("connector %q does not record checkpoints: %w", s.spec.Name, protocol.ErrConfig)
	}
	cp, err := cs.LastCheckpoint(ctx, cfg)
	return cp, s.p.check(err)
}

func (s *sink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	c, err := s.p.connector(ctx, s.name)
	if err != nil {
		return nil, err
	}
	w, err := c.(protocol.Sink).Open(ctx, cfg, mem, schema)
	if err != nil {
		return nil, s.p.check(err)
	}
	return &writer{p: s.p, w: w}, nil
}

// writer passes its errors through process.check.
type writer struct {
	p *process
	w protocol.Writer
}

var (
	_ protocol.Writer            = (*writer)(nil)
	_ protocol.Flusher           = (*writer)(nil)
	_ protocol.Checkpointer      = (*writer)(nil)
	_ protocol.DeadLetterCounter = (*writer)(nil)
)

// DeadLettered passes on what the sink dead-lettered, 0 if it keeps no
// dead letters.
func (w *writer) DeadLettered() int64 {
	if c, ok := w.w.(protocol.DeadLetterCounter); ok {
		return c.DeadLettered()
	}
	return 0
}

func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	return w.p.check(w.w.Write(ctx, rec))
}

func (w *writer) Flush(ctx context.Context) (protocol.Position, error) {
	f, ok := w.w.(protocol.Flusher)
	if !ok {
		return nil, nil
	}
	pos, err := f.Flush(ctx)
	return pos, w.p.check(err)
}

func (w *writer) FlushCheckpoint(ctx context.Context, cp protocol.Checkpoint) (protocol.Position, error) {
	c, ok := w.w.(protocol.Checkpointer)
	if !ok {
		return nil, fmt.Errorf("the sink does not record checkpoints: %w", protocol.ErrConfig)
	}
	pos, err := c.FlushCheckpoint(ctx, cp)
	return pos, w.p.check(err)
}

func (w *writer) Close(ctx context.Context) error { return w.p.check(w.w.Close(ctx)) }
func (w *writer) Abort(ctx context.Context) error { return w.w.Abort(ctx) }

// lineLogger logs each line written to it (a plugin's stderr or stdout):
// at the level a slog text or JSON line says (level=WARN), else info.
type lineLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 { // a very long line without a break
		l.line(string(l.buf))
		l.buf = nil
	}
	return len(b), nil
}

func (l *lineLogger) line(s string) {
	s = strings.TrimRight(s, "\r")
	if strings.TrimSpace(s) == "" {
		return
	}
	level := slog.LevelInfo
	switch {
	case strings.Contains(s, "level=ERROR"), strings.Contains(s, `"level":"ERROR"`), strings.HasPrefix(s, "[ERROR]"),
		strings.HasPrefix(s, "panic: "), strings.HasPrefix(s, "fatal error: "):
		level = slog.LevelError
	case strings.Contains(s, "level=WARN"), strings.Contains(s, `"level":"WARN"`), strings.HasPrefix(s, "[WARN]"):
		level = slog.LevelWarn
	case strings.Contains(s, "level=DEBUG"), strings.Contains(s, `"level":"DEBUG"`), strings.HasPrefix(s, "[DEBUG]"), strings.HasPrefix(s, "[TRACE]"):
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, s, "stream", "stderr")
}

// hclogTo routes go-plugin's own hclog output (starting, exiting, errors)
// to slog. go-plugin also echoes the plugin's stderr lines through hclog
// under the logger named after the executable; those are dropped here,
// since lineLogger gets them first-hand.
//
// The lines are parsed in the Write hclog calls, not by a goroutine at the
// end of a pipe: nothing would close such a pipe when the plugin is gone
// (go-plugin keeps its logger), so one goroutine leaked per plugin start
// (TestNoGoroutineOutlivesPlugin).
func hclogTo(log *slog.Logger, exe string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Output:     &hclogWriter{log: log, echo: "plugin." + exe},
		Level:      hclog.Debug,
		JSONFormat: true,
	})
}

// hclogWriter logs each JSON line hclog writes to it, at its level.
type hclogWriter struct {
	log  *slog.Logger
	echo string // the @module of echoed stderr lines, dropped
	mu   sync.Mutex
	buf  []byte
}

func (w *hclogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil // do not keep a large line's buffer
	} else if len(w.buf) > 1<<20 {
		w.line(w.buf) // no newline in sight: log what came
		w.buf = nil
	}
	return len(b), nil
}

func (w *hclogWriter) line(b []byte) {
	var e map[string]any
	if json.Unmarshal(b, &e) != nil {
		w.log.Info(string(b))
		return
	}
	if e["@module"] == w.echo {
		return
	}
	level := slog.LevelDebug
	switch e["@level"] {
	case "error":
		level = slog.LevelError
	case "warn":
		level = slog.LevelWarn
	case "info":
		level = slog.LevelInfo
	}
	msg, _ := e["@message"].(string)
	var attrs []any
	for k, v := range e {
		if !strings.HasPrefix(k, "@") {
			attrs = append(attrs, k, v)
		}
	}
	w.log.Log(context.Background(), level, msg, attrs...)
}
