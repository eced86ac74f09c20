package pipelines_test

// Helpers of parquet_test.go, jsonl_test.go, xapi_test.go and
// xapi_http_test.go (prefix pjx: the package is shared).

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/internal/readback"
)

// pjxDeadLetters returns the dead-letter file's rows as
// "origin:line: column: reason", origin relative to the pipeline's folder.
func pjxDeadLetters(t *testing.T, path, dir string) []string {
	t.Helper()
	var out []string
	for _, r := range readback.CSV(t, path)[1:] { // stage, origin, line, column, reason, raw
		origin, err := filepath.Rel(dir, r[1])
		if err != nil {
			origin = r[1]
		}
		s := filepath.ToSlash(origin) + ":" + r[2] + ": "
		if r[3] != "" {
			s += r[3] + ": "
		}
		out = append(out, s+r[4])
	}
	return out
}

func pjxJoin(l []string) string { return strings.Join(l, "\n") }
