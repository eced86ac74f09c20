package suggest

import "testing"

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		word  string
		cands []string
		want  string
	}{
		{"conector", []string{"name", "connector", "options"}, "connector"},
		{"bacth_rows", []string{"batch_rows", "name"}, "batch_rows"}, // transposition
		{"sqe", []string{"seq", "mem"}, "seq"},
		{"Threshold", []string{"threshold"}, "threshold"}, // case
		{"colour", []string{"name", "batch_rows"}, ""},    // nothing close
		{"memory", []string{"memory_pages"}, ""},          // too far
		{"path", []string{"path"}, ""},                    // itself is no suggestion
	} {
		if got := Closest(tc.word, tc.cands); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	if got := DidYouMean("parket", []string{"parquet", "csv"}); got != ` (did you mean "parquet"?)` {
		t.Errorf("DidYouMean = %q", got)
	}
}

func TestClosestAndDistance(t *testing.T) {
	keys := []string{"name", "connector", "options"}
	for word, want := range map[string]string{
		"conector":  "connector",
		"connecter": "connector",
		"conenctor": "connector",
		"Name":      "name",
		"nmae":      "name",
		"option":    "options",
		"colour":    "",
		"n":         "",
		"name":      "",
	} {
		if got := Closest(word, keys); got != want {
			t.Errorf("Closest(%q) = %q, want %q", word, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"abc", "", 3}, {"ab", "ba", 1}, {"kitten", "sitting", 3}, {"élève", "eleve", 2},
	} {
		if got := Distance(tt.a, tt.b); got != tt.d {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func TestHint(t *testing.T) {
	for _, tc := range []struct {
		name, word string
		candidates []string
		want       string
	}{
		{"close", "colum", []string{"column", "row"}, ` (did you mean "column"?)`},
		{"far lists all", "zzz", []string{"a", "b"}, " (known: a, b)"},
		{"nothing to list", "zzz", nil, ""},
		{"quoted as Go quotes", "a\"bc", []string{"a\"bcd"}, ` (did you mean "a\"bcd"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Hint(tc.word, tc.candidates, "known"); got != tc.want {
				t.Errorf("Hint(%q, %q) = %q, want %q", tc.word, tc.candidates, got, tc.want)
			}
		})
	}
}
