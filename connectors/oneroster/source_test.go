package oneroster_test

import (
	"archive/zip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/oneroster"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

var fixtures = filepath.Join("..", "..", "examples", "pipelines", "testdata", "oneroster")

func fixture(name string) string { return filepath.Join(fixtures, name) }

// generated is the academy generator's OneRoster 1.2 bundle.
var generated = filepath.Join("..", "..", "examples", "data", "bundle", "oneroster")

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
	err := oneroster.Source{}.Read(context.Background(), protocol.Config{Connector: oneroster.Name, BatchRows: 5, Options: opts}, mem, c)
	return c, err
}

func deadStrings(d []protocol.DeadLetter) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = x.String()
	}
	return out
}

const t0 = "2025-08-29T08:00:00Z"

var (
	enrollments = []string{
		"E1|active|" + t0 + "|K-2A-MATHS|0750001A|U-T1|teacher|true|2025-09-01|2026-07-04",
		"E2|active|" + t0 + "|K-2A-MATHS|0750001A|U-S1|student|false|2025-09-01|(null)",
		"E3|active|" + t0 + "|K-2A-MATHS|0750001A|U-S2|student|false|2025-09-01|(null)",
	}
	users11 = []string{
		"U-T1|active|" + t0 + "|true|0750001A|teacher|mdupont|(null)|Marie|Dupont|(null)|(null)|marie.dupont@example.fr|(null)|(null)|(null)|(null)|(null)",
		"U-S1|active|" + t0 + "|true|0750001A|student|lmartin|(null)|Léo|Martin|(null)|INE001|(null)|(null)|(null)|(null)|10|(null)",
		"U-S2|active|" + t0 + "|false|0750001A|student|abernard|(null)|Ana|Bernard|(null)|INE002|(null)|(null)|(null)|(null)|10|(null)",
	}
	users12 = []string{
		"U-T1|active|" + t0 + "|true|mdupont|(null)|Marie|Dupont|(null)|(null)|marie.dupont@example.fr|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|0750001A|(null)",
		"U-S1|active|" + t0 + "|true|lmartin|(null)|Léo|Martin|(null)|INE001|(null)|(null)|(null)|(null)|10|(null)|(null)|(null)|Léon|(null)|(null)|0750001A|il",
		"U-S2|active|" + t0 + "|false|abernard|(null)|Ana|Bernard|(null)|INE002|(null)|(null)|(null)|U-T1|10|(null)|(null)|(null)|(null)|(null)|(null)|0750001A|(null)",
	}
	results = []string{
		"R1|active|2025-10-09T16:30:00Z|LI1|U-S1|fully graded|14.5|2025-10-08|(null)",
		"R2|active|2025-10-09T16:30:00Z|LI1|U-S2|not submitted|(null)|2025-10-08|Abs",
	}
	roles = []string{
		"RL-T1|active|" + t0 + "|U-T1|primary|teacher|2025-09-01|2026-07-04|0750001A|(null)",
		"RL-S1|active|" + t0 + "|U-S1|primary|student|2025-09-01|(null)|0750001A|(null)",
		"RL-S2|active|" + t0 + "|U-S2|primary|student|2025-09-01|(null)|0750001A|(null)",
	}
)

func TestConformance(t *testing.T) {
	bad := []conformance.BadCase{
		{Options: map[string]any{"path": fixture("v11")}, Want: `option "table": required option is missing`},
		{Options: map[string]any{"path": fixture("v11"), "table": "user"}, Want: `"user" is not one of`},
		{Options: map[string]any{"path": fixture("v11"), "table": "roles"}, Want: `table "roles" is not in OneRoster 1.1`},
		{Options: map[string]any{"path": fixture("nowhere"), "table": "users"}, Want: "nowhere"},
		{Options: map[string]any{"path": fixture("v11/users.csv"), "table": "users"}, Want: "not a folder nor a readable zip archive"},
		{Options: map[string]any{"path": fixtures, "table": "users"}, Want: "several bundles below it (broken, v11, v12)"},
		{Options: map[string]any{"path": filepath.Join(fixtures, ".."), "table": "users"}, Want: "no manifest.csv"},
	}
	cases := map[string]conformance.SourceCase{
		"1.1 folder users":      {Options: map[string]any{"path": fixture("v11"), "table": "users"}, WantRows: users11, Bad: bad, BatchRows: 2},
		"1.1 zip enrollments":   {Options: map[string]any{"path": fixture("v11.zip"), "table": "enrollments"}, WantRows: enrollments, BatchRows: 2},
		"1.2 folder users":      {Options: map[string]any{"path": fixture("v12"), "table": "users"}, WantRows: users12},
		"1.2 roles":             {Options: map[string]any{"path": fixture("v12"), "table": "roles"}, WantRows: roles, BatchRows: 1},
		"1.2 results":           {Options: map[string]any{"path": fixture("v12"), "table": "results"}, WantRows: results},
		"broken enrollments":    {Options: map[string]any{"path": fixture("broken"), "table": "enrollments"}, WantRows: append(slices.Clone(enrollments), "E7|tobedeleted|"+t0+"|K-OLD|0750001A|U-OLD|student|(null)|(null)|(null)"), BatchRows: 2},
		"generated results":     {Options: map[string]any{"path": generated, "table": "results"}, BatchRows: 100},
		"generated enrollments": {Options: map[string]any{"path": generated, "table": "enrollments"}, BatchRows: 100},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, oneroster.Source{}, c) })
			t.Run("over gRPC", func(t *testing.T) {
				conformance.TestSource(t, conformance.ThroughPlugin(t, oneroster.Source{}).(protocol.Source), c)
			})
		})
	}
}

