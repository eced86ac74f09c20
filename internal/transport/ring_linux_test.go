package transport

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A host killed between creating a ring and its peer mapping it leaves the
// file; the next host removes it (and only rings of dead processes).
func TestSweepRemovesRingsOfDeadProcesses(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	dead := cmd.Process.Pid
	dir := t.TempDir()
	names := map[string]bool{ // name: kept
		ringPrefix + strconv.Itoa(dead) + "-123":        false,
		ringPrefix + strconv.Itoa(os.Getpid()) + "-456": true,
		ringPrefix + "junk":                             true,
		"other-" + strconv.Itoa(dead) + "-1":            true,
	}
	for n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sweepRings(dir)
	for n, kept := range names {
		_, err := os.Stat(filepath.Join(dir, n))
		if (err == nil) != kept {
			t.Errorf("%s: kept %v, want %v", n, err == nil, kept)
		}
	}
}

func TestRingFileIsPrivate(t *testing.T) {
	r, err := createRing(t.TempDir(), 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	fi, err := os.Stat(r.name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("ring file mode %v, want 0600", fi.Mode().Perm())
	}
}
