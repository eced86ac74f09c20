package proctree

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTreePSS: the process tree of this test holds at least this process.
func TestTreePSS(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("no /proc/self/smaps_rollup")
	}
	if n := TreePSS(os.Getpid()); n < 1<<20 {
		t.Errorf("TreePSS of this process = %d bytes, expected megabytes", n)
	}
}

// TestRun: a child that runs for a while is timed and sampled; a failing
// one returns its standard error.
func TestRun(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("no /proc/self/smaps_rollup")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	u, err := Run(exec.Command(sh, "-c", "sleep 0.3"), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if u.Wall < 300*time.Millisecond || u.TreePSS <= 0 || u.MaxRSS <= 0 {
		t.Errorf("usage = %+v, want wall >= 300ms and some memory", u)
	}
	if _, err := Run(exec.Command(sh, "-c", "echo broken >&2; exit 3"), 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("error = %v, want the child's standard error", err)
	}
}
