package pipelines_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

// TestRealdataUCI reads both UCI Student Performance files (395 maths and
// 649 Portuguese students) through one glob and checks types and values.
func TestRealdataUCI(t *testing.T) {
	toml := sandbox(t, "realdata_uci.toml", "realdata/uci-student-performance")
	sum := pipelinetest.Run(t, toml)
	st, _ := sum.Stage("students")
	if st.RowsOut != 395+649 || st.DeadLettered != 0 {
		t.Errorf("students: %d rows out, %d dead-lettered; want %d and 0", st.RowsOut, st.DeadLettered, 395+649)
	}
	tb := csvxReadParquet(t, filepath.Join(filepath.Dir(toml), "out", "uci_students.parquet"))
	if tb.rows() != 1044 || len(tb.schema.Fields()) != 33 {
		t.Fatalf("%d rows and %d columns, want 1044 and 33", tb.rows(), len(tb.schema.Fields()))
	}
	// G1 and G2 are quoted in the files ("5"), G3 and absences are not:
	// all are integers.
	for _, col := range []string{"age", "absences", "G1", "G2", "G3", "failures"} {
		if got := tb.typeOf(t, col); got != "int64" {
			t.Errorf("column %s is %s, want int64", col, got)
		}
		if tb.nulls[col] != 0 {
			t.Errorf("column %s has %d nulls", col, tb.nulls[col])
		}
	}
	for _, col := range []string{"school", "sex", "Mjob", "higher"} {
		if got := tb.typeOf(t, col); got != "utf8" {
			t.Errorf("column %s is %s, want utf8", col, got)
		}
	}
	// The first maths student: "GP","F",18,... absences 6, G1 "5", G2 "6", G3 6.
	// The first Portuguese student (row 396): absences 4, G1 "0", G2 "11", G3 11.
	for _, c := range []struct {
		row  int
		col  string
		want string
	}{
		{0, "school", "GP"}, {0, "age", "18"}, {0, "absences", "6"}, {0, "G1", "5"}, {0, "G2", "6"}, {0, "G3", "6"},
		{395, "absences", "4"}, {395, "G1", "0"}, {395, "G2", "11"}, {395, "G3", "11"},
	} {
		if got := tb.cols[c.col][c.row]; got != c.want {
			t.Errorf("row %d %s = %s, want %s", c.row, c.col, got, c.want)
		}
	}
	// Grades are on /20.
	sum3, fails := 0, 0
	for _, s := range tb.cols["G3"] {
		g, _ := strconv.Atoi(s)
		if g < 0 || g > 20 {
			t.Errorf("G3 = %d, out of 0-20", g)
		}
		if g < 10 {
			fails++
		}
		sum3 += g
	}
	t.Logf("UCI: 1044 students, mean G3 %.2f, %d below 10", float64(sum3)/1044, fails)
}
