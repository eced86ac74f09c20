package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, and that it returns either a
// pipeline or a non-empty Errors whose entries all name the file.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		example,
		head + src + sink,
		"source = [{ name = \"a\", connector = \"csv\", options = { p = [1, { q = 2 }] } }]\n" + head + sink,
		head + src + "[[rule]]\nname = \"a\"\ninput = \"b\"\nmodule = \"m\"\n[[rule]]\nname = \"b\"\ninput = \"a\"\nmodule = \"m\"\n" + sink,
		"[a.b]\n[[a.c]]\n[[a.c]]\n[a.c.d]\nx = '''\n'''\ny = \"\"\"\\\n\"\"\"\n",
		"\"k\\u00e9\" = { a.b = 1, 'c' = [ [], {} ] }\n",
		"[[sink]]\ninput = \"x\"\n[[sink]]\nname = \"x\"\n",
		"= 1\n[\n[[x\n\"unterminated",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.toml", data)
		if err == nil {
			if p == nil || len(p.Sources) == 0 || len(p.Sinks) == 0 {
				t.Fatalf("no error and an incomplete pipeline: %+v", p)
			}
			p.Order()
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not a non-empty Errors: %v", err)
		}
		for _, e := range errs {
			if e.Pos.File != "fuzz.toml" || e.Msg == "" {
				t.Fatalf("bad error %#v", e)
			}
		}
	})
}

// FuzzLocate checks that the locator never panics or hangs on any input,
// including text the TOML decoder rejects.
func FuzzLocate(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("a = [\n{b = '''\n''', c = [\"]\"]}]\n[x.'y'.\"z\"]\n"))
	f.Add([]byte("[[a]]\n[a.b\n\"\\"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := locate(data)
		for path := range l.lines {
			if n := l.line(path); n < 1 {
				t.Fatalf("line(%s) = %d", path, n)
			}
		}
	})
}
