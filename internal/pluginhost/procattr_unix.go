//go:build unix && !linux

package pluginhost

import (
	"os/exec"
	"syscall"
)

// detach puts a plugin process in a process group of its own, so that the
// signals a terminal or timeout(1) sends to the engine's group do not reach
// it; see procattr_linux.go. Without Pdeathsig, transport.Serve's parent
// check ends the plugins of a dead engine.
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
