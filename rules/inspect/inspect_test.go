package inspect

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFile inspects modules of rules/host/testdata, conforming or not; the
// CLI's tests (cmd/vigie) check the printed report of more of them.
func TestFile(t *testing.T) {
	tests := []struct {
		file     string
		conforms bool
		failing  string // a failing check's name and detail contain it
	}{
		{"fail.wasm", true, ""},
		{"sandbox.wasm", true, ""},
		{"forbidden_import.wasm", false, `forbidden import "env.now"`},
		{"abi2.wasm", false, "returns 2"},
		{"not-wasm", false, "valid WebAssembly module"},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("..", "host", "testdata", tt.file)
			if tt.file == "not-wasm" {
				path = filepath.Join(t.TempDir(), "m.wasm")
				if err := os.WriteFile(path, []byte("\x00asm but not really"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := File(context.Background(), path, log)
			if err != nil {
				t.Fatal(err)
			}
			if r.Conforms != tt.conforms {
				t.Errorf("conforms %v, want %v: %+v", r.Conforms, tt.conforms, r.Checks)
			}
			var failing []string
			for _, c := range r.Checks {
				if c.Status == Fail {
					failing = append(failing, c.Name+": "+c.Detail)
				}
			}
			if tt.conforms && len(failing) > 0 {
				t.Errorf("failing checks of a conforming module: %q", failing)
			}
			if !tt.conforms && !strings.Contains(strings.Join(failing, "\n"), tt.failing) {
				t.Errorf("no failing check says %q: %q", tt.failing, failing)
			}
			var out bytes.Buffer
			r.Print(&out)
			if want := map[bool]string{true: "conforms to the rule ABI", false: "does NOT conform"}[tt.conforms]; !strings.Contains(out.String(), want) {
				t.Errorf("printed report lacks %q:\n%s", want, out.String())
			}
		})
	}
}

// TestFileMissing: a file that cannot be read is an error, not a report.
func TestFileMissing(t *testing.T) {
	if _, err := File(context.Background(), filepath.Join(t.TempDir(), "none.wasm"), slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("no error for a missing file")
	}
}
