package pipelines_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// onerosterCSV reads a CSV output, the header left out, rows joined by "|".
func onerosterCSV(t *testing.T, path string) []string {
	t.Helper()
	recs := readback.CSV(t, path)
	var out []string
	for _, r := range recs[1:] {
		out = append(out, strings.Join(r, "|"))
	}
	return out
}

// TestOneRoster reads every table of the generated 1.2 bundle: every row
// of every file in the output, none dead-lettered, typed columns.
func TestOneRoster(t *testing.T) {
	out := filepath.Join("out", "oneroster")
	os.RemoveAll(out)
	t.Cleanup(func() { os.RemoveAll(out) })
	sum := pipelinetest.Run(t, "oneroster.toml")
	for _, table := range []string{"orgs", "academicSessions", "courses", "classes", "users", "roles", "enrollments", "categories", "lineItems", "results"} {
		data, err := os.ReadFile(filepath.Join("..", "data", "bundle", "oneroster", table+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		lines := int64(bytes.Count(data, []byte("\n")) - 1)
		st, _ := sum.Stage(map[string]string{"academicSessions": "academic_sessions", "lineItems": "line_items"}[table])
		if st.Name == "" {
			st, _ = sum.Stage(table)
		}
		if st.RowsOut != lines || st.DeadLettered != 0 {
			t.Errorf("%s: %d rows, %d dead letters; want %d, 0", table, st.RowsOut, st.DeadLettered, lines)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "dead_letter.csv")); !os.IsNotExist(err) {
		t.Errorf("a dead-letter file was written: %v", err)
	}
	fields, rows := readParquet(t, filepath.Join(out, "results.parquet"))
	if want := "sourcedId:utf8 status:utf8 dateLastModified:timestamp[us, tz=UTC] lineItemSourcedId:utf8 studentSourcedId:utf8 scoreStatus:utf8 score:float64 scoreDate:date32 comment:utf8"; strings.Join(fields, " ") != want {
		t.Errorf("results schema:\n got %s\nwant %s", strings.Join(fields, " "), want)
	}
	if want := "RS-S0001-maths-T1|active|2025-08-29T00:00:00Z|LI-0751020B-6eA-maths-T1|S0001|fully graded|16.5|2025-11-23|(null)"; rows[0] != want {
		t.Errorf("first result:\n got %s\nwant %s", rows[0], want)
	}
	fields, rows = readParquet(t, filepath.Join(out, "users.parquet"))
	if fields[3] != "enabledUser:bool" || len(fields) != 23 || !strings.HasPrefix(rows[0], "P0751020B-maths-1|active|2025-08-29T00:00:00Z|true|p0751020b-maths-1|") {
		t.Errorf("users: %v\n%s", fields, rows[0])
	}
	fields, _ = readParquet(t, filepath.Join(out, "academicSessions.parquet"))
	if fields[5] != "startDate:date32" || fields[8] != "schoolYear:int32" {
		t.Errorf("academicSessions: %v", fields)
	}
}

// TestOneRosterFixtures reads a 1.1 bundle from a zip and a 1.2 bundle with
// broken references, and checks the rows and the exact dead letters.
func TestOneRosterFixtures(t *testing.T) {
	out := filepath.Join("out", "oneroster_fixtures")
	os.RemoveAll(out)
	t.Cleanup(func() { os.RemoveAll(out) })
	sum := pipelinetest.Run(t, "oneroster_fixtures.toml")
	const t0 = "2025-08-29 08:00:00Z" // as the csv_file sink writes timestamps
	for name, want := range map[string][]string{
		"v11_users": {
			"U-T1|active|" + t0 + "|true|0750001A|teacher|mdupont||Marie|Dupont|||marie.dupont@example.fr|||||",
			"U-S1|active|" + t0 + "|true|0750001A|student|lmartin||Léo|Martin||INE001|||||10|",
			"U-S2|active|" + t0 + "|false|0750001A|student|abernard||Ana|Bernard||INE002|||||10|",
		},
		"v11_results": {
			"R1|active|2025-10-09 16:30:00Z|LI1|U-S1|fully graded|14.5|2025-10-08|",
			"R2|active|2025-10-09 16:30:00Z|LI1|U-S2|not submitted||2025-10-08|Abs",
		},
		"broken_enrollments": {
			"E1|active|" + t0 + "|K-2A-MATHS|0750001A|U-T1|teacher|true|2025-09-01|2026-07-04",
			"E2|active|" + t0 + "|K-2A-MATHS|0750001A|U-S1|student|false|2025-09-01|",
			"E3|active|" + t0 + "|K-2A-MATHS|0750001A|U-S2|student|false|2025-09-01|",
			"E7|tobedeleted|" + t0 + "|K-OLD|0750001A|U-OLD|student|||",
		},
	} {
		got := onerosterCSV(t, filepath.Join(out, name+".csv"))
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
	for name, want := range map[string][2]int64{
		"v11_users": {3, 0}, "v11_enrollments": {3, 0}, "v11_results": {2, 0},
		"broken_classes": {1, 2}, "broken_enrollments": {4, 6}, "broken_results": {2, 3},
	} {
		if st, _ := sum.Stage(name); st.RowsOut != want[0] || st.DeadLettered != want[1] {
			t.Errorf("%s: %d rows, %d dead letters; want %d and %d", name, st.RowsOut, st.DeadLettered, want[0], want[1])
		}
	}
	wd, _ := os.Getwd()
	var dead []string
	for _, r := range readback.CSV(t, filepath.Join(out, "dead_letter.csv"))[1:] {
		origin, _ := filepath.Rel(wd, r[1])
		dead = append(dead, strings.Join([]string{r[0], filepath.ToSlash(origin), r[2], r[3], r[4]}, "|"))
	}
	b := "testdata/oneroster/broken/"
	want := []string{
		"broken_classes|" + b + `classes.csv|3|courseSourcedId|unknown course "C-NONE": courseSourcedId names no sourcedId of courses.csv`,
		"broken_classes|" + b + `classes.csv|4|schoolSourcedId|unknown org "9999999Z": schoolSourcedId names no sourcedId of orgs.csv; unknown academic session "T9": termSourcedIds names no sourcedId of academicSessions.csv`,
		"broken_enrollments|" + b + `enrollments.csv|5|userSourcedId|unknown user "U-GHOST": userSourcedId names no sourcedId of users.csv`,
		"broken_enrollments|" + b + `enrollments.csv|6|classSourcedId|unknown class "K-NONE": classSourcedId names no sourcedId of classes.csv`,
		"broken_enrollments|" + b + `enrollments.csv|7|userSourcedId|empty userSourcedId, which OneRoster requires`,
		"broken_enrollments|" + b + `enrollments.csv|8|sourcedId|duplicate sourcedId "E2" (first at line 3)`,
		"broken_enrollments|" + b + `enrollments.csv|10|beginDate|expected a date yyyy-mm-dd, got "01/09/2025"`,
		"broken_enrollments|" + b + `enrollments.csv|11||expected 10 fields as in the header, got 6`,
		"broken_results|" + b + `results.csv|4|lineItemSourcedId|unknown line item "LI-NONE": lineItemSourcedId names no sourcedId of lineItems.csv`,
		"broken_results|" + b + `results.csv|5|studentSourcedId|unknown user "U-NOBODY": studentSourcedId names no sourcedId of users.csv`,
		"broken_results|" + b + `results.csv|6|score|expected a number, got "douze"`,
	}
	// Stages run concurrently: order by stage, each stage's in file order.
	slices.SortStableFunc(dead, func(a, b string) int {
		return strings.Compare(strings.SplitN(a, "|", 2)[0], strings.SplitN(b, "|", 2)[0])
	})
	if !slices.Equal(dead, want) {
		t.Errorf("dead letters:\n%s\nwant\n%s", strings.Join(dead, "\n"), strings.Join(want, "\n"))
	}
}
