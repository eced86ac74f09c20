//go:build !unix

package pluginhost

import "os/exec"

// detach does nothing where there are no process groups.
func detach(*exec.Cmd) {}
