package scaffold

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/rules/abi"
)

// TestGenerate writes the project of every language and kind, and checks
// that it is a rule of that kind only: a group project keeps no file of the
// map template that is specific to map rules.
func TestGenerate(t *testing.T) {
	v := Vars{Name: "demo", Module: "github.com/vigie-edu/vigie", Require: "v0.0.0-00010101000000-000000000000",
		SDK: "/sdk", GoVersion: "1.26", AssemblyScript: "0.28.20"}
	// Text of the template of the other kind: its sample columns and
	// parameter.
	other := map[string][]string{"map": {"min_marks", "mean_mark"}, "group": {"factor", `"score"`}}
	cases := map[string]string{} // kind -> CASES.toml of the first language
	for _, kind := range Kinds {
		for _, lang := range Languages {
			dir := t.TempDir()
			got, err := Generate(lang, kind, dir, v)
			if err != nil {
				t.Fatalf("%s %s: %v", lang, kind, err)
			}
			files, err := Files(lang, kind, v.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, files) {
				t.Errorf("%s %s: Generate wrote %v, Files gives %v", lang, kind, got, files)
			}
			mapFiles, _ := Files(lang, "map", v.Name)
			if !slices.Equal(files, mapFiles) {
				t.Errorf("%s %s: files %v, the map project has %v (a group template replaces files, it adds none)", lang, kind, files, mapFiles)
			}
			var all strings.Builder
			for _, f := range got {
				b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
				if err != nil {
					t.Fatal(err)
				}
				all.Write(b)
				if f == "CASES.toml" {
					if c, ok := cases[kind]; !ok {
						cases[kind] = string(b)
					} else if c != string(b) {
						t.Errorf("%s %s: CASES.toml differs from that of %s", lang, kind, Languages[0])
					}
				}
			}
			text := all.String()
			if !strings.Contains(text, `"kind": "`+kind+`"`) && !strings.Contains(text, `\"kind\": \"`+kind+`\"`) {
				t.Errorf("%s %s: no manifest of kind %s", lang, kind, kind)
			}
			abiLine := fmt.Sprintf(`"abi": %d,`, abi.Version)
			if !strings.Contains(text, abiLine) && !strings.Contains(text, strings.ReplaceAll(abiLine, `"`, `\"`)) {
				t.Errorf("%s %s: the manifest does not declare ABI %d", lang, kind, abi.Version)
			}
			for _, s := range other[kind] {
				if strings.Contains(text, s) {
					t.Errorf("%s %s: the project mentions %s, of the other kind's template", lang, kind, s)
				}
			}
		}
	}
}

func TestUnknownKindOrLanguage(t *testing.T) {
	if _, err := Files("go", "bogus", "x"); err == nil || !strings.Contains(err.Error(), `unknown kind "bogus" (want one of map, group)`) {
		t.Errorf("kind bogus: %v", err)
	}
	if _, err := Generate("cobol", "map", t.TempDir(), Vars{Name: "x"}); err == nil || !strings.Contains(err.Error(), `unknown language "cobol"`) {
		t.Errorf("language cobol: %v", err)
	}
	if _, err := Files("group", "map", "x"); err == nil {
		t.Error(`language "group" (the directory of the group templates) accepted`)
	}
}
