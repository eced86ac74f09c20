package pipelines_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/internal/readback"
)

// Helpers shared by the tests of the example pipelines.

// sandbox copies examples/pipelines/<toml> and the trees it reads
// (paths relative to examples/) into a test folder with the same layout,
// so that the pipeline's out/ lands there; it returns the copied file.
func sandbox(t *testing.T, toml string, trees ...string) string {
	t.Helper()
	root := t.TempDir()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tree := range trees {
		err := filepath.WalkDir(filepath.Join("..", tree), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel("..", path)
			if err != nil {
				return err
			}
			copyFile(path, filepath.Join(root, rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(root, "pipelines", toml)
	copyFile(toml, dst)
	return dst
}

// readParquet returns the column names and the rows of a Parquet file,
// rendered by conformance.Row.
func readParquet(t *testing.T, path string) ([]string, []string) {
	t.Helper()
	rr, err := readback.OpenParquet(t, path).GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var names []string
	for _, f := range rr.Schema().Fields() {
		names = append(names, f.Name+":"+f.Type.String())
	}
	var rows []string
	for rr.Next() {
		rows = append(rows, conformance.Rows(rr.RecordBatch())...)
	}
	return names, rows
}
