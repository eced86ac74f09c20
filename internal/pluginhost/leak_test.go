package pluginhost_test

import (
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"

	"github.com/vigie-edu/vigie/internal/pluginhost"
)

// TestNoGoroutineOutlivesPlugin starts and closes plugin processes and
// checks that every goroutine started for them (go-plugin's, gRPC's, the
// log routing) is gone once the host is closed.
func TestNoGoroutineOutlivesPlugin(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := func() *exec.Cmd {
		c := exec.Command(self)
		c.Env = append(os.Environ(), serveEnv+"=1")
		return c
	}
	// One cycle first, so that goroutines started once per process (gRPC's
	// resolvers, the runtime's) are counted as there before.
	cycle := func() {
		h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: cmd})
		defer h.Close()
		readPID(t, h)
		readPID(t, h)
	}
	cycle()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	for range 3 {
		cycle()
	}
	goleak.VerifyNone(t, opts...)
}
