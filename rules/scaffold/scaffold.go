// Package scaffold holds the project templates of `vigie rule new`, embedded
// in the vigie binary: one directory per language (go, assemblyscript, c)
// for a map rule, and group/<language> for a group rule.
//
// Every file of a language directory is copied into the new project. A
// group project is the map project of its language with the files of
// group/<language> in place of those of the same name (so the files that
// do not depend on the kind, such as go.mod, build.sh, package.json and
// dot_gitignore, exist once): a group directory must replace every file
// that is specific to map rules (the code, CASES.toml, README.md). A file
// whose name ends in ".tmpl" is a text/template: it is executed with Vars
// (and the function abiVersion, rules/abi's Version) and written without
// the suffix. "__name__" in a file name is replaced by
// the rule's name, and a "dot_" prefix by "." (dot_gitignore: .gitignore).
// Templates end in ".tmpl" also so that the Go tool never sees a go.mod or
// a .go file of a template as part of this module.
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
	"slices"
	"sort"
	"strings"
	"sync"
	"text/template"

	"github.com/vigie-edu/vigie/rules/abi"
)

//go:embed all:go all:assemblyscript all:c all:group
var files embed.FS

// Languages lists the languages that have a template, in the order shown to
// users.
var Languages = []string{"go", "assemblyscript", "c"}

// Kinds lists the kinds of rule that have a template (the manifest's
// "kind"), the default first.
var Kinds = []string{"map", "group"}

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

var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`) })

// CheckName reports whether name can name a rule: lower-case letters,
// digits and underscores, starting with a letter, at most 64 bytes; it is
// used as a manifest name, a file name, a C identifier and a pipeline stage
// name.
func CheckName(name string) error {
	if !validName().MatchString(name) {
		return fmt.Errorf("invalid rule name %q: use lower-case letters, digits and _, starting with a letter (at most 64)", name)
	}
	return nil
}

// Files returns the names of the files that Generate writes for lang and
// kind, relative to the project directory, sorted.
func Files(lang, kind, name string) ([]string, error) {
	src, err := sources(lang, kind)
	if err != nil {
		return nil, err
	}
	var out []string
	for rel := range src {
		out = append(out, target(rel, name))
	}
	sort.Strings(out)
	return out, nil
}

// sources maps every template file of a project of lang and kind, by its
// name relative to the project (before target renames it), to its path in
// files: the language directory, then for a group rule group/<lang> over
// it.
func sources(lang, kind string) (map[string]string, error) {
	if !slices.Contains(Languages, lang) {
		return nil, fmt.Errorf("unknown language %q (want one of %s)", lang, strings.Join(Languages, ", "))
	}
	roots := []string{lang}
	switch kind {
	case "map":
	case "group":
		roots = append(roots, "group/"+lang)
	default:
		return nil, fmt.Errorf("unknown kind %q (want one of %s)", kind, strings.Join(Kinds, ", "))
	}
	src := map[string]string{}
	for _, root := range roots {
		err := fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == ".keep" {
				return err
			}
			src[strings.TrimPrefix(p, root+"/")] = p
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return src, nil
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

// funcs are the templates' functions: abiVersion is the ABI version the
// generated manifest declares, rules/abi's, written nowhere else.
var funcs = template.FuncMap{"abiVersion": func() uint32 { return abi.Version }}

// Generate writes the project of a rule of lang and kind into dir, which
// must not exist or be empty. It returns the files written, relative to
// dir.
func Generate(lang, kind, dir string, v Vars) ([]string, error) {
	if err := CheckName(v.Name); err != nil {
		return nil, err
	}
	src, err := sources(lang, kind)
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
	for rel, p := range src {
		data, err := files.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(p, ".tmpl") {
			t, err := template.New(path.Base(p)).Option("missingkey=error").Funcs(funcs).Parse(string(data))
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", p, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, v); err != nil {
				return nil, fmt.Errorf("template %s: %w", p, err)
			}
			data = b.Bytes()
		}
		name := target(rel, v.Name)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		out = append(out, file{name, data, mode})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
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
	return names, nil
}
