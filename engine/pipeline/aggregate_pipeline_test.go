package pipeline_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/config"
)

const aggregateToml = `
[pipeline]
name = "a"
batch_rows = 3

[[source]]
name = "results"
connector = "csv"
[source.options]
path = "results.csv"

[[aggregate]]
name = "weekly"
input = "results"
group_by = ["school"]
time_column = "date"
window = "week"
measures = ["n = count()", "mean_score = mean(score)", "top = max(score)"]
%s

[[sink]]
name = "out"
input = "weekly"
connector = "text"
`

func TestAggregateStageInAPipeline(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"results.csv": "student,school,date,score\n" +
			"S1,X,2026-09-07,10\nS2,X,2026-09-08,20\nS3,Y,2026-09-09,5\n" +
			"S1,X,2026-09-14,30\nS4,Y,2026-09-13,7\n",
	})
	for _, tc := range []struct {
		name, extra string
		want        []string
	}{
		{"no suppression", "min_count = 0", []string{
			"school=X window_start=2026-09-07 window_end=2026-09-14 n=2 mean_score=15 top=20",
			"school=Y window_start=2026-09-07 window_end=2026-09-14 n=2 mean_score=6 top=7",
			"school=X window_start=2026-09-14 window_end=2026-09-21 n=1 mean_score=30 top=30",
		}},
		{"suppressed", "min_count = 2\nsubject = \"student\"", []string{
			"school=X window_start=2026-09-07 window_end=2026-09-14 n=2 mean_score=15 top=20 suppressed=false",
			"school=Y window_start=2026-09-07 window_end=2026-09-14 n=2 mean_score=6 top=7 suppressed=false",
			"school=X window_start=2026-09-14 window_end=2026-09-21 n=(null) mean_score=(null) top=(null) suppressed=true",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := runText(t, dir, fmt.Sprintf(aggregateToml, tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got.rows, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got.rows, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestAggregateStageConfigErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"results.csv": "student,school,date,score\nS1,X,2026-09-07,10\n"})
	for _, tc := range []struct{ name, extra, want string }{
		{"subject required", "", "min_count = 11"},
		{"unknown subject", "subject = \"pupil\"", `column "pupil" is not in the output of "results"`},
		{"bad measure", "min_count = 0\nmeasures = [\"n = counts()\"]", `unknown operation "counts"`},
		{"suppress_over not a key", "subject = \"student\"\nsuppress_over = [\"date\"]", `"date" is not a group_by column`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toml := fmt.Sprintf(aggregateToml, tc.extra)
			if strings.Contains(tc.extra, "measures") {
				toml = strings.Replace(toml, "measures = [\"n = count()\", \"mean_score = mean(score)\", \"top = max(score)\"]\n", "", 1)
			}
			_, _, err := runTextErr(t, dir, toml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// runTextErr is runText returning the pipeline file's errors too.
func runTextErr(t *testing.T, dir, toml string) (*textRows, string, error) {
	t.Helper()
	if _, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(toml)); err != nil {
		return nil, "", err
	}
	return runText(t, dir, toml)
}

func TestAggregateTimezone(t *testing.T) {
	// 01:00 on Monday 14 September in Paris is 23:00 on Sunday in UTC.
	dir := writeFiles(t, map[string]string{"log.csv": "at,n\n2026-09-14T01:00:00+02:00,1\n"})
	const toml = `
[pipeline]
name = "tz"
[[source]]
name = "log"
connector = "csv"
[source.options]
path = "log.csv"
columns = { at = "timestamp_us", n = "int64" }
[[aggregate]]
name = "weekly"
input = "log"
time_column = "at"
window = "week"
measures = ["n = sum(n)"]
min_count = 0
%s
[[sink]]
name = "out"
input = "weekly"
connector = "text"
`
	for _, tc := range []struct{ extra, want string }{
		{"", "window_start=2026-09-07 window_end=2026-09-14 n=1"},
		{`timezone = "Europe/Paris"`, "window_start=2026-09-14 window_end=2026-09-21 n=1"},
	} {
		got, _, err := runText(t, dir, fmt.Sprintf(toml, tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.rows) != 1 || got.rows[0] != tc.want {
			t.Errorf("%q: got %q, want %q", tc.extra, got.rows, tc.want)
		}
	}
	if _, _, err := runTextErr(t, dir, fmt.Sprintf(toml, `timezone = "Paris"`)); err == nil || !strings.Contains(err.Error(), "not a time zone") {
		t.Errorf("bad timezone: %v", err)
	}
}

func TestAggregateWindowConfig(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"results.csv":  "student,school,date,score\nS1,X,2026-10-16,10\nS2,X,2026-10-20,12\nS3,X,2026-11-02,14\n",
		"calendar.csv": "date,half_days\n2026-10-16,2\n2026-10-17,0\n2026-10-19,0\n2026-10-20,0\n2026-11-02,2\n",
	})
	window := func(s string) string {
		return strings.Replace(fmt.Sprintf(aggregateToml, "min_count = 0"), `window = "week"`, s, 1)
	}
	for _, tc := range []struct{ name, window, want string }{
		{"unknown window", `window = "fortnight"`, `invalid value "fortnight"`},
		{"fraction of a second", `window = "1500ms"`, "whole seconds"},
		{"month slides", "window = \"month\"\nslide = \"day\"", "only day, week and duration windows slide"},
		{"week slides by a day", "window = \"week\"\nslide = \"2d\"", `a week window slides by "day"`},
		{"slide divides the window", "window = \"1h\"\nslide = \"25m\"", "dividing the window"},
		{"school week needs a calendar", `window = "school_week"`, "needs the school calendar"},
		{"calendar without school weeks", "window = \"week\"\ncalendar = \"calendar.csv\"", "read by school_week windows only"},
		{"calendar missing", "window = \"school_week\"\ncalendar = \"nope.csv\"", "read the school calendar"},
		{"cumulative slides", "window = \"week\"\nslide = \"day\"\ncumulative = true", "cumulative windows expand a tumbling window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runTextErr(t, dir, window(tc.window))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// The week of 19 October has no school day: its row goes to the dead
	// letters and the weeks around it are numbered 1 and 2.
	got, _, err := runText(t, dir, window("window = \"school_week\"\ncalendar = \"calendar.csv\""))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"school=X window_start=2026-10-12 window_end=2026-10-19 school_week=1 n=1 mean_score=10 top=10",
		"school=X window_start=2026-11-02 window_end=2026-11-09 school_week=2 n=1 mean_score=14 top=14",
	}
	if !slices.Equal(got.rows, want) {
		t.Errorf("got %q, want %q", got.rows, want)
	}
	dead, err := os.ReadFile(filepath.Join(dir, "out", "a.dead_letter.csv"))
	if err != nil || !strings.Contains(string(dead), "not in a school week") || !strings.Contains(string(dead), "S2") {
		t.Errorf("dead letters %q (%v), want the row of 20 October", dead, err)
	}
}
