package layout_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const (
	module   = "github.com/vigie-edu/vigie"
	examples = module + "/examples"
)

// pkg is what `go list -json` says of a package, the fields read here.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// listPackages lists the module's packages, with their test imports.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func isExample(path string) bool { return path == examples || strings.HasPrefix(path, examples+"/") }

// importsOfExamples returns, for each package outside examples/, the
// packages under examples/ it imports (its tests included). A package that
// reaches examples/ through others imports one directly somewhere, so
// direct imports are enough.
func importsOfExamples(pkgs []pkg) map[string][]string {
	bad := map[string][]string{}
	for _, p := range pkgs {
		if isExample(p.ImportPath) {
			continue
		}
		for _, list := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range list {
				if isExample(imp) {
					bad[p.ImportPath] = append(bad[p.ImportPath], imp)
				}
			}
		}
	}
	return bad
}

// TestNothingImportsExamples: cmd/ and every product package stand without
// examples/ (issue 13: product code lives in homes named for it).
func TestNothingImportsExamples(t *testing.T) {
	pkgs := listPackages(t)
	var cmds int
	for _, p := range pkgs {
		if strings.HasPrefix(p.ImportPath, module+"/cmd/") {
			cmds++
		}
	}
	if cmds == 0 {
		t.Fatalf("go list found no package under cmd/ among %d: the check would check nothing", len(pkgs))
	}
	for p, imps := range importsOfExamples(pkgs) {
		t.Errorf("%s imports %s: move what it needs out of examples/", p, strings.Join(imps, ", "))
	}
}

// TestImportsOfExamples checks the check on made-up packages.
func TestImportsOfExamples(t *testing.T) {
	tests := []struct {
		name string
		pkgs []pkg
		want int
	}{
		{"product imports product", []pkg{{ImportPath: module + "/cmd/vigie", Imports: []string{module + "/academy"}}}, 0},
		{"example imports product", []pkg{{ImportPath: examples + "/data/gen", Imports: []string{module + "/academy"}}}, 0},
		{"cmd imports an example", []pkg{{ImportPath: module + "/cmd/vigie", Imports: []string{examples + "/academy"}}}, 1},
		{"test imports an example", []pkg{{ImportPath: module + "/rules/host", XTestImports: []string{examples + "/rules/absence"}}}, 1},
		{"examples-like name is not examples", []pkg{{ImportPath: module + "/cmd/vigie", Imports: []string{module + "/examplesx"}}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(importsOfExamples(tt.pkgs)); got != tt.want {
				t.Errorf("%d packages flagged, want %d", got, tt.want)
			}
		})
	}
}