// TestBrokenReferences checks the exact dead letters of the broken bundle.
func TestBrokenReferences(t *testing.T) {
	b := fixture("broken")
	at := func(file string) string { return filepath.Join(b, file) }
	want := map[string][]string{
		"classes": {
			at("classes.csv") + `:3: column "courseSourcedId": unknown course "C-NONE": courseSourcedId names no sourcedId of courses.csv`,
			at("classes.csv") + `:4: column "schoolSourcedId": unknown org "9999999Z": schoolSourcedId names no sourcedId of orgs.csv; unknown academic session "T9": termSourcedIds names no sourcedId of academicSessions.csv`,
		},
		"users": {at("users.csv") + `:5: column "enabledUser": expected true or false, got "peut-être"`},
		"roles": {at("roles.csv") + `:5: column "beginDate": expected a date yyyy-mm-dd, got "2025-13-01"`},
		"enrollments": {
			at("enrollments.csv") + `:5: column "userSourcedId": unknown user "U-GHOST": userSourcedId names no sourcedId of users.csv`,
			at("enrollments.csv") + `:6: column "classSourcedId": unknown class "K-NONE": classSourcedId names no sourcedId of classes.csv`,
			at("enrollments.csv") + `:7: column "userSourcedId": empty userSourcedId, which OneRoster requires`,
			at("enrollments.csv") + `:8: column "sourcedId": duplicate sourcedId "E2" (first at line 3)`,
			at("enrollments.csv") + `:10: column "beginDate": expected a date yyyy-mm-dd, got "01/09/2025"`,
			at("enrollments.csv") + `:11: expected 10 fields as in the header, got 6`,
		},
		"results": {
			at("results.csv") + `:4: column "lineItemSourcedId": unknown line item "LI-NONE": lineItemSourcedId names no sourcedId of lineItems.csv`,
			at("results.csv") + `:5: column "studentSourcedId": unknown user "U-NOBODY": studentSourcedId names no sourcedId of users.csv`,
			at("results.csv") + `:6: column "score": expected a number, got "douze"`,
		},
	}
	for _, table := range oneroster.Tables {
		t.Run(table, func(t *testing.T) {
			c, err := read(t, map[string]any{"path": b, "table": table})
			if err != nil {
				t.Fatal(err)
			}
			if got := deadStrings(c.dead); !slices.Equal(got, want[table]) {
				t.Errorf("dead letters:\n got %q\nwant %q", got, want[table])
			}
		})
	}
	t.Run("raw", func(t *testing.T) {
		c, _ := read(t, map[string]any{"path": b, "table": "enrollments"})
		if want := "E4,active," + t0 + ",K-2A-MATHS,0750001A,U-GHOST,student,false,2025-09-01,"; c.dead[0].Raw != want {
			t.Errorf("raw = %q, want %q", c.dead[0].Raw, want)
		}
	})
	t.Run("check_references = false", func(t *testing.T) {
		c, _ := read(t, map[string]any{"path": b, "table": "results", "check_references": false})
		if len(c.rows) != 4 || len(c.dead) != 1 {
			t.Errorf("%d rows, dead letters %q; want 4 rows and the bad score", len(c.rows), deadStrings(c.dead))
		}
	})
	t.Run("on_error = fail", func(t *testing.T) {
		_, err := read(t, map[string]any{"path": b, "table": "enrollments", "on_error": "fail"})
		want := at("enrollments.csv") + `:5:52: column "userSourcedId": unknown user "U-GHOST": userSourcedId names no sourcedId of users.csv (on_error = "fail")`
		if err == nil || err.Error() != want {
			t.Errorf("got %v\nwant %s", err, want)
		}
	})
}

