package pluginhost

import (
	"os/exec"
	"syscall"
)

// detach puts a plugin process in a process group of its own, so that the
// signals a terminal or timeout(1) sends to the engine's group do not reach
// it (the engine stops its plugins itself, after its sinks have committed),
// and has the kernel SIGKILL it if the engine dies first, so that a
// SIGKILLed engine leaves no orphan. (Pdeathsig follows the thread that
// started the process; the engine never ends a thread, since it never
// calls runtime.LockOSThread; transport.Serve's parent check is the
// backstop.)
func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
