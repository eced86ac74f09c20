package webhook

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidID checks validID against the regexp it replaces.
func TestValidID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_:\-]{1,256}$`)
	for _, tc := range []struct {
		name, id string
		want     bool
	}{
		{"empty", "", false},
		{"one letter", "a", true},
		{"every allowed kind", "Az09_:-", true},
		{"256", strings.Repeat("x", 256), true},
		{"257", strings.Repeat("x", 257), false},
		{"dot", "a.b", false},
		{"space", "a b", false},
		{"newline", "a\n", false},
		{"slash", "a/b", false},
		{"non-ASCII letter", "é", false},
		{"NUL", "a\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := validID(tc.id); got != tc.want {
				t.Errorf("validID(%q) = %t, want %t", tc.id, got, tc.want)
			}
			if re.MatchString(tc.id) != tc.want {
				t.Errorf("the regexp says %t for %q: the table is wrong", !tc.want, tc.id)
			}
		})
	}
}

// FuzzValidID: validID agrees with the regexp it replaces on any input.
func FuzzValidID(f *testing.F) {
	re := regexp.MustCompile(`^[A-Za-z0-9_:\-]{1,256}$`)
	for _, s := range []string{"", "a", "a.b", "Az09_:-", strings.Repeat("x", 257)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validID(id), re.MatchString(id); got != want {
			t.Errorf("validID(%q) = %t, the regexp says %t", id, got, want)
		}
	})
}
