package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/stream"
)

// The example of docs/pipeline.md.
const example = `[pipeline]
name = "demo"
batch_rows = 65536            # optional, default 65536
dead_letter = "out/dead_letter.csv"
plugins_dir = "plugins"

[[source]]
name = "attendance"
connector = "csv"
[source.options]
path = "examples/data/attendance.csv"

[[rule]]
name = "absence"
input = "attendance"
module = "examples/rules/absence/absence.wasm"
on_error = "dead_letter"
[rule.params]
threshold = 0.10

[[sink]]
name = "flags"
input = "absence"
connector = "parquet"
[sink.options]
path = "out/absence.parquet"
`

// Pieces of small valid files; bad cases are built around them so that only
// the line under test is wrong. head is lines 1-2, src lines 3-5.
const (
	head = "[pipeline]\nname = \"demo\"\n"
	src  = "[[source]]\nname = \"attendance\"\nconnector = \"csv\"\n"
	sink = "[[sink]]\nname = \"flags\"\ninput = \"attendance\"\nconnector = \"parquet\"\n"
)

func TestParseExample(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pipeline.toml")
	p, err := Parse(file, []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("File", p.File, file)
	check("Dir", p.Dir, dir)
	check("Version", p.Version, 1)
	check("Name", p.Name, "demo")
	check("BatchRows", p.BatchRows, 65536)
	check("DeadLetter", p.DeadLetter, filepath.Join(dir, "out", "dead_letter.csv"))
	check("PluginsDir", p.PluginsDir, filepath.Join(dir, "plugins"))
	check("Pos", p.Pos, Pos{file, 1})
	if len(p.Sources) != 1 || len(p.Rules) != 1 || len(p.Sinks) != 1 {
		t.Fatalf("got %d sources, %d rules, %d sinks", len(p.Sources), len(p.Rules), len(p.Sinks))
	}
	s, r, k := p.Sources[0], p.Rules[0], p.Sinks[0]
	check("source name", s.Name, "attendance")
	check("source connector", s.Connector, "csv")
	check("source pos", s.Pos, Pos{file, 7})
	check("source option", s.Options["path"], "examples/data/attendance.csv")
	check("source option pos", s.OptionPos["path"], Pos{file, 11})
	check("rule name", r.Name, "absence")
	check("rule input", r.Input, "attendance")
	check("rule module", r.Module, filepath.Join(dir, "examples/rules/absence/absence.wasm"))
	check("rule on_error", r.OnError, OnErrorDeadLetter)
	check("rule pos", r.Pos, Pos{file, 13})
	check("rule param", r.Params["threshold"], 0.10)
	check("rule param pos", r.ParamPos["threshold"], Pos{file, 19})
	check("sink name", k.Name, "flags")
	check("sink input", k.Input, "absence")
	check("sink connector", k.Connector, "parquet")
	check("sink pos", k.Pos, Pos{file, 21})
	check("sink option", k.Options["path"], "out/absence.parquet")
	check("sink option pos", k.OptionPos["path"], Pos{file, 26})

	if got, want := p.Order(), []string{"attendance", "absence", "flags"}; !slices.Equal(got, want) {
		t.Errorf("Order() = %q, want %q", got, want)
	}
	if got := p.Inputs("flags"); !slices.Equal(got, []string{"absence"}) {
		t.Errorf("Inputs(flags) = %q", got)
	}
	if got := p.Inputs("attendance"); got != nil {
		t.Errorf("Inputs(attendance) = %q, want none", got)
	}
	if got := p.Consumers("attendance"); !slices.Equal(got, []string{"absence"}) {
		t.Errorf("Consumers(attendance) = %q", got)
	}
	for name, want := range map[string]stream.Kind{"attendance": stream.KindSource, "absence": stream.KindRule, "flags": stream.KindSink, "nope": ""} {
		if got := p.Kind(name); got != want {
			t.Errorf("Kind(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseGood(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf", "pipeline.toml")
	confDir := filepath.Dir(file)
	tests := []struct {
		name  string
		toml  string
		check func(t *testing.T, p *Pipeline)
	}{
		{
			name: "defaults",
			toml: head + src + sink,
			check: func(t *testing.T, p *Pipeline) {
				if p.BatchRows != protocol.DefaultBatchRows {
					t.Errorf("BatchRows = %d", p.BatchRows)
				}
				if want := filepath.Join(confDir, "out", "demo.dead_letter.csv"); p.DeadLetter != want {
					t.Errorf("DeadLetter = %q, want %q", p.DeadLetter, want)
				}
				if p.PluginsDir != "" {
					t.Errorf("PluginsDir = %q, want empty", p.PluginsDir)
				}
				if p.Sources[0].Options == nil || p.Sinks[0].Options == nil || len(p.Sources[0].OptionPos) != 0 {
					t.Errorf("options not empty and non-nil")
				}
			},
		},
		{
			name: "multiple sinks on one input",
			toml: head + src + sink + `[[sink]]
name = "copy"
input = "attendance"
connector = "csv"
`,
			check: func(t *testing.T, p *Pipeline) {
				if got, want := p.Consumers("attendance"), []string{"flags", "copy"}; !slices.Equal(got, want) {
					t.Errorf("Consumers = %q, want %q", got, want)
				}
				if got := p.Sink("copy").Pos.Line; got != 10 {
					t.Errorf("copy line = %d, want 10", got)
				}
			},
		},
		{
			name: "relative paths resolve against the file's folder",
			toml: `[pipeline]
name = "demo"
dead_letter = "../dl/rejects.csv"
plugins_dir = "./plugins"
` + src + `[[rule]]
name = "r"
input = "attendance"
module = "rules/r.wasm"
` + sink,
			check: func(t *testing.T, p *Pipeline) {
				if want := filepath.Join(dir, "dl", "rejects.csv"); p.DeadLetter != want {
					t.Errorf("DeadLetter = %q, want %q", p.DeadLetter, want)
				}
				if want := filepath.Join(confDir, "plugins"); p.PluginsDir != want {
					t.Errorf("PluginsDir = %q, want %q", p.PluginsDir, want)
				}
				if want := filepath.Join(confDir, "rules", "r.wasm"); p.Rules[0].Module != want {
					t.Errorf("Module = %q, want %q", p.Rules[0].Module, want)
				}
				if got, want := p.Resolve("data/x.csv"), filepath.Join(confDir, "data", "x.csv"); got != want {
					t.Errorf("Resolve = %q, want %q", got, want)
				}
			},
		},
		{
			name: "absolute paths are kept",
			toml: "[pipeline]\nname = \"demo\"\ndead_letter = \"/var/vigie/dl.csv\"\n" + src +
				"[[rule]]\nname = \"r\"\ninput = \"attendance\"\nmodule = \"/opt/r.wasm\"\n" + sink,
			check: func(t *testing.T, p *Pipeline) {
				if p.DeadLetter != "/var/vigie/dl.csv" || p.Rules[0].Module != "/opt/r.wasm" {
					t.Errorf("DeadLetter = %q, Module = %q", p.DeadLetter, p.Rules[0].Module)
				}
			},
		},
		{
			name: "rules in a chain are ordered by dependency",
			toml: head + src + `[[rule]]
name = "score"
input = "absence"
module = "score.wasm"
on_error = "fail"
[[rule]]
name = "absence"
input = "attendance"
module = "absence.wasm"
[[sink]]
name = "alerts"
input = "score"
connector = "webhook"
[[sink]]
name = "raw"
input = "attendance"
connector = "parquet"
`,
			check: func(t *testing.T, p *Pipeline) {
				if got, want := p.Order(), []string{"attendance", "absence", "score", "alerts", "raw"}; !slices.Equal(got, want) {
					t.Errorf("Order = %q, want %q", got, want)
				}
				if got, want := p.Consumers("attendance"), []string{"absence", "raw"}; !slices.Equal(got, want) {
					t.Errorf("Consumers = %q, want %q", got, want)
				}
				if p.Rule("score").OnError != OnErrorFail || p.Rule("absence").OnError != OnErrorDeadLetter {
					t.Errorf("on_error not decoded")
				}
			},
		},
		{
			name: "unconsumed source and rule are allowed",
			toml: head + src + "[[source]]\nname = \"unused\"\nconnector = \"csv\"\n" +
				"[[rule]]\nname = \"dangling\"\ninput = \"attendance\"\nmodule = \"d.wasm\"\n" + sink,
			check: func(t *testing.T, p *Pipeline) {
				if p.Consumers("unused") != nil || p.Consumers("dangling") != nil {
					t.Errorf("unexpected consumers")
				}
			},
		},
		{
			name: "inline tables and free-form options",
			toml: `version = 1
pipeline = { name = "demo", batch_rows = 1 }
source = [
  { name = "a", connector = "csv", options = { path = "a.csv" } },
  { name = "b", connector = "csv", options = { path = "b.csv", "odd key" = [1, 2] } },
]
[[sink]]
name = "out"
input = "b"
connector = "csv"
[sink.options]
path = """
multi
line"""
columns.keep = ["id"]
when = 2024-09-02T08:00:00Z
`,
			check: func(t *testing.T, p *Pipeline) {
				if p.BatchRows != 1 || len(p.Sources) != 2 {
					t.Fatalf("BatchRows = %d, %d sources", p.BatchRows, len(p.Sources))
				}
				b := p.Sources[1]
				if b.Pos.Line != 5 || b.OptionPos["odd key"].Line != 5 {
					t.Errorf("source b at %v, odd key at %v; want line 5", b.Pos, b.OptionPos["odd key"])
				}
				o := p.Sinks[0].OptionPos
				if o["path"].Line != 12 || o["columns"].Line != 15 || o["when"].Line != 16 {
					t.Errorf("sink option lines: %v", o)
				}
				if _, ok := p.Sinks[0].Options["columns"].(map[string]any); !ok {
					t.Errorf("columns option is %T", p.Sinks[0].Options["columns"])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(file, []byte(tt.toml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, p)
		})
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want string // the whole error text, one error per line
	}{
		{
			name: "toml syntax error",
			toml: head + "batch_rows = \n" + src + sink,
			want: `pipeline.toml:3: invalid TOML: expected value but found '\n' instead`,
		},
		{
			name: "toml unterminated string",
			toml: head + src + "[source.options]\npath = \"a.csv\n" + sink,
			want: `pipeline.toml:7: invalid TOML: strings cannot contain newlines`,
		},
		{
			name: "toml duplicate key",
			toml: head + src + "name = \"again\"\n" + sink,
			want: `pipeline.toml:6: invalid TOML: key 'source.name' has already been defined`,
		},
		{
			name: "unknown key with suggestion",
			toml: head + "[[source]]\nname = \"attendance\"\nconector = \"csv\"\n" + sink,
			want: "pipeline.toml:3: source[0].connector: missing required key\n" +
				`pipeline.toml:5: source[0].conector: unknown key (did you mean "connector"?)`,
		},
		{
			name: "unknown array of tables",
			toml: head + src + "[[rules]]\nname = \"r\"\n" + sink,
			want: `pipeline.toml:6: rules: unknown table (did you mean "rule"?)`,
		},
		{
			name: "unknown key without suggestion",
			toml: head + "colour = \"blue\"\n" + src + sink,
			want: `pipeline.toml:3: pipeline.colour: unknown key; allowed keys: name, batch_rows, max_delay, checkpoint_interval, dead_letter, plugins_dir, state_dir, state_memory_mb, dead_letter_window, dead_letter_max_share, bisect_max_calls, bisect_max_time, stop_timeout, audit_log`,
		},
		{
			name: "unknown key transposed letters",
			toml: head + "bacth_rows = 10\n" + src + sink,
			want: `pipeline.toml:3: pipeline.bacth_rows: unknown key (did you mean "batch_rows"?)`,
		},
		{
			name: "unknown sub-table",
			toml: head + src + "[source.option]\npath = \"a.csv\"\n" + sink,
			want: `pipeline.toml:6: source[0].option: unknown table (did you mean "options"?)`,
		},
		{
			name: "unknown dotted key in second sink",
			toml: head + src + sink + "[[sink]]\nname = \"b\"\ninput = \"attendance\"\nconnector = \"csv\"\noptions.path = \"b\"\nformat.kind = \"x\"\n",
			want: `pipeline.toml:15: sink[1].format: unknown table; allowed keys: name, input, connector, options, columns, reidentify`,
		},
		{
			name: "unknown quoted top-level key",
			toml: "\"my key\" = 1\n" + head + src + sink,
			want: `pipeline.toml:1: "my key": unknown key; allowed keys: version, pipeline, source, rule, join, union, alerts, aggregate, sink, privacy`,
		},
		{
			name: "wrong type string for integer",
			toml: head + "batch_rows = \"big\"\n" + src + sink,
			want: `pipeline.toml:3: pipeline.batch_rows: expected integer, got string`,
		},
		{
			name: "wrong type float for integer",
			toml: head + "batch_rows = 1.5\n" + src + sink,
			want: `pipeline.toml:3: pipeline.batch_rows: expected integer, got float`,
		},
		{
			name: "wrong type integer for name",
			toml: head + "[[source]]\nname = 3\nconnector = \"csv\"\n" + sink,
			want: `pipeline.toml:4: source[0].name: expected string, got integer`,
		},
		{
			name: "wrong type options",
			toml: head + src + "options = \"path=a.csv\"\n" + sink,
			want: `pipeline.toml:6: source[0].options: expected table, got string`,
		},
		{
			name: "wrong type single table for array",
			toml: head + "[source]\nname = \"attendance\"\nconnector = \"csv\"\n" + sink,
			want: `pipeline.toml:3: source: expected array of tables, got table`,
		},
		{
			name: "wrong type pipeline",
			toml: "pipeline = \"demo\"\n" + src + sink,
			want: `pipeline.toml:1: pipeline: expected table, got string`,
		},
		{
			name: "wrong type after multi-line string",
			toml: head + src + "[source.options]\nnote = '''\nname = 1\n'''\n[[rule]]\nname = true\ninput = \"attendance\"\nmodule = \"m.wasm\"\n" + sink,
			want: `pipeline.toml:11: rule[0].name: expected string, got boolean`,
		},
		{
			name: "batch_rows zero",
			toml: head + "batch_rows = 0\n" + src + sink,
			want: `pipeline.toml:3: pipeline.batch_rows: must be between 1 and 16777216, got 0`,
		},
		{
			name: "batch_rows too large",
			toml: head + "batch_rows = 16777217\n" + src + sink,
			want: `pipeline.toml:3: pipeline.batch_rows: must be between 1 and 16777216, got 16777217`,
		},
		{
			name: "missing pipeline name",
			toml: "# comment\n[pipeline]\nbatch_rows = 10\n" + src + sink,
			want: `pipeline.toml:2: pipeline.name: missing required key`,
		},
		{
			name: "missing pipeline table",
			toml: src + sink,
			want: `pipeline.toml:1: pipeline: missing required table [pipeline]`,
		},
		{
			name: "missing source connector",
			toml: head + "\n[[source]]\nname = \"attendance\"\n" + sink,
			want: `pipeline.toml:4: source[0].connector: missing required key`,
		},
		{
			name: "missing rule input and module",
			toml: head + src + "[[rule]]\nname = \"r\"\n" + sink,
			want: "pipeline.toml:6: rule[0].input: missing required key\n" +
				"pipeline.toml:6: rule[0].module: missing required key",
		},
		{
			name: "missing sink keys",
			toml: head + src + "[[sink]]\n",
			want: "pipeline.toml:6: sink[0].connector: missing required key\n" +
				"pipeline.toml:6: sink[0].input: missing required key\n" +
				"pipeline.toml:6: sink[0].name: missing required key",
		},
		{
			name: "empty strings",
			toml: head + "[[source]]\nname = \"attendance\"\nconnector = \"\"\n[[rule]]\nname = \"r\"\ninput = \"\"\nmodule = \"\"\n" + sink,
			want: "pipeline.toml:5: source[0].connector: must not be empty\n" +
				"pipeline.toml:8: rule[0].input: must not be empty\n" +
				"pipeline.toml:9: rule[0].module: must not be empty",
		},
		{
			name: "invalid names",
			toml: "[pipeline]\nname = \"Demo\"\n[[source]]\nname = \"2024_grades\"\nconnector = \"csv\"\n[[sink]]\nname = \"out-file\"\ninput = \"2024_grades\"\nconnector = \"csv\"\n",
			want: `pipeline.toml:2: pipeline.name: invalid name "Demo": ` + nameRule + "\n" +
				`pipeline.toml:4: source[0].name: invalid name "2024_grades": ` + nameRule + "\n" +
				`pipeline.toml:7: sink[0].name: invalid name "out-file": ` + nameRule,
		},
		{
			name: "duplicate stage name",
			toml: head + src + "[[rule]]\nname = \"attendance\"\ninput = \"attendance\"\nmodule = \"m.wasm\"\n" + sink,
			want: `pipeline.toml:7: rule[0].name: duplicate stage name "attendance" (first defined by source[0] at pipeline.toml:4)`,
		},
		{
			name: "duplicate sink name defined before source",
			toml: head + "[[sink]]\nname = \"attendance\"\ninput = \"attendance\"\nconnector = \"csv\"\n" + src,
			want: "pipeline.toml:5: sink[0].input: stage \"attendance\" is a sink, which has no output: an input must be a source, a rule, a join or a union\n" +
				"pipeline.toml:8: source[0].name: duplicate stage name \"attendance\" (first defined by sink[0] at pipeline.toml:4)",
		},
		{
			name: "dangling input with suggestion",
			toml: head + src + "[[rule]]\nname = \"absence\"\ninput = \"attendence\"\nmodule = \"m.wasm\"\n" + sink,
			want: `pipeline.toml:8: rule[0].input: unknown stage "attendence" (did you mean "attendance"?)`,
		},
		{
			name: "dangling input without suggestion",
			toml: head + src + "[[sink]]\nname = \"out\"\ninput = \"grades\"\nconnector = \"csv\"\n",
			want: `pipeline.toml:8: sink[0].input: unknown stage "grades"`,
		},
		{
			name: "sink input is a sink",
			toml: head + src + sink + "[[sink]]\nname = \"again\"\ninput = \"flags\"\nconnector = \"csv\"\n",
			want: `pipeline.toml:12: sink[1].input: stage "flags" is a sink, which has no output: an input must be a source, a rule, a join or a union`,
		},
		{
			name: "rule input is a sink",
			toml: head + src + sink + "[[rule]]\nname = \"r\"\ninput = \"flags\"\nmodule = \"m.wasm\"\n",
			want: `pipeline.toml:12: rule[0].input: stage "flags" is a sink, which has no output: an input must be a source, a rule, a join or a union`,
		},
		{
			name: "cycle of two rules",
			toml: head + src + "[[rule]]\nname = \"a\"\ninput = \"b\"\nmodule = \"m.wasm\"\n[[rule]]\nname = \"b\"\ninput = \"a\"\nmodule = \"m.wasm\"\n" + sink,
			want: `pipeline.toml:8: rule[0].input: cycle among rules: a -> b -> a`,
		},
		{
			name: "cycle of three rules",
			toml: head + src + "[[rule]]\nname = \"x\"\ninput = \"z\"\nmodule = \"m\"\n[[rule]]\nname = \"y\"\ninput = \"x\"\nmodule = \"m\"\n[[rule]]\nname = \"z\"\ninput = \"y\"\nmodule = \"m\"\n[[rule]]\nname = \"w\"\ninput = \"z\"\nmodule = \"m\"\n" + sink,
			want: `pipeline.toml:8: rule[0].input: cycle among rules: x -> y -> z -> x`,
		},
		{
			name: "rule reading itself",
			toml: head + src + "[[rule]]\nname = \"a\"\ninput = \"a\"\nmodule = \"m.wasm\"\n" + sink,
			want: `pipeline.toml:8: rule[0].input: cycle among rules: a -> a`,
		},
		{
			name: "no source",
			toml: head + sink,
			want: "pipeline.toml:1: source: no source: a pipeline needs at least one [[source]]\n" +
				`pipeline.toml:5: sink[0].input: unknown stage "attendance"`,
		},
		{
			name: "no sink",
			toml: head + src,
			want: `pipeline.toml:1: sink: no sink: a pipeline needs at least one [[sink]]`,
		},
		{
			name: "empty source array",
			toml: "source = []\n" + head + sink,
			want: "pipeline.toml:1: source: no source: a pipeline needs at least one [[source]]\n" +
				`pipeline.toml:6: sink[0].input: unknown stage "attendance"`,
		},
		{
			name: "bad on_error",
			toml: head + src + "[[rule]]\nname = \"r\"\ninput = \"attendance\"\nmodule = \"m.wasm\"\non_error = \"skip\"\n" + sink,
			want: `pipeline.toml:10: rule[0].on_error: invalid value "skip": allowed values are "dead_letter" and "fail"`,
		},
		{
			name: "unsupported version",
			toml: "version = 2\n" + head + src + sink,
			want: `pipeline.toml:1: version: unsupported format version 2: this vigie reads version 1`,
		},
		{
			name: "error in inline array of tables",
			toml: "source = [\n  { name = \"a\", connector = \"csv\" },\n  { name = \"b\", conector = \"csv\" },\n]\n" + head + sink,
			want: `pipeline.toml:3: source[1].conector: unknown key (did you mean "connector"?)` + "\n" +
				"pipeline.toml:3: source[1].connector: missing required key\n" +
				`pipeline.toml:9: sink[0].input: unknown stage "attendance"`,
		},
		{
			name: "every error at once, sorted by line",
			toml: `[pipeline]
name = "demo"
batch_rows = -1

[[source]]
name = "attendance"
conector = "csv"

[[rule]]
name = "absence"
input = "attendence"
module = "absence.wasm"
on_error = "ignore"

[[sink]]
name = "flags"
input = "absence"
connector = "parquet"
`,
			want: `pipeline.toml:3: pipeline.batch_rows: must be between 1 and 16777216, got -1
pipeline.toml:5: source[0].connector: missing required key
pipeline.toml:7: source[0].conector: unknown key (did you mean "connector"?)
pipeline.toml:11: rule[0].input: unknown stage "attendence" (did you mean "attendance"?)
pipeline.toml:13: rule[0].on_error: invalid value "ignore": allowed values are "dead_letter" and "fail"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("pipeline.toml", []byte(tt.toml))
			if err == nil {
				t.Fatalf("Parse succeeded, want error:\n%s", tt.want)
			}
			if p != nil {
				t.Errorf("Parse returned a pipeline with an error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != strings.Count(tt.want, "\n")+1 {
				t.Errorf("errors.As(Errors) = %d errors", len(errs))
			}
			var e *Error
			if !errors.As(err, &e) || e != errs[0] {
				t.Errorf("errors.As(*Error) did not find the first error")
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pipeline.toml")
	if err := os.WriteFile(file, []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if p.File != file || p.Dir != dir {
		t.Errorf("File = %q, Dir = %q", p.File, p.Dir)
	}
	_, err = Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
	if err := os.WriteFile(file, []byte(head+src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(file)
	var e *Error
	if !errors.As(err, &e) || e.Pos.File != file || e.Key != "sink" {
		t.Errorf("Load(no sink) = %v", err)
	}
}

func TestPosString(t *testing.T) {
	if got := (Pos{"p.toml", 3}).String(); got != "p.toml:3" {
		t.Errorf("got %q", got)
	}
	if got := (Pos{"p.toml", 0}).String(); got != "p.toml" {
		t.Errorf("got %q", got)
	}
}

func TestPartialSuppressesDanglingInputs(t *testing.T) {
	// The pipeline name is not a stage: missing it does not hide other errors.
	_, err := Parse("pipeline.toml", []byte("[pipeline]\n"+src+"[[sink]]\nname = \"out\"\ninput = \"grade\"\nconnector = \"csv\"\n"))
	want := "pipeline.toml:1: pipeline.name: missing required key\n" +
		`pipeline.toml:7: sink[0].input: unknown stage "grade"`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

const ruleHead = "[[rule]]\nname = \"r\"\ninput = \"attendance\"\nmodule = \"r.wasm\"\n" // lines 6-9

func TestRuleSettings(t *testing.T) {
	good := head + src + ruleHead + `sha256 = "` + strings.Repeat("ab", 32) + `"
workers = 3
replace = ["flag"]
provenance_columns = true
group_by = ["student_id", "class_id"]
order_by = "month"
[rule.limits]
memory_pages = 1024
timeout = "1500ms"
max_output_bytes = 1000000
max_log_bytes = 4096
` + sink
	p, err := Parse("pipeline.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if r.SHA256 != strings.Repeat("ab", 32) || r.Workers != 3 || len(r.Replace) != 1 || !r.ProvenanceColumns ||
		strings.Join(r.GroupBy, ",") != "student_id,class_id" || r.OrderBy != "month" {
		t.Errorf("rule = %+v", r)
	}
	if r.Limits != (Limits{MemoryPages: 1024, Timeout: 1500 * time.Millisecond, MaxOutputBytes: 1000000, MaxLogBytes: 4096}) {
		t.Errorf("limits = %+v", r.Limits)
	}

	for _, tc := range []struct{ name, lines, want string }{
		{"bad sha256", `sha256 = "ABC"`, `pipeline.toml:10: rule[0].sha256: expected 64 lowercase hexadecimal digits, got "ABC"`},
		{"workers out of range", `workers = 1000`, `pipeline.toml:10: rule[0].workers: must be between 0 (one per CPU) and 256, got 1000`},
		{"replace not strings", `replace = [1]`, `pipeline.toml:10: rule[0].replace: expected array of strings, got array`},
		{"order_by without group_by", `order_by = "month"`, `pipeline.toml:10: rule[0].order_by: order_by needs group_by`},
		{"bad timeout", "[rule.limits]\ntimeout = \"soon\"", `pipeline.toml:11: rule[0].limits.timeout: expected a duration such as "500ms" or "10s", got "soon"`},
		{"negative memory", "[rule.limits]\nmemory_pages = -1", `pipeline.toml:11: rule[0].limits.memory_pages: must be positive, got -1`},
		{"unknown limit", "[rule.limits]\nmemory_page = 10", `pipeline.toml:11: rule[0].limits.memory_page: unknown key (did you mean "memory_pages"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pipeline.toml", []byte(head+src+ruleHead+tc.lines+"\n"+sink))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestJoinAndUnion(t *testing.T) {
	const students = "[[source]]\nname = \"students\"\nconnector = \"csv\"\n" // lines 6-8
	good := head + src + students + `[[union]]
name = "timeline"
inputs = ["attendance", "students"]
[[join]]
name = "enriched"
input = "timeline"
dimension = "students"
on = ["student_id"]
columns = ["class_id"]
how = "inner"
[[sink]]
name = "out"
input = "enriched"
connector = "parquet"
`
	p, err := Parse("pipeline.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	j := p.Join("enriched")
	if j == nil || j.Input != "timeline" || j.Dimension != "students" || j.How != JoinInner || strings.Join(j.On, ",") != "student_id" || strings.Join(j.Columns, ",") != "class_id" {
		t.Errorf("join = %+v", j)
	}
	if got := strings.Join(p.Inputs("enriched"), ","); got != "timeline,students" {
		t.Errorf("Inputs(enriched) = %s", got)
	}
	if got := strings.Join(p.Order(), ","); got != "attendance,students,timeline,enriched,out" {
		t.Errorf("Order = %s", got)
	}
	if got := strings.Join(p.Consumers("students"), ","); got != "enriched,timeline" {
		t.Errorf("Consumers(students) = %s", got)
	}
	if p.Kind("timeline") != stream.KindUnion || p.Kind("enriched") != stream.KindJoin {
		t.Errorf("kinds %v %v", p.Kind("timeline"), p.Kind("enriched"))
	}

	for _, tc := range []struct{ name, body, want string }{
		{"union of one", "[[union]]\nname = \"u\"\ninputs = [\"attendance\"]\n" + sink,
			`pipeline.toml:8: union[0].inputs: a union needs at least two inputs`},
		{"union input unknown", "[[union]]\nname = \"u\"\ninputs = [\"attendance\", \"atendance\"]\n" + sink,
			`pipeline.toml:8: union[0].inputs: unknown stage "atendance" (did you mean "attendance"?)`},
		{"join without on", "[[join]]\nname = \"j\"\ninput = \"attendance\"\ndimension = \"attendance\"\n" + sink,
			`pipeline.toml:6: join[0].on: missing required key`},
		{"join bad how", "[[join]]\nname = \"j\"\ninput = \"attendance\"\ndimension = \"attendance\"\non = [\"id\"]\nhow = \"outer\"\n" + sink,
			`pipeline.toml:11: join[0].how: invalid value "outer": allowed values are "left" and "inner"`},
		{"cycle through a union", ruleHead[:len(ruleHead)-len("input = \"attendance\"\nmodule = \"r.wasm\"\n")] + "input = \"u\"\nmodule = \"r.wasm\"\n[[union]]\nname = \"u\"\ninputs = [\"attendance\", \"r\"]\n" + sink,
			`pipeline.toml:8: rule[0].input: cycle among stages: r -> u -> r`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pipeline.toml", []byte(head+src+tc.body))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestStateKeys(t *testing.T) {
	stateHead := "[pipeline]\nname = \"demo\"\nstate_dir = \"state\"\n" // lines 1-3, src 4-6, rule 7-10
	good := stateHead + src + ruleHead + "group_by = [\"student_id\"]\norder_by = \"date\"\nkeep_state = true\nretention = \"26w\"\nmax_rows_per_key = 500\nrescore = \"touched\"\ncall_rows = 2000\n" + sink
	p, err := Parse("/x/pipeline.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if p.StateDir != "/x/state" || p.StateMemoryMB != 256 || !r.KeepState || r.Retention != 26*7*24*time.Hour || r.MaxRowsPerKey != 500 || r.Rescore != RescoreTouched || r.CallRows != 2000 {
		t.Errorf("state_dir %q, rule %+v", p.StateDir, r)
	}
	for _, tc := range []struct{ name, head, lines, want string }{
		{"keep_state without state_dir", head, "group_by = [\"s\"]\norder_by = \"d\"\nkeep_state = true",
			`pipeline.toml:12: rule[0].keep_state: keep_state needs [pipeline] state_dir, the folder where state is kept`},
		{"keep_state without order_by", stateHead, "group_by = [\"s\"]\nkeep_state = true",
			`pipeline.toml:12: rule[0].keep_state: keep_state needs group_by and order_by (the event time that orders each key's rows)`},
		{"bad retention", stateHead, "group_by = [\"s\"]\norder_by = \"d\"\nretention = \"a term\"",
			`pipeline.toml:13: rule[0].retention: expected a positive duration such as "180d", "6w" or "72h", got "a term"`},
		{"call_rows without group_by", stateHead, "call_rows = 100",
			`pipeline.toml:11: rule[0].call_rows: must be between 1 and 16777216 and needs group_by, got 100`},
		{"call_rows of zero", stateHead, "group_by = [\"s\"]\ncall_rows = 0",
			`pipeline.toml:12: rule[0].call_rows: must be between 1 and 16777216 and needs group_by, got 0`},
		{"bad rescore", stateHead, "rescore = \"some\"",
			`pipeline.toml:11: rule[0].rescore: invalid value "some": allowed values are "all" and "touched"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pipeline.toml", []byte(tc.head+src+ruleHead+tc.lines+"\n"+sink))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestAlerts(t *testing.T) {
	stateHead := "[pipeline]\nname = \"demo\"\nstate_dir = \"state\"\n" // lines 1-3, src 4-6, rule 7-10
	group := ruleHead + "group_by = [\"student_id\"]\n"                 // line 11
	good := stateHead + src + group + `[[alerts]]
name = "changes"
input = "r"
open = "alerts_open"
update_on = ["alert_level"]
[[sink]]
name = "out"
input = "changes"
connector = "parquet"
`
	p, err := Parse("pipeline.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	a := p.AlertsStage("changes")
	if a == nil || a.Input != "r" || a.Open != "alerts_open" || a.ReasonCodes != DefaultAlertsReasonCodes || a.Risk != DefaultAlertsRisk ||
		a.Reason != DefaultAlertsReason || a.Level != DefaultAlertsLevel || strings.Join(a.UpdateOn, ",") != "alert_level" {
		t.Errorf("alerts = %+v", a)
	}
	if a.At("open").Line != 15 || a.At("risk").Line != 12 {
		t.Errorf("At(open) = %v, At(risk) = %v (absent: the header)", a.At("open"), a.At("risk"))
	}
	if p.Kind("changes") != stream.KindAlerts || strings.Join(p.Order(), ",") != "attendance,r,changes,out" {
		t.Errorf("kind %v, order %v", p.Kind("changes"), p.Order())
	}
	if d, _ := Parse("pipeline.toml", []byte(stateHead+src+group+"[[alerts]]\nname = \"c\"\ninput = \"r\"\n"+sink)); d == nil ||
		strings.Join(d.Alerts[0].UpdateOn, ",") != "reason_codes,alert_level" || d.Alerts[0].Open != "open_alerts" {
		t.Errorf("defaults: %+v", d)
	}

	for _, tc := range []struct{ name, head, body, want string }{
		{"input a source", stateHead, "[[alerts]]\nname = \"c\"\ninput = \"attendance\"\n",
			`pipeline.toml:14: alerts[0].input: stage "attendance" is a source: the input of an alerts stage must be a group rule listing open alerts (such as the early-warning pack)`},
		{"input unknown", stateHead, "[[alerts]]\nname = \"c\"\ninput = \"rr\"\n",
			`pipeline.toml:14: alerts[0].input: unknown stage "rr" (did you mean "r"?)`},
		{"no input", stateHead, "[[alerts]]\nname = \"c\"\n",
			`pipeline.toml:12: alerts[0].input: missing required key`},
		{"empty column name", stateHead, "[[alerts]]\nname = \"c\"\ninput = \"r\"\nrisk = \"\"\n",
			`pipeline.toml:15: alerts[0].risk: must not be empty`},
		{"unknown key", stateHead, "[[alerts]]\nname = \"c\"\ninput = \"r\"\nrisks = \"x\"\n",
			`pipeline.toml:15: alerts[0].risks: unknown key (did you mean "risk"?)`},
		{"no state_dir", head, "[[alerts]]\nname = \"c\"\ninput = \"r\"\n",
			`pipeline.toml:11: alerts[0]: an alerts stage keeps the alerts it announced between runs: it needs [pipeline] state_dir`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pipeline.toml", []byte(tc.head+src+group+tc.body+sink))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestEventTimeKeys(t *testing.T) {
	stateHead := "[pipeline]\nname = \"demo\"\nstate_dir = \"state\"\n" // lines 1-3, src 4-6, rule 7-10
	good := stateHead + src + ruleHead + "group_by = [\"student_id\"]\norder_by = \"date\"\nemit = \"per_row\"\nallowed_lateness = \"2d\"\nlate = \"dead_letter\"\npartition_column = \"p\"\noffset_column = \"o\"\ncarry = [\"o\", \"ts\"]\n" + sink
	p, err := Parse("/x/pipeline.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if r.Emit != EmitPerRow || r.EmitPos.Line != 13 || r.AllowedLateness != 48*time.Hour || r.Late != LateDeadLetter ||
		r.PartitionColumn != "p" || r.OffsetColumn != "o" || strings.Join(r.Carry, ",") != "o,ts" {
		t.Errorf("rule %+v", r)
	}
	p, err = Parse("/x/pipeline.toml", []byte(stateHead+src+ruleHead+"group_by = [\"student_id\"]\n"+sink))
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Rules[0]; r.Emit != EmitAtEnd || r.Late != LateRescore || r.EmitPos.Line != 7 {
		t.Errorf("defaults: emit %q at line %d, late %q", r.Emit, r.EmitPos.Line, r.Late)
	}
	for _, tc := range []struct{ name, lines, want string }{
		{"bad emit", "group_by = [\"s\"]\norder_by = \"d\"\nemit = \"each\"",
			`pipeline.toml:13: rule[0].emit: invalid value "each": allowed values are "at_end" and "per_row"`},
		{"per_row without order_by", "group_by = [\"s\"]\nemit = \"per_row\"",
			`pipeline.toml:12: rule[0].emit: emit = "per_row" needs group_by and order_by (the event time of each key's rows)`},
		{"lateness with at_end", "group_by = [\"s\"]\norder_by = \"d\"\nallowed_lateness = \"1d\"",
			`pipeline.toml:13: rule[0].allowed_lateness: allowed_lateness applies to emit = "per_row" only`},
		{"bad late", "group_by = [\"s\"]\norder_by = \"d\"\nemit = \"per_row\"\nlate = \"drop\"",
			`pipeline.toml:14: rule[0].late: invalid value "drop": allowed values are "rescore" and "dead_letter"`},
		{"bad lateness", "group_by = [\"s\"]\norder_by = \"d\"\nemit = \"per_row\"\nallowed_lateness = \"soon\"",
			`pipeline.toml:14: rule[0].allowed_lateness: expected a duration such as "2d" or "36h", got "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("pipeline.toml", []byte(stateHead+src+ruleHead+tc.lines+"\n"+sink))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}