// TestGenerated reads every table of the academy generator's bundle: every
// row read, none dead-lettered.
func TestGenerated(t *testing.T) {
	for _, table := range oneroster.Tables {
		t.Run(table, func(t *testing.T) {
			c, err := read(t, map[string]any{"path": generated, "table": table})
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(generated, table+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Count(string(data), "\n") - 1
			if len(c.rows) != lines || len(c.dead) != 0 {
				t.Errorf("%d rows of %d, dead letters %q", len(c.rows), lines, deadStrings(c.dead))
			}
		})
	}
}

// writeBundle writes files (name -> content) as a folder and as a zip.
func writeBundle(t *testing.T, files map[string]string) (dir, zipPath string) {
	t.Helper()
	dir = t.TempDir()
	zipPath = filepath.Join(dir, "bundle.zip")
	zf, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(zf)
	folder := filepath.Join(dir, "bundle")
	os.Mkdir(folder, 0o755)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(folder, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(name)
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zf.Close()
	return folder, zipPath
}

// TestManifest checks that absent, bulk and delta are honoured, and that a
// zip reads as its folder.
func TestManifest(t *testing.T) {
	enr := "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n" +
		"E1,active,2025-09-02T10:00:00+02:00,K1,S1,U1,student,false,2025-09-01,\n" +
		"E0,tobedeleted,2025-09-02T10:00:00Z,,,,,,,\n"
	folder, zipped := writeBundle(t, map[string]string{
		"manifest.csv":    "propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\nfile.enrollments,delta\nfile.users,absent\nfile.classes,absent\nfile.orgs,absent\nfile.results,bulk\n",
		"enrollments.csv": "\ufeff" + enr,
		"users.csv":       "sourcedId\nU-IGNORED\n",
	})
	for _, path := range []string{folder, zipped} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c, err := read(t, map[string]any{"path": path, "table": "enrollments"})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"E1|active|2025-09-02T08:00:00Z|K1|S1|U1|student|false|2025-09-01|(null)",
				"E0|tobedeleted|2025-09-02T10:00:00Z|(null)|(null)|(null)|(null)|(null)|(null)|(null)",
			}
			if !slices.Equal(c.rows, want) || len(c.dead) != 0 {
				t.Errorf("delta enrollments (references into absent tables not checked):\n got %q %q\nwant %q", c.rows, deadStrings(c.dead), want)
			}
			c, err = read(t, map[string]any{"path": path, "table": "users"})
			if err != nil || len(c.rows) != 0 {
				t.Errorf("an absent table gives no rows: %q, %v", c.rows, err)
			}
			_, err = read(t, map[string]any{"path": path, "table": "results"})
			if !errors.Is(err, protocol.ErrNotFound) || !strings.Contains(err.Error(), "manifest says file.results is bulk") {
				t.Errorf("a bulk table without its file: %v", err)
			}
		})
	}
	t.Run("bad manifests", func(t *testing.T) {
		for name, tc := range map[string]struct{ manifest, want string }{
			"no version":  {"propertyName,value\nmanifest.version,1.0\n", "no oneroster.version property (expected 1.1 or 1.2)"},
			"1.0":         {"propertyName,value\noneroster.version,1.0\n", `manifest.csv:2: oneroster.version is "1.0", expected 1.1 or 1.2`},
			"bad mode":    {"propertyName,value\noneroster.version,1.1\nfile.users,full\n", `manifest.csv:3: file.users is "full", expected absent, bulk or delta`},
			"bad columns": {"propertyName;value\noneroster.version;1.1\n", "manifest.csv:1: expected two fields (propertyName,value), got 1"},
		} {
			t.Run(name, func(t *testing.T) {
				folder, _ := writeBundle(t, map[string]string{"manifest.csv": tc.manifest, "users.csv": "sourcedId\n"})
				_, err := read(t, map[string]any{"path": folder, "table": "users"})
				if !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got %v, want %q", err, tc.want)
				}
			})
		}
	})
	t.Run("missing required column", func(t *testing.T) {
		folder, _ := writeBundle(t, map[string]string{
			"manifest.csv":    "propertyName,value\noneroster.version,1.1\nfile.enrollments,bulk\n",
			"enrollments.csv": "sourcedId,classSourcedId,schoolSourcedId\nE1,K1,S1\n",
		})
		_, err := oneroster.Source{}.Schema(context.Background(), protocol.Config{Options: map[string]any{"path": folder, "table": "enrollments"}})
		if want := `enrollments.csv:1: no column "userSourcedId", which OneRoster 1.1 requires in enrollments.csv`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	})
}
