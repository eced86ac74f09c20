package pronote_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/pronote"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// collect reads everything a source emits, with its dead letters.
type collect struct {
	rows []string
	dead []protocol.DeadLetter
}

func (c *collect) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	c.rows = append(c.rows, conformance.Rows(rec)...)
	return nil
}

func (c *collect) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	c.dead = append(c.dead, rows...)
	return nil
}

func read(t *testing.T, opts map[string]any) (*collect, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := &collect{}
	err := pronote.Source{}.Read(context.Background(), protocol.Config{Connector: pronote.Name, BatchRows: 4, Options: opts}, mem, c)
	return c, err
}

func deadStrings(d []protocol.DeadLetter) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = x.String()
	}
	return out
}

var notesRows = []string{
	"S1|Durand|Zoé|3eB|MATHÉMATIQUES|Trimestre 1|2025-10-05|12.5|ok|12.5|20|1|(null)",
	"S1|Durand|Zoé|3eB|FRANÇAIS|Trimestre 1|2025-10-05|7.5|ok|15|40|2|(null)",
	"S2|Lefèvre|Noé|3eB|ANGLAIS LV1|Trimestre 1|2025-10-06|(null)|absent|(null)|20|1|(null)",
	"S2|Lefèvre|Noé|3eB|EPS|Trimestre 1|2025-10-06|(null)|unfit|(null)|20|1|(null)",
	"S3|Martin|Léa|3eB|SVT|Trimestre 1|2025-10-07|15|ok|7.5|10|0.5|(null)",
	"S3|Martin|Léa|3eB|SVT|Trimestre 1|2025-10-07|(null)|not_graded|(null)|20|1|(null)",
	"S3|Martin|Léa|3eB|PHYSIQUE-CHIMIE|Trimestre 1|2025-10-07|(null)|exempt|(null)|20|1|(null)",
	"S5|Roux|Inès|3eB|ARTS PLASTIQUES|Trimestre 1|2025-10-09|(null)|not_submitted|(null)|20|1|(null)",
	"S5|Roux|Inès|3eB|ARTS PLASTIQUES|Trimestre 1|2025-10-09|(null)|missing|(null)|20|1|(null)",
	"S5|Roux|Inès|3eB|MATHÉMATIQUES|Trimestre 1|2025-10-10|16.6|ok|33.2|40|1|(null)",
}

var absencesRows = []string{
	"S1|Durand|Zoé|3eB|2025-10-06|AM|true|Maladie|2025-10-06T06:28:00Z",
	"S1|Durand|Zoé|3eB|2025-10-07|PM|false|Non justifié|2025-10-07T11:26:00Z",
	"S2|Lefèvre|Noé|3eB|2025-10-08|AM|false|Non justifié|2025-10-07T22:00:00Z",
	"S2|Lefèvre|Noé|3eB|2025-10-08|PM|false|Non justifié|2025-10-07T22:00:00Z",
	"S3|Martin|Léa|3eB|2026-01-15|PM|true|Rendez-vous médical|2026-01-16T08:05:00Z",
}

func TestConformance(t *testing.T) {
	notes := filepath.Join("testdata", "notes_variants.csv")
	absences := filepath.Join("testdata", "absences_variants.csv")
	bad := []conformance.BadCase{
		{Options: map[string]any{"path": notes}, Want: `option "kind": required option is missing`},
		{Options: map[string]any{"path": notes, "kind": "marks"}, Want: `"marks" is not one of`},
		{Options: map[string]any{"path": "testdata/nothing*.csv", "kind": "notes"}, Want: "nothing*.csv: no such file"},
		{Options: map[string]any{"path": notes, "kind": "notes", "encoding": "utf-16"}, Want: `"utf-16" is not one of`},
		{Options: map[string]any{"path": notes, "kind": "notes", "delimiter": ";;"}, Want: `";;" is not a usable delimiter`},
		{Options: map[string]any{"path": notes, "kind": "notes", "scale": 0}, Want: "is not a scale"},
		{Options: map[string]any{"path": notes, "kind": "notes", "timezone": "Mars/Olympus"}, Want: "is not a time zone"},
		{Options: map[string]any{"path": notes, "kind": "notes", "headers": map[string]any{"Élève": "name"}}, Want: `"name" is not a column of kind "notes"`},
		{Options: map[string]any{"path": notes, "kind": "absences"}, Want: "no header line with the columns student_id"},
	}
	cases := map[string]conformance.SourceCase{
		"notes":    {Options: map[string]any{"path": notes, "kind": "notes"}, WantRows: notesRows, Bad: bad},
		"absences": {Options: map[string]any{"path": absences, "kind": "absences"}, WantRows: absencesRows},
		"glob": {Options: map[string]any{"path": "testdata/notes_*.csv", "kind": "notes"}, WantRows: append([]string{
			"S9|Œuvray|Chloé|2ndeA|MATHÉMATIQUES|T1|2025-10-01|16.5|ok|8.25|10|1|Bon travail, « soigné »",
			"S9|Œuvray|Chloé|2ndeA|PHILOSOPHIE|T1|2025-10-02|(null)|absent|(null)|20|1|(null)",
		}, notesRows...)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, pronote.Source{}, c) })
			t.Run("over gRPC", func(t *testing.T) {
				conformance.TestSource(t, conformance.ThroughPlugin(t, pronote.Source{}).(protocol.Source), c)
			})
		})
	}
}

