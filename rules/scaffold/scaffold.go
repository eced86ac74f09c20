// Package scaffold holds the project templates of `vigie rule new`: one
// directory per language (go, assemblyscript, c), embedded in the vigie
// binary.
//
// Every file of a language directory is copied into the new project. A file
// whose name ends in ".tmpl" is a text/template: it is executed with Vars
// and written without the suffix. "__name__" in a file name is replaced by
// the rule's name, and a "dot_" prefix by "." (dot_gitignore: .gitignore). Templates end in ".tmpl" also so that the Go tool never
// sees a go.mod or a .go file of a template as part of this module.
package scaffold

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

//go:embed all:go all:assemblyscript all:c
var files embed.FS

// Languages lists the languages that have a template, in the order shown to
// users.
var Languages = []string{"go", "assemblyscript", "c"}

// Vars are the values the templates see.
type Vars struct {
	// Name is the rule's name: the manifest name, the module file name
	// (Name.wasm) and the stage name suggested for pipeline.toml.
	Name string
	// Module is the Go module path of the vigie repository (Go only).
	Module string
	// Require is the version of Module that go.mod requires (Go only).
	Require string
	// SDK is the absolute path of a vigie checkout whose SDKs the project
	// uses ("" when none: a Go project then requires the published module).
	SDK string
	// GoVersion is the go directive of go.mod ("1.26").
	GoVersion string
	// AssemblyScript is the version of the assemblyscript npm package
	// (AssemblyScript only).
	AssemblyScript string
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// CheckName reports whether name can name a rule: lower-case letters,
// digits and underscores, starting with a letter, at most 64 bytes; it is
// used as a manifest name, a file name, a C identifier and a pipeline stage
// name.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid rule name %q: use lower-case letters, digits and _, starting with a letter (at most 64)", name)
	}
	return nil
}

// Files returns the names of the files that Generate writes for lang,
// relative to the project directory, sorted.
func Files(lang, name string) ([]string, error) {
	root, err := langRoot(lang)
	if err != nil {
		return nil, err
	}
	var out []string
	err = fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".keep" {
			return err
		}
		out = append(out, target(strings.TrimPrefix(p, root+"/"), name))
		return nil
	})
	sort.Strings(out)
	return out, err
}

func langRoot(lang string) (string, error) {
	for _, l := range Languages {
		if l == lang {
			return l, nil
		}
	}
	return "", fmt.Errorf("unknown language %q (want one of %s)", lang, strings.Join(Languages, ", "))
}

// target returns the name in the project of the template file rel.
func target(rel, name string) string {
	rel = strings.ReplaceAll(rel, "__name__", name)
	dir, base := path.Split(rel)
	if rest, ok := strings.CutPrefix(base, "dot_"); ok {
		base = "." + rest
	}
	return dir + strings.TrimSuffix(base, ".tmpl")
}

// Generate writes the project of lang into dir, which must not exist or be
// empty. It returns the files written, relative to dir.
func Generate(lang, dir string, v Vars) ([]string, error) {
	if err := CheckName(v.Name); err != nil {
		return nil, err
	}
	root, err := langRoot(lang)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s already exists and is not empty", dir)
	}
	type file struct {
		rel  string
		data []byte
		mode os.FileMode
	}
	var out []file
	err = fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".keep" {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".tmpl") {
			t, err := template.New(path.Base(p)).Option("missingkey=error").Parse(string(data))
			if err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, v); err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			data = b.Bytes()
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(target(p, v.Name), ".sh") {
			mode = 0o755
		}
		out = append(out, file{target(strings.TrimPrefix(p, root+"/"), v.Name), data, mode})
		return nil
	})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range out {
		full := filepath.Join(dir, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return nil, err
		}
		names = append(names, f.rel)
	}
	sort.Strings(names)
	return names, nil
}
