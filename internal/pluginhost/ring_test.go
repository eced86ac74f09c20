package pluginhost_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/pluginhost"
	"github.com/vigie-edu/vigie/internal/transport"
)

// ringFiles lists the shared memory ring files of process pid, wherever
// they may be created.
func ringFiles(pid int) []string {
	var out []string
	for _, dir := range []string{"/dev/shm", os.TempDir()} {
		m, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("vigie-ring-%d-*", pid)))
		out = append(out, m...)
	}
	return out
}

// onFirst counts rows and runs f at the first batch.
type onFirst struct {
	rows  int64
	f     func()
	ready bool
}

func (o *onFirst) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	o.rows += rec.NumRows()
	if !o.ready {
		o.ready = true
		if o.f != nil {
			o.f()
		}
	}
	return nil
}
func (o *onFirst) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func blobConfig(rows, batches int) protocol.Config {
	return protocol.Config{Connector: "blob", BatchRows: rows, Options: map[string]any{"rows": int64(rows), "batches": int64(batches)}}
}

// TestArrowBodiesCrossSubprocessThroughSharedMemory reads from a real
// plugin process and checks that the Arrow bodies came through the shared
// memory ring, that no ring file is left on disk while the stream runs
// (so a crash of either side leaves none), and that a SIGKILLed plugin
// leaves neither files nor retained memory behind.
func TestArrowBodiesCrossSubprocessThroughSharedMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("shared memory rings are Linux only")
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: serveCommand(t)})
	defer h.Close()
	ctx := context.Background()
	c, err := h.Connector(ctx, "blob")
	if err != nil {
		t.Fatal(err)
	}
	src := c.(protocol.Source)
	const rows, batches = 16384, 32

	for run := range 2 {
		before := transport.ReceivedStats()
		var during []string
		o := &onFirst{f: func() { during = ringFiles(os.Getpid()) }}
		if err := src.Read(ctx, blobConfig(rows, batches), mem, o); err != nil {
			t.Fatal(err)
		}
		if o.rows != rows*batches {
			t.Fatalf("run %d: %d rows", run, o.rows)
		}
		if len(during) != 0 {
			t.Errorf("run %d: ring files on disk during the stream: %v", run, during)
		}
		after := transport.ReceivedStats()
		ring, inline := after.RingBodies-before.RingBodies, after.InlineBodies-before.InlineBodies
		t.Logf("run %d: %d bodies through the ring, %d inline", run, ring, inline)
		if ring == 0 {
			t.Errorf("run %d: no Arrow body came through shared memory", run)
		}
	}

	// SIGKILL the plugin in the middle of a stream.
	o := &onFirst{f: func() {
		for _, p := range h.Processes() {
			syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}}
	err = src.Read(ctx, blobConfig(rows, 2000), mem, o)
	if !errors.Is(err, protocol.ErrTemporary) {
		t.Errorf("read from a killed plugin: %v, want a temporary error", err)
	}
	if left := ringFiles(os.Getpid()); len(left) != 0 {
		t.Errorf("ring files left after the plugin was killed: %v", left)
	}
	// The next call starts a new process and uses a new ring.
	before := transport.ReceivedStats()
	o = &onFirst{}
	if err := src.Read(ctx, blobConfig(rows, 4), mem, o); err != nil {
		t.Fatal(err)
	}
	if after := transport.ReceivedStats(); after.RingBodies == before.RingBodies {
		t.Error("no body came through shared memory after the restart")
	}
}

// hostEnv makes the test binary a host reading from a plugin forever: the
// test below SIGKILLs it mid-stream.
const hostEnv = "VIGIE_PLUGINS_TEST_HOST"

func runTestHost() {
	self, _ := os.Executable()
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: func() *exec.Cmd {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), serveEnv+"=1")
		return cmd
	}})
	c, err := h.Connector(context.Background(), "blob")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	o := &onFirst{f: func() {
		for _, p := range h.Processes() {
			fmt.Println("plugin", p.Pid)
		}
		fmt.Println("reading")
	}}
	err = c.(protocol.Source).Read(context.Background(), blobConfig(16384, 1<<30), memory.DefaultAllocator, o)
	fmt.Println("error", err)
	os.Exit(1)
}

func TestKilledHostLeavesNoRingFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("shared memory rings are Linux only")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), hostEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var plugin int
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if plugin > 0 {
			syscall.Kill(plugin, syscall.SIGKILL)
		}
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the host process ended before reading")
			}
			if p, ok := strings.CutPrefix(l, "plugin "); ok {
				plugin, _ = strconv.Atoi(p)
			}
			if l == "reading" {
				break wait
			}
			if strings.HasPrefix(l, "error") {
				t.Fatal(l)
			}
		case <-timeout:
			t.Fatal("the host process did not start reading")
		}
	}
	time.Sleep(50 * time.Millisecond) // mid-stream
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if left := ringFiles(cmd.Process.Pid); len(left) != 0 {
		t.Errorf("ring files left after the host was killed: %v", left)
	}
}
