//go:build unix

package transport

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// HostPollInterval is how often a plugin process checks that the host that
// started it is still its parent. On Linux the host also asks the kernel to
// kill its plugins when it dies (pluginhost.Host sets Pdeathsig), so this is
// the portable backstop, and the check for third-party hosts.
const HostPollInterval = 500 * time.Millisecond

// exitHostGone is the exit code of a plugin process whose host died.
const exitHostGone = 3

// watchHost leaves the shutdown of this plugin process to its host.
//
// SIGINT and SIGTERM are ignored while the host lives: a terminal's Ctrl-C,
// timeout(1) and systemd (KillMode=control-group) signal every process of
// the group or cgroup, and a plugin that died of it would take the batches
// in flight with it while the host is stopping gracefully; the host closes
// its plugins itself once its sinks have committed. (go-plugin's own Serve
// ignores SIGINT only.)
//
// When the host is gone (the parent process changed: the host died and this
// process was reparented), the process exits, on the next poll or at once
// on a signal, so that a SIGKILLed host leaves no orphan behind.
func watchHost(log *slog.Logger) {
	ppid := os.Getppid()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		tick := time.NewTicker(HostPollInterval)
		defer tick.Stop()
		for {
			select {
			case sig := <-sigs:
				if os.Getppid() == ppid {
					log.Debug("signal ignored: the host stops this plugin", "signal", sig.String())
					continue
				}
			case <-tick.C:
				if os.Getppid() == ppid {
					continue
				}
			}
			log.Debug("host process gone, exiting", "host_pid", ppid)
			os.Exit(exitHostGone)
		}
	}()
}