func TestDeadLetters(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		want []string
	}{
		{"notes", map[string]any{"path": "testdata/notes_variants.csv", "kind": "notes"}, []string{
			`testdata/notes_variants.csv:10: column "date": expected a date dd/mm/yyyy, got "31/02/2025" (column 7, "Date")`,
			`testdata/notes_variants.csv:11: column "mark": mark 24 is above its scale /20 (column 8, "Note")`,
			`testdata/notes_variants.csv:12: column "mark": expected a number with a decimal comma ("12,5"), a mark on its scale ("15/40"), or Abs, Disp, N.Not, Inap, NR, got "douze" (column 8, "Note")`,
			`testdata/notes_variants.csv:13: expected 10 fields as in the header, got 6`,
		}},
		{"absences", map[string]any{"path": "testdata/absences_variants.csv", "kind": "absences"}, []string{
			`testdata/absences_variants.csv:5: column "half": expected a half-day (Matin, Après-midi or Journée), got "Soirée" (column 6, "Demi-journée")`,
			`testdata/absences_variants.csv:6: column "justified": expected Oui or Non, got "Peut-être" (column 7, "Justifiée")`,
			`testdata/absences_variants.csv:7: column "student_id": empty student id, expected the student's identifier (column 1, "Identifiant")`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := read(t, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := deadStrings(c.dead); !slices.Equal(got, tt.want) {
				t.Errorf("dead letters:\n got %q\nwant %q", got, tt.want)
			}
			if c.dead[0].Raw == "" {
				t.Error("a dead letter has no raw record")
			}
		})
	}
}

func TestOnError(t *testing.T) {
	opts := map[string]any{"path": "testdata/notes_variants.csv", "kind": "notes", "on_error": "skip"}
	c, err := read(t, opts)
	if err != nil || len(c.dead) != 0 || len(c.rows) != len(notesRows) {
		t.Errorf("skip: %v, %d dead letters, %d rows", err, len(c.dead), len(c.rows))
	}
	opts["on_error"] = "fail"
	_, err = read(t, opts)
	want := `testdata/notes_variants.csv:10:40: column "date": expected a date dd/mm/yyyy, got "31/02/2025" (column 7, "Date") (on_error = "fail")`
	if err == nil || err.Error() != want {
		t.Errorf("fail:\n got %v\nwant %s", err, want)
	}
}

// TestBundle reads the generated academy's exports (examples/data/bundle):
// every record is read, none is dead-lettered, marks on /10 and /40 are
// normalised.
func TestBundle(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "data", "bundle", "pronote")
	for _, tt := range []struct {
		kind string
		rows int
	}{{"notes", 720}, {"absences", 567}} {
		t.Run(tt.kind, func(t *testing.T) {
			c, err := read(t, map[string]any{"path": filepath.Join(dir, tt.kind+".csv"), "kind": tt.kind})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.rows) != tt.rows || len(c.dead) != 0 {
				t.Fatalf("%d rows (want %d), dead letters %q", len(c.rows), tt.rows, deadStrings(c.dead))
			}
			for _, r := range c.rows {
				if tt.kind == "notes" && strings.HasPrefix(r, "S0003|") && strings.Contains(r, "|PHYSIQUE-CHIMIE|Trimestre 2|") {
					if want := "S0003|Da Silva|Mohamed|6eA|PHYSIQUE-CHIMIE|Trimestre 2|2026-03-08|8.3|ok|16.6|40|1|(null)"; r != want {
						t.Errorf("a /40 mark:\n got %s\nwant %s", r, want)
					}
				}
			}
		})
	}
}
