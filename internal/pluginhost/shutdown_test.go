//go:build linux

package pluginhost_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/pluginhost"
	"github.com/vigie-edu/vigie/internal/transport"
)

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...; comm may hold spaces and parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitDead waits up to timeout for process pid to be gone.
func waitDead(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); alive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after %s", pid, timeout)
		}
	}
}

// TestPluginIgnoresSignalsWhileItsHostLives checks that a plugin process
// leads a process group of its own, and sends SIGTERM and SIGINT to it
// itself, as systemd (KillMode=control-group) does to every
// process of the service: the same process keeps serving, since stopping
// it is the engine's job.
func TestPluginIgnoresSignalsWhileItsHostLives(t *testing.T) {
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: serveCommand(t)})
	defer h.Close()
	c, err := h.Connector(context.Background(), "pid")
	if err != nil {
		t.Fatal(err)
	}
	pid := sourcePID(t, c)
	// In a group of its own: a signal to the engine's group misses it.
	if pgid, err := syscall.Getpgid(int(pid)); err != nil || pgid != int(pid) {
		t.Errorf("plugin process %d is in process group %d (%v), want its own", pid, pgid, err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGTERM} {
		if err := syscall.Kill(int(pid), sig); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // a signal that kills does so by now
	if got := sourcePID(t, c); got != pid {
		t.Fatalf("served by process %d after the signals, want %d (killed and restarted)", got, pid)
	}
}

// sourcePID reads the pid source c once and returns the serving process.
func sourcePID(t *testing.T, c protocol.Connector) int64 {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := &pids{}
	if err := c.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "pid", BatchRows: 10}, mem, p); err != nil {
		t.Fatal(err)
	}
	if len(p.got) != 1 {
		t.Fatalf("got %v", p.got)
	}
	return p.got[0]
}

// TestNoRestartOnceStopping kills a plugin process after Options.Stop is
// closed: the next call fails without ErrTemporary (the engine does not
// retry it) and no new process starts.
func TestNoRestartOnceStopping(t *testing.T) {
	stop := make(chan struct{})
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: serveCommand(t), Stop: stop})
	defer h.Close()
	pid := readPID(t, h)
	c, err := h.Connector(context.Background(), "pid")
	if err != nil {
		t.Fatal(err)
	}
	// The connector above is a second stage: a second process.
	procs := h.Processes()
	if len(procs) != 2 {
		t.Fatalf("processes %v, want 2", procs)
	}
	close(stop)
	killed := procs
	for _, p := range procs {
		if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitDead(t, p.Pid, 5*time.Second)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	err = c.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "pid", BatchRows: 10}, mem, &pids{})
	if err == nil {
		t.Fatal("read through a killed plugin succeeded: it was restarted")
	}
	if errors.Is(err, protocol.ErrTemporary) {
		t.Errorf("error %v is ErrTemporary: the engine would retry it", err)
	}
	if _, err := c.(protocol.Source).Schema(context.Background(), protocol.Config{Connector: "pid"}); err == nil {
		t.Error("schema through a killed plugin succeeded: it was restarted")
	}
	// go-plugin marks a client exited from its own goroutine once the
	// process is reaped, a moment after the pid is gone: wait for it, but
	// never see a process restarted.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		procs := h.Processes()
		for _, p := range procs {
			if !slices.ContainsFunc(killed, func(k pluginhost.Process) bool { return k.Pid == p.Pid }) {
				t.Fatalf("process %v started after a stop began (pid %d was the first)", p, pid)
			}
		}
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still listed 5s after they were killed, want none (pid %d was the first)", procs, pid)
		}
	}
}

// TestPluginExitsWhenItsHostDies starts a plugin process from a shell (a
// host that sets no Pdeathsig, as a third-party host or another OS would),
// SIGKILLs the shell, and checks that the plugin notices that its parent is
// gone and exits, while it ignored SIGTERM before.
func TestPluginExitsWhenItsHostDies(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("/bin/sh", "-c", `"$0" >/dev/null 2>&1 & echo $!; wait`, self)
	sh.Env = append(os.Environ(), serveEnv+"=1", transport.Handshake.MagicCookieKey+"="+transport.Handshake.MagicCookieValue)
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer sh.Wait()
	defer sh.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("plugin pid %q: %v", line, err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond) // the plugin is serving
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if !alive(pid) {
		t.Fatal("plugin died of SIGTERM while its host lived")
	}
	if err := sh.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sh.Wait()
	waitDead(t, pid, 5*transport.HostPollInterval+2*time.Second)
}
