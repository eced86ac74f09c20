// Command gen writes the synthetic academy of examples/data: students,
// monthly attendance and term grades of about 600 students in two schools,
// plus attendance_dirty.csv, a few rows with deliberate faults for the
// dead-letter path. The output is deterministic (fixed PCG seed), so the
// committed files can be regenerated and compared.
//
//	go run ./examples/data/gen            # writes next to this folder
//	go run ./examples/data/gen -out DIR
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

func main() {
	out := flag.String("out", defaultDir(), "folder to write the CSV files to")
	flag.Parse()
	if err := generate(*out); err != nil {
		log.Fatal(err)
	}
}

// defaultDir is examples/data, the parent of this source file's folder.
func defaultDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Dir(filepath.Dir(file))
}

// Seed of the generator; change it and every file changes.
const seed1, seed2 = 2025, 9

// A school and the levels it teaches.
type school struct {
	id      string
	levels  []string
	classes int // classes per level
}

var schools = []school{
	{id: "0751001A", levels: []string{"6e", "5e", "4e", "3e"}, classes: 3}, // collège
	{id: "0752002B", levels: []string{"2nde", "1re", "Tle"}, classes: 4},   // lycée
}

// birthYear is the usual birth year for a level in 2025-2026.
var birthYear = map[string]int{"6e": 2014, "5e": 2013, "4e": 2012, "3e": 2011, "2nde": 2010, "1re": 2009, "Tle": 2008}

var subjects = []string{"maths", "francais", "histoire_geo", "anglais", "svt", "physique"}

var periods = []string{"T1", "T2", "T3"}

// student is a generated student and the hidden traits that drive the data.
type student struct {
	id, school, class, level string
	birthYear                int
	absence                  float64 // base share of half-days missed
	drift                    float64 // added to absence per month (drifting students)
	unjustified              float64 // share of absences without a reason
	ability                  float64 // mean mark
}

