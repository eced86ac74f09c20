package protocol_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestContractImportsNoTransport keeps the contract free of its
// transport: the package's own files import neither gRPC, nor go-plugin,
// nor Arrow Flight, nor the engine's internal packages other than
// internal/suggest. The transport lives in internal/transport.
func TestContractImportsNoTransport(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{
		"google.golang.org/grpc",
		"github.com/hashicorp/go-plugin",
		"github.com/apache/arrow-go/v18/arrow/flight",
		"github.com/apache/arrow-go/v18/arrow/ipc",
		"github.com/vigie-edu/vigie/internal/transport",
		"github.com/vigie-edu/vigie/internal/pluginhost",
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range banned {
				if path == b || strings.HasPrefix(path, b+"/") {
					t.Errorf("%s imports %s: the contract must not depend on its transport", name, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source file checked")
	}
}
