package config

import "testing"

func TestLocate(t *testing.T) {
	const doc = `# a comment with [brackets] and key = "value"
version = 1
[pipeline]   # trailing comment
name = "x # not a comment"
"quoted.key" = 1
'literal key' = 2
dotted.inner.leaf = 3
text = """
[not_a_header]
fake = 1
"""
after_text = 4
raw = '''
''' # "quote" inside
after_raw = 5
list = [
  1, # comment ]
  "two]",
  [3, 4],
]
after_list = 6
inline = { a = 1, b = { c = "}" } }

[[source]]
name = "a"
[source.options]
path = "a.csv"

[[source]]
name = "b"
  [source.options]
  path = "b.csv"
  sub.key = true

[[source]]
[[source.columns]]
name = "c1"
[[source.columns]]
name = "c2"
[source.columns.type]
kind = "int"

[ sink . "odd name" ]
x = 1
sources = [{ name = "i0" },
  { name = "i1" }]
"esc\e\u00e9" = 7
`
	l := locate([]byte(doc))
	want := map[string]int{
		"version":                         2,
		"pipeline":                        3,
		"pipeline.name":                   4,
		`pipeline."quoted.key"`:           5,
		`pipeline."literal key"`:          6,
		"pipeline.dotted":                 7,
		"pipeline.dotted.inner.leaf":      7,
		"pipeline.text":                   8,
		"pipeline.after_text":             12,
		"pipeline.raw":                    13,
		"pipeline.after_raw":              15,
		"pipeline.list":                   16,
		"pipeline.list[1]":                18,
		"pipeline.list[2]":                19,
		"pipeline.after_list":             21,
		"pipeline.inline.a":               22,
		"pipeline.inline.b.c":             22,
		"source":                          24,
		"source[0]":                       24,
		"source[0].name":                  25,
		"source[0].options":               26,
		"source[0].options.path":          27,
		"source[1]":                       29,
		"source[1].options":               31,
		"source[1].options.path":          32,
		"source[1].options.sub.key":       33,
		"source[2]":                       35,
		"source[2].columns":               36,
		"source[2].columns[0].name":       37,
		"source[2].columns[1]":            38,
		"source[2].columns[1].name":       39,
		"source[2].columns[1].type":       40,
		"source[2].columns[1].type.kind":  41,
		"sink":                            43,
		`sink."odd name"`:                 43,
		`sink."odd name".x`:               44,
		`sink."odd name".sources[0].name`: 45,
		`sink."odd name".sources[1].name`: 46,
		// TOML's escapes, not Go's (\e is ESC).
		`sink."odd name"."esc\x1bé"`: 47,
		// Not located: the nearest parent answers.
		"source[1].options.missing": 31,
		"nothing":                   0,
	}
	for path, line := range want {
		if got := l.line(path); got != line {
			t.Errorf("line(%s) = %d, want %d", path, got, line)
		}
	}
	for _, path := range []string{"pipeline.not_a_header", "not_a_header", "pipeline.fake", "fake"} {
		if _, ok := l.lines[path]; ok {
			t.Errorf("%s located inside a multi-line string", path)
		}
	}
}

func TestParentPath(t *testing.T) {
	for path, want := range map[string]string{
		"a":           "",
		"a.b":         "a",
		"a[3]":        "a",
		"a[3].b":      "a[3]",
		`a."b.c"`:     "a",
		`a."b.c".d`:   `a."b.c"`,
		`"x"`:         "",
		`a."q\"uote"`: "a",
		"":            "",
	} {
		if got := parentPath(path); got != want {
			t.Errorf("parentPath(%s) = %q, want %q", path, got, want)
		}
	}
}
