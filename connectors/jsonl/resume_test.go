package jsonl

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

func TestCheckResume(t *testing.T) {
	files := []string{"a.jsonl", "b.jsonl"}
	pos := protocol.Position(`{"file":1,"path":"b.jsonl"}`)
	if err := CheckResume("jsonl", "path", "*.jsonl", pos, files, 1, "b.jsonl"); err != nil {
		t.Fatalf("valid position refused: %v", err)
	}
	for _, tc := range []struct {
		file int
		path string
	}{{1, "c.jsonl"}, {2, "b.jsonl"}, {-1, "a.jsonl"}} {
		err := CheckResume("jsonl", "path", "*.jsonl", pos, files, tc.file, tc.path)
		if !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), `names a file that "*.jsonl" no longer matches at that place`) {
			t.Errorf("file %d %s: err = %v", tc.file, tc.path, err)
		}
	}
}
