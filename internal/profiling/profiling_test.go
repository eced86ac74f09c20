package profiling

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestStartWritesProfiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "prof")
	stop, err := Start(dir, "engine")
	if err != nil {
		t.Fatal(err)
	}
	var keep [][]byte
	for i := range 64 {
		keep = append(keep, make([]byte, 64<<10+i))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_ = keep
	for _, kind := range []string{"cpu", "heap", "allocs"} {
		path := filepath.Join(dir, fmt.Sprintf("%s-engine-%d.pprof", kind, os.Getpid()))
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// A pprof profile is a gzipped protocol buffer.
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: not a profile: %v", path, err)
		}
		if n, err := io.Copy(io.Discard, zr); err != nil || n == 0 {
			t.Fatalf("%s: %d bytes, %v", path, n, err)
		}
	}
}

func TestStartWithoutFolderDoesNothing(t *testing.T) {
	stop, err := Start("", "engine")
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
