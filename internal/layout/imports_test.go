package layout_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	module   = "github.com/vigie-edu/vigie"
	examples = module + "/examples"
)

// goFile is a Go source file of the module (tests included) and what it
// imports.
type goFile struct {
	Path    string // slash-separated, relative to the module root
	Imports []string
}

// moduleRoot is the folder of go.mod above the test's folder.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// goFiles parses the imports of every Go file of the module, as the go
// command would see them (testdata, _ and . folders and node_modules left
// out). Reading the files in the test, rather than asking `go list`, keeps
// `go test`'s cache honest: a changed file invalidates the cached result.
func goFiles(t *testing.T, root string) []goFile {
	t.Helper()
	var files []goFile
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		g := goFile{Path: filepath.ToSlash(rel)}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			g.Imports = append(g.Imports, p)
		}
		files = append(files, g)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func isExample(importPath string) bool {
	return importPath == examples || strings.HasPrefix(importPath, examples+"/")
}

// importsOfExamples returns, for each file outside examples/, the packages
// under examples/ it imports. A package that reaches examples/ through
// others has a file that imports one directly somewhere, so direct imports
// are enough.
func importsOfExamples(files []goFile) map[string][]string {
	bad := map[string][]string{}
	for _, f := range files {
		if strings.HasPrefix(f.Path, "examples/") {
			continue
		}
		for _, imp := range f.Imports {
			if isExample(imp) {
				bad[f.Path] = append(bad[f.Path], imp)
			}
		}
	}
	return bad
}

// TestNothingImportsExamples: cmd/ and every product package stand without
// examples/ (issue 13: product code lives in homes named for it).
func TestNothingImportsExamples(t *testing.T) {
	files := goFiles(t, moduleRoot(t))
	var cmds, ex int
	for _, f := range files {
		if strings.HasPrefix(f.Path, "cmd/") {
			cmds++
		}
		if strings.HasPrefix(f.Path, "examples/") {
			ex++
		}
	}
	if cmds == 0 || ex == 0 {
		t.Fatalf("%d Go files under cmd/ and %d under examples/ among %d: the check would check nothing", cmds, ex, len(files))
	}
	for f, imps := range importsOfExamples(files) {
		t.Errorf("%s imports %s: move what it needs out of examples/", f, strings.Join(imps, ", "))
	}
}

// TestImportsOfExamples checks the check on made-up files.
func TestImportsOfExamples(t *testing.T) {
	tests := []struct {
		name string
		file goFile
		want int
	}{
		{"product imports product", goFile{"cmd/vigie/gen.go", []string{module + "/synth/academy"}}, 0},
		{"example imports product", goFile{"examples/data/gen/main.go", []string{module + "/synth/academy"}}, 0},
		{"example imports example", goFile{"examples/pipelines/x_test.go", []string{examples + "/rules/absence"}}, 0},
		{"cmd imports an example", goFile{"cmd/vigie/gen.go", []string{"fmt", examples + "/academy"}}, 1},
		{"a test imports an example", goFile{"rules/host/x_test.go", []string{examples + "/rules/absence"}}, 1},
		{"examples-like name is not examples", goFile{"cmd/vigie/gen.go", []string{module + "/examplesx"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(importsOfExamples([]goFile{tt.file})); got != tt.want {
				t.Errorf("%d files flagged, want %d", got, tt.want)
			}
		})
	}
}
