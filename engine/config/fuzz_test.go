package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// positioned is the form of every error of a pipeline file: "file:LINE: ".
var positioned = regexp.MustCompile(`^fuzz\.toml:[1-9][0-9]*: `)

// repoTOML adds every .toml file of the repository (outside node_modules
// and fuzz corpora) to the seed corpus: the examples, the test pipelines and
// the rule manifests, valid and invalid.
func repoTOML(f *testing.F) {
	f.Helper()
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "fuzz") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".toml") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(data)
		n++
		return nil
	})
	if err != nil {
		f.Fatalf("seed corpus: %v", err)
	}
	if n == 0 {
		f.Fatal("seed corpus: no .toml file found in the repository")
	}
}

// FuzzParse checks that Parse (TOML decoding and every check of the
// pipeline) never panics, and that it returns either a pipeline or a
// non-empty Errors whose entries each name the file and a line ("file:LINE:
// "), so a user can always go to the place of the problem.
func FuzzParse(f *testing.F) {
	repoTOML(f)
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
			if !positioned.MatchString(e.Error()) {
				t.Fatalf("error without file:line: %q", e.Error())
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
