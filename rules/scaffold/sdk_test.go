package scaffold

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the checkout around this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestFindSDK(t *testing.T) {
	root := repoRoot(t)
	outside := t.TempDir()
	tests := []struct {
		name, flag, dir string
		root, how       string // how: a substring
	}{
		{"--sdk a checkout", root, outside, root, "--sdk"},
		{"--sdk elsewhere", outside, filepath.Join(root, "x"), "", "is not a vigie checkout"},
		{"around the project", "", filepath.Join(root, "rules", "new_rule"), root, "around the project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, how := FindSDK(tt.flag, tt.dir)
			if got != tt.root || !strings.Contains(how, tt.how) {
				t.Errorf("FindSDK(%q, %q) = %q, %q; want %q and %q", tt.flag, tt.dir, got, how, tt.root, tt.how)
			}
		})
	}
}

func TestGoDirectiveAndVersions(t *testing.T) {
	gomod := filepath.Join(t.TempDir(), "go.mod")
	if err := os.WriteFile(gomod, []byte("module example.com/x\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := GoDirective(gomod); got != "1.26.0" {
		t.Errorf("GoDirective = %q", got)
	}
	if got := GoDirective(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("GoDirective of no file = %q", got)
	}
	for v, want := range map[string]bool{"v1.2.3": true, "(devel)": false, "v0.0.0-20250101000000-abcdef": false,
		"v1.2.4-0.20250101000000-abcdef": false, "v1.2.3+dirty": false} {
		if got := IsReleaseVersion(v); got != want {
			t.Errorf("IsReleaseVersion(%q) = %v", v, got)
		}
	}
	if v := AssemblyScriptVersion(repoRoot(t)); v == "" || strings.ContainsAny(v, " \n") {
		t.Errorf("AssemblyScriptVersion = %q", v)
	}
	dir := t.TempDir()
	dst, err := CopyAssemblyScriptSDK(repoRoot(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(dst))); err != nil {
		t.Error(err)
	}
}
