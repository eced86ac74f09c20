package transport

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Handshake is the go-plugin handshake of every Vigie connector plugin. Its
// magic cookie never changes; protocol versions are negotiated through
// VersionedPlugins.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "VIGIE_CONNECTOR_PLUGIN",
	MagicCookieValue: "7f3b9c2e-vigie-connector-5d41a8e6",
}

// PluginName is the name under which a plugin process offers its connectors.
const PluginName = "connectors"

// GRPCPlugin adapts a Registry to go-plugin: it serves the registry's
// connectors on the plugin side and returns a *Client on the host side.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Registry is what the plugin side serves; nil on the host side.
	Registry *protocol.Registry
	// Mem allocates the batches the plugin side reads and receives; nil
	// gives the server a Go allocator of its own.
	Mem memory.Allocator
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Version is the protocol version this plugin set speaks (0: Version).
	Version int
}

func (p *GRPCPlugin) version() int {
	if p.Version == 0 {
		return protocol.Version
	}
	return p.Version
}

// GRPCServer registers the Flight service.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	mem := p.Mem
	if mem == nil {
		mem = memory.NewGoAllocator()
	}
	flight.RegisterFlightServiceServer(s, newServer(p.Registry, mem, p.Logger, p.version()))
	return nil
}

// GRPCClient returns a *Client.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return newClient(conn, p.version()), nil
}

// VersionedPlugins is the plugin set per protocol version, for both
// plugin.ServeConfig and plugin.ClientConfig. reg and mem are nil on the
// host side. Both sides offer versions 1 and 2; go-plugin picks the
// highest common.
func VersionedPlugins(reg *protocol.Registry, mem memory.Allocator, log *slog.Logger) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1:                {PluginName: &GRPCPlugin{Registry: reg, Mem: mem, Logger: log, Version: 1}},
		protocol.Version: {PluginName: &GRPCPlugin{Registry: reg, Mem: mem, Logger: log, Version: protocol.Version}},
	}
}

// Transport tuning. Flow-control windows of 64 MiB (a stream, the
// connection) let a source run ahead of a busy engine by a few batches
// instead of one 64 KiB window at a time; 1 MiB socket buffers cut system
// calls. Keepalive pings every keepaliveTime detect a plugin process that
// stopped answering (stopped, swapped out, deadlocked in a cgo call): after
// keepaliveTimeout without an answer the connection breaks, the calls in
// flight fail as ErrTemporary and the plugin is restarted.
const (
	windowBytes      = 64 << 20
	socketBuffer     = 1 << 20
	keepaliveTime    = 10 * time.Second // grpc-go's minimum for clients
	keepaliveTimeout = 5 * time.Second
)

// grpcServerOptions are the options a plugin's gRPC server runs with.
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMessageBytes),
		grpc.MaxSendMsgSize(maxMessageBytes),
		grpc.InitialWindowSize(windowBytes),
		grpc.InitialConnWindowSize(windowBytes),
		grpc.WriteBufferSize(socketBuffer),
		grpc.ReadBufferSize(socketBuffer),
		experimental.BufferPool(bufferPool),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true}),
	}
}

// GRPCDialOptions are the options the host dials a plugin with.
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageBytes),
			grpc.MaxCallSendMsgSize(maxMessageBytes),
		),
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(windowBytes),
		grpc.WithWriteBufferSize(socketBuffer),
		grpc.WithReadBufferSize(socketBuffer),
		experimental.WithBufferPool(bufferPool),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
	}
}

// pluginGCPercent is the garbage collector's target (GOGC) in plugin
// processes when GOGC is not set: a plugin holds little live data (the
// batches in flight) and allocates as fast as it reads or writes, so at
// Go's default of 100 it collects far more often than the engine does
// for the same work. A 2M-row CSV -> Parquet run through two plugins took
// 1.29-1.37 s at 100 and a median of 1.115 s at 400, against 1.045 s
// in-process. Since the CSV source parses in parallel ranges (issue 18)
// its live data is larger, and at 400 the plugins of the 10M-row
// attendance benchmark peaked at 830-900 MB (PSS, all processes) against
// 630-660 MB at 200 and 570-610 MB at 100, for the same CPU time at 200
// (4.9-5.1 s) and 5 % more at 100: 200 keeps most of the speed and
// stays near DuckDB's memory on that job (bench/attendance).
const pluginGCPercent = 200

// pluginMemoryLimit is the soft memory limit (debug.SetMemoryLimit) of
// plugin processes when GOMEMLIMIT is not set. At pluginGCPercent a
// plugin's heap grows to three times what is live; with several sources
// read at once (the early-warning pack's four CSV files in the shared
// connectors process) that was 200-210 MB of heap for 74 MB live, and the
// sum over all processes stayed near 600 MB. Under the limit the collector
// runs earlier as the heap nears it, and only then: measured, the pack's
// connectors process went from 347-396 MB to 242-283 MB (PSS) and the
// 10M-row benchmark's plugins from 417 to 308 MB, with no CPU time added
// beyond the noise on either or on 2M rows. It is soft: a plugin whose live data needs
// more gets it, at the cost of collecting more often (at most about half
// the CPU, the runtime's own cap); GOMEMLIMIT overrides it.
const pluginMemoryLimit = 128 << 20

// Serve runs a plugin process serving reg's connectors, with batches
// read and received allocated from mem (nil: a Go allocator of its own),
// until the host closes it. Call it
// from main; it does not return. Unless GOGC is set in its environment, the process collects garbage at pluginGCPercent,
// and unless GOMEMLIMIT is, under the soft limit pluginMemoryLimit.
//
// Shutdown is left to the host: on Unix, SIGINT and SIGTERM are ignored
// while the host lives, and the process exits when the host dies (see
// watchHost).
func Serve(reg *protocol.Registry, mem memory.Allocator, log *slog.Logger) {
	tuneGC(os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	watchHost(log)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(reg, mem, log),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpcServerOptions()...))
		},
	})
}

// tuneGC sets pluginGCPercent unless gogc (the GOGC variable) is set,
// and pluginMemoryLimit unless memLimit (GOMEMLIMIT) is.
func tuneGC(gogc, memLimit string) {
	if gogc == "" {
		debug.SetGCPercent(pluginGCPercent)
	}
	if memLimit == "" {
		debug.SetMemoryLimit(pluginMemoryLimit)
	}
}
