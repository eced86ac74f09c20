package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestConnectorReferenceIsUpToDate(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"plugins", "docs"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	path := filepath.Join("..", "..", "docs", "connectors.md")
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, out.Bytes()) {
		t.Errorf("%s is out of date: run `go generate ./cmd/vigie`", path)
	}
	for _, want := range []string{"## csv_file", "| `compression` | string | no | `\"zstd\"` |", "| `path` | path | yes |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}

func TestPluginsListAndDescribe(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "vigie-connector-roster"), "../../examples/connectors/roster")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("VIGIE_PLUGIN_DIR", dir)

	var out, errb bytes.Buffer
	if code := run([]string{"plugins", "list"}, &out, &errb); code != exitOK {
		t.Fatalf("list: exit %d: %s", code, errb.String())
	}
	// Columns are aligned to the longest name: match any run of spaces.
	for _, want := range []string{`(?m)^csv +source +\S+ +built-in`, `(?m)^parquet +sink `, `(?m)^roster +source +1\.0\.0 +` + regexp.QuoteMeta(dir)} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("list lacks %s:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := run([]string{"plugins", "describe", "roster"}, &out, &errb); code != exitOK {
		t.Fatalf("describe: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"roster (source, version 1.0.0)", "students (int, default 1000)", "number of students"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, out.String())
		}
	}

	errb.Reset()
	if code := run([]string{"plugins", "describe", "rostr"}, &out, &errb); code != exitFailed || !strings.Contains(errb.String(), `did you mean "roster"?`) {
		t.Errorf("describe of a typo: exit %d, %s", code, errb.String())
	}
}
