package pipeline

import (
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/config"
)

func TestCheckPartitioning(t *testing.T) {
	const head = `[pipeline]
name = "p"

[[source]]
name = "events"
connector = "kafka"
[source.options]
group = "g"
%s

[[rule]]
name = "score"
input = "events"
module = "r.wasm"
%s

[[sink]]
name = "out"
input = "score"
connector = "jsonl_file"
[sink.options]
path = "out.jsonl"
`
	tests := []struct {
		name, source, rule string
		want               string // "" : accepted
	}{
		{"keys match", `partitioned_by = "student_id"`, `group_by = ["student_id"]`, ""},
		{"other key", `partitioned_by = "student_id"`, `group_by = ["school_id"]`, `keyed by [school_id], but its input is partitioned_by "student_id"`},
		{"more keys", `partitioned_by = "student_id"`, `group_by = ["student_id", "subject"]`, `partitioned_by "student_id"`},
		{"not partitioned", ``, `group_by = ["school_id"]`, ""},
		{"map rule", `partitioned_by = "student_id"`, ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(head, "%s", tt.source, 1), "%s", tt.rule, 1)
			cfg, err := config.Parse("p.toml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			errs := checkPartitioning(cfg)
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("refused: %v", errs)
			case tt.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Errorf("errors %v, want one saying %q", errs, tt.want)
			}
		})
	}
}