// profile kinds, for the absence model.
func newStudent(r *rand.Rand, n int, sc school, level, class string) student {
	s := student{
		id: fmt.Sprintf("S%04d", n), school: sc.id, class: class, level: level,
		birthYear:   birthYear[level],
		unjustified: 0.05 + 0.3*r.Float64(),
		ability:     clamp(12+3*r.NormFloat64(), 4, 19),
	}
	switch p := r.Float64(); {
	case p < 0.10: // chronic absence, 10 % to 25 %
		s.absence = 0.10 + 0.15*r.Float64()
		s.unjustified += 0.3
		s.ability -= 1.5
	case p < 0.13: // drifting: starts low, ends high
		s.absence = 0.01 + 0.02*r.Float64()
		s.drift = 0.015 + 0.01*r.Float64()
	case p < 0.25: // between the two
		s.absence = 0.05 + 0.05*r.Float64()
	default: // most students
		s.absence = 0.05 * r.Float64() * r.Float64()
	}
	switch p := r.Float64(); {
	case p < 0.08:
		s.birthYear-- // repeated a year
	case p < 0.10:
		s.birthYear++ // skipped a year
	}
	return s
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// holidays of the 2025-2026 school year (zone C, approximate), first and
// last day off, inclusive.
var holidays = [][2]string{
	{"2025-10-18", "2025-11-02"}, // Toussaint
	{"2025-11-11", "2025-11-11"}, // Armistice
	{"2025-12-20", "2026-01-04"}, // Noël
	{"2026-02-21", "2026-03-08"}, // hiver
	{"2026-04-06", "2026-04-06"}, // lundi de Pâques
	{"2026-04-18", "2026-05-03"}, // printemps
	{"2026-05-08", "2026-05-08"}, // Victoire 1945
	{"2026-05-14", "2026-05-15"}, // Ascension and its bridge
	{"2026-05-25", "2026-05-25"}, // Pentecôte
}

// months of the school year, September to June.
func months() []time.Time {
	out := make([]time.Time, 10)
	for i := range out {
		out[i] = time.Date(2025, time.September+time.Month(i), 1, 0, 0, 0, 0, time.UTC)
	}
	return out
}

// halfDays counts the school half-days of a month: two a day Monday to
// Friday, one on Wednesday (no lessons in the afternoon), none on holidays.
func halfDays(month time.Time) int {
	n := 0
	for d := month; d.Month() == month.Month(); d = d.AddDate(0, 0, 1) {
		switch day := d.Format(time.DateOnly); {
		case d.Weekday() == time.Saturday || d.Weekday() == time.Sunday, isHoliday(day):
		case d.Weekday() == time.Wednesday:
			n++
		default:
			n += 2
		}
	}
	return n
}

func isHoliday(day string) bool {
	for _, h := range holidays {
		if day >= h[0] && day <= h[1] {
			return true
		}
	}
	return false
}

// binomial draws the number of successes in n trials of probability p.
func binomial(r *rand.Rand, n int, p float64) int {
	k := 0
	for range n {
		if r.Float64() < p {
			k++
		}
	}
	return k
}

// generate writes every file to dir.
func generate(dir string) error {
	r := rand.New(rand.NewPCG(seed1, seed2))
	var students []student
	for _, sc := range schools {
		for _, level := range sc.levels {
			for c := range sc.classes {
				class := fmt.Sprintf("%s-%s%c", sc.id, level, 'A'+c)
				for range 22 + r.IntN(7) {
					students = append(students, newStudent(r, len(students)+1, sc, level, class))
				}
			}
		}
	}

	rows := [][]string{{"student_id", "school_id", "class_id", "level", "birth_year"}}
	for _, s := range students {
		rows = append(rows, []string{s.id, s.school, s.class, s.level, strconv.Itoa(s.birthYear)})
	}
	if err := writeCSV(filepath.Join(dir, "students.csv"), rows); err != nil {
		return err
	}

	header := []string{"student_id", "class_id", "month", "half_days", "absent_half_days", "unjustified_half_days"}
	rows = [][]string{header}
	monthRate := make(map[string][]float64, len(students)) // per student, per month
	for _, s := range students {
		for i, m := range months() {
			hd := halfDays(m)
			rate := clamp(s.absence+s.drift*float64(i)+0.01*r.NormFloat64(), 0, 0.6)
			absent := binomial(r, hd, rate)
			unjust := binomial(r, absent, s.unjustified)
			monthRate[s.id] = append(monthRate[s.id], float64(absent)/float64(hd))
			rows = append(rows, []string{s.id, s.class, m.Format("2006-01"),
				strconv.Itoa(hd), strconv.Itoa(absent), strconv.Itoa(unjust)})
		}
	}
	if err := writeCSV(filepath.Join(dir, "attendance.csv"), rows); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "attendance_dirty.csv"), dirty(header, rows[1:13])); err != nil {
		return err
	}

	rows = [][]string{{"student_id", "subject", "period", "mark"}}
	offset := make([]float64, len(subjects))
	for i := range offset {
		offset[i] = r.NormFloat64()
	}
	for _, s := range students {
		for si, subject := range subjects {
			for p, period := range periods {
				// Marks fall for students whose absences grow.
				trend := -s.drift * 60 * float64(p)
				// A term's absence makes a missed test likelier.
				missed := 0.02 + monthRate[s.id][min(3*p+1, 9)]
				mark := ""
				if r.Float64() >= missed {
					m := clamp(s.ability+offset[si]+trend+2*r.NormFloat64(), 0, 20)
					mark = strconv.FormatFloat(math.Round(m*10)/10, 'f', 1, 64)
				}
				rows = append(rows, []string{s.id, subject, period, mark})
			}
		}
	}
	return writeCSV(filepath.Join(dir, "grades.csv"), rows)
}

// dirty returns good rows of attendance with faulty rows among them. The
// faults and their lines are listed in README.md.
func dirty(header []string, good [][]string) [][]string {
	bad := func(row []string, col int, v string) []string {
		row = append([]string(nil), row...)
		row[col] = v
		return row
	}
	return [][]string{
		header,                 // line 1
		good[0],                // 2
		good[1],                // 3
		bad(good[2], 4, "abc"), // 4: absent_half_days is not a number
		good[3],                // 5
		good[4][:5],            // 6: a field is missing
		bad(good[5], 1, "note:\nclass changed in October"), // 7-8: quoted, multi-line: fine
		good[6],                 // 9
		bad(good[7], 3, "35.5"), // 10: half_days is not an integer
		append(append([]string(nil), good[8]...), "extra"), // 11: one field too many
		good[9],                // 12
		bad(good[10], 5, "NA"), // 13: a null, not an error
		good[11],               // 14
	}
}

// writeCSV writes rows to path.
func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
