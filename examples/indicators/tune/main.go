// Command tune is a fast harness for tuning the early-warning pack on an
// academy written by vigie gen: it reads absences.csv, grades.csv,
// activity.csv (student_id,date, one row per platform session, see
// docs/indicators.md) and ground_truth.csv, runs indicators.Config.Evaluate
// natively on each student (what the early_warning rule does inside the
// pipeline) and counts quality with `vigie eval --alerts`'s counter
// (package evaluation). It is for
// tuning only: report figures from the real pipeline and `vigie eval`.
//
//	go run ./examples/indicators/tune --dir /dev/shm/ac1 --students 20000 --set raise_at=0.6,w_abs_trend=0.8
//
// --grid runs several settings separated by ';' over the same data.
//
// --ceiling runs instead the oracle of ceiling.go, the detector that knows
// the generator's model (--marks, --platform: it reads those too), and
// prints its curve, counted the same way:
//
//	go run ./examples/indicators/tune --dir /dev/shm/ac2 --students 100000 --ceiling --marks --platform
//
// --curve out.svg draws the precision–recall curve of the --set setting
// over the thresholds of --sweep (with --ceiling, the oracle's beside it)
// and prints both as tables; --calibration prints the reliability of
// drift_chance by tenth, the Brier score and the calib_points an isotonic
// fit on the academy gives (--dir a,b counts several academies as one):
//
//	go run ./examples/indicators/tune --dir /dev/shm/ac3 --students 20000 --ceiling --marks --platform --curve pr.svg
//	go run ./examples/indicators/tune --dir /dev/shm/ac1,/dev/shm/ac2 --students 20000 --calibration
package main

import (
	"bufio"
	"encoding/csv"
	"encoding/gob"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/vigie-edu/vigie/evaluation"
	"github.com/vigie-edu/vigie/indicators"
)

// grace and months are vigie eval's defaults: an alert stays true 30 days
// after a recovering drift's end; false alerts are per month of a 10-month
// school year.
const (
	grace  = 30
	months = 10
)

type student struct {
	ID     string
	Events []indicators.Event
	// Ground truth, and what the oracle of ceiling.go reads of it: alerts
	// opened in [TrueFrom, TrueTo) are true (Truth.Window), Out is the
	// dropout day (MaxInt32 if none).
	Truth            evaluation.Truth
	Drifts           bool
	TrueFrom, TrueTo int32
	Dropout          bool
	Out              int32
	Signals          string
	Track            string
	// Half-days (day*2, +1 for PM) of the absences as first recorded:
	// unjustified (a later correction does not change them) and justified.
	// Late lists the unjustified ones recorded as late arrivals (retard).
	// The oracle of ceiling.go reads them.
	Unj, Late, Jus []int32
}

func main() {
	dir := flag.String("dir", "", "academy folder (vigie gen --format csv,xapi, plus activity.csv); several, comma-separated, are counted as one")
	n := flag.Int("students", 20000, "first N students")
	set := flag.String("set", "", "params, k=v,k=v")
	grid := flag.String("grid", "", "several --set values separated by ';'")
	miss := flag.Bool("miss", false, "print a breakdown of missed dropouts and false alerts")
	oracle := flag.Bool("ceiling", false, "run the oracle of the generator's absences (ceiling.go) instead of the pack")
	marks := flag.Bool("marks", false, "with --ceiling: the oracle reads the T1 and T2 marks too")
	platform := flag.Bool("platform", false, "with --ceiling: the oracle reads the platform sessions too")
	window := flag.Bool("window", false, "with --ceiling: threshold the posterior of a drift an alert would be true for (started, not yet left or ended 30 days ago), not of a drift started")
	curve := flag.String("curve", "", "write the precision–recall curve of the --set setting (and with --ceiling the oracle's) to this SVG file, over the thresholds of --sweep, and print it as tables")
	sweep := flag.String("sweep", "0.3,0.4,0.5,0.6,0.7,0.8,0.9", "with --curve: thresholds (raise_at; drift_min too when ABS_DRIFT is on; clear_below half)")
	calib := flag.Bool("calibration", false, "print the reliability of the risk by decile and the Brier score (each student's risk on every school day against a drift started)")
	flag.Parse()
	var studs []student
	for _, d := range strings.Split(*dir, ",") { // several academies: counted as one
		st, err := load(d, *n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		studs = append(studs, st...)
	}
	if *curve != "" {
		if err := curves(studs, *set, *sweep, *curve, *oracle, *marks, *platform); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *calib {
		c, err := configOf(*set)
		if err == nil {
			err = calibrationReport(os.Stdout, c, studs)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *oracle {
		if err := ceiling(studs, *marks, *platform, *window, *miss); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	sets := []string{*set}
	if *grid != "" {
		sets = strings.Split(*grid, ";")
	}
	for _, s := range sets {
		c, err := configOf(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%-60s %s\n", s, evaluate(c, studs, *miss))
	}
}

// curves runs --curve.
func curves(studs []student, set, sweep, out string, oracle, marks, platform bool) error {
	ps, err := parseSweep(sweep)
	if err != nil {
		return err
	}
	all := map[string][]point{}
	if oracle {
		var pts []point
		ceilingCurve = &pts
		if err := ceiling(studs, marks, platform, false, false); err != nil {
			return err
		}
		ceilingCurve = nil
		all["ceiling (oracle)"] = pts
		printCurve(os.Stdout, "ceiling (oracle, alerts re-armed)", pts)
	}
	pack, err := packCurve(set, studs, ps)
	if err != nil {
		return err
	}
	all["the pack"] = pack
	printCurve(os.Stdout, "the pack ("+set+")", pack)
	return writeSVG(out, fmt.Sprintf("precision–recall, %d students", len(studs)), all)
}

// evaluate runs the pack on every student and counts its quality.
func evaluate(c *indicators.Config, studs []student, miss bool) quality {
	res := make([]indicators.Result, len(studs))
	var wg sync.WaitGroup
	w := runtime.GOMAXPROCS(0)
	for k := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := []indicators.Event{}
			for i := k; i < len(studs); i += w {
				ev = append(ev[:0], studs[i].Events...)
				res[i] = c.Evaluate(studs[i].ID, ev)
			}
		}()
	}
	wg.Wait()
	return count(studs, res, miss)
}

// quality is what `vigie eval --alerts` reports, and the breakdown of
// --miss.
type quality struct {
	evaluation.Academy
	detail string
}

func (q quality) String() string {
	return fmt.Sprintf("P %.3f R %.3f Rdr %.3f lead %3.0f false/1k/mo %.2f (alerted %d, dropouts %d, drifters %d)",
		q.Precision, q.Recall, q.RecallDrifters, q.MedianLeadDays, q.FalsePer1000, q.Alerted, q.Dropouts, q.Drifters) + q.detail
}

// count counts quality with vigie eval's counter: res[i] holds the alerts
// of studs[i]. The oracle of ceiling.go counts with it too.
func count(studs []student, res []indicators.Result, miss bool) quality {
	c := evaluation.NewCounter(grace)
	missBy, falseBy := map[string]int{}, map[string]int{}
	type tr struct{ alerted, alertedTrue, dropouts, recall int }
	byTrack := map[string]*tr{}
	var opened []int
	for i, s := range studs {
		opened = opened[:0]
		for _, a := range res[i].Alerts {
			opened = append(opened, int(a.Opened))
			if !s.Truth.IsTrue(int(a.Opened), grace) {
				falseBy[a.Code]++
			}
		}
		firstTrue := c.Add(s.Truth, opened)
		t := byTrack[s.Track]
		if t == nil {
			t = &tr{}
			byTrack[s.Track] = t
		}
		if len(opened) > 0 {
			t.alerted++
			if firstTrue >= 0 {
				t.alertedTrue++
			}
		}
		if s.Dropout {
			t.dropouts++
			if firstTrue >= 0 {
				t.recall++
			} else {
				missBy[s.Signals]++
			}
		}
	}
	q := quality{Academy: *c.Result(months)}
	if miss {
		q.detail += fmt.Sprintf("\n  missed dropouts by signals: %v\n  false alerts by code: %v", missBy, falseBy)
		for _, k := range []string{"college", "lgt", "lp"} {
			if t := byTrack[k]; t != nil {
				q.detail += fmt.Sprintf("\n  %-8s precision %.3f (%d alerted), recall %.3f (%d dropouts)", k,
					float64(t.alertedTrue)/float64(max(t.alerted, 1)), t.alerted, float64(t.recall)/float64(max(t.dropouts, 1)), t.dropouts)
			}
		}
	}
	return q
}

// clamp32 narrows a day of Truth.Window (math.MaxInt or MinInt when
// open-ended) to the int32 days of the oracle.
func clamp32(d int) int32 { return int32(min(max(d, math.MinInt32), math.MaxInt32)) }

// load reads the academy, caching the parsed students in dir/tune4.gob.
func load(dir string, n int) ([]student, error) {
	cache := filepath.Join(dir, "tune4.gob")
	var studs []student
	if f, err := os.Open(cache); err == nil {
		defer f.Close()
		if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&studs); err == nil && len(studs) >= n {
			return studs[:n], nil
		}
	}
	studs, err := parse(dir)
	if err != nil {
		return nil, err
	}
	if f, err := os.Create(cache); err == nil {
		bw := bufio.NewWriter(f)
		if err := gob.NewEncoder(bw).Encode(studs); err == nil {
			bw.Flush()
		}
		f.Close()
	}
	return studs[:min(n, len(studs))], nil
}

func readCSV(path string, fn func(col map[string]int, r []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cr := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	cr.ReuseRecord = true
	h, err := cr.Read()
	if err != nil {
		return err
	}
	col := map[string]int{}
	for i, x := range h {
		col[x] = i
	}
	for {
		r, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(col, r); err != nil {
			return err
		}
	}
}

func atoi(s string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(s, "S"))
	return i
}

// parse reads the files as the early_warning rule reads the pipeline's
// timeline (see examples/rules/early_warning/main.go).
func parse(dir string) ([]student, error) {
	var studs []student
	idx := map[string]int{}
	var header []string
	err := readCSV(filepath.Join(dir, "ground_truth.csv"), func(c map[string]int, r []string) error {
		if header == nil {
			header = make([]string, len(r))
			for name, i := range c {
				header[i] = name
			}
		}
		id, t, err := evaluation.ReadTruth(header, r)
		if err != nil {
			return err
		}
		from, to := t.Window(grace)
		s := student{ID: id, Truth: t, Drifts: t.Drifts, Dropout: t.Dropout, TrueFrom: clamp32(from), TrueTo: clamp32(to),
			Out: math.MaxInt32, Signals: r[c["signals"]], Track: r[c["track"]]}
		if t.Dropout {
			s.Out = int32(t.DropoutDay)
		}
		idx[s.ID] = len(studs)
		studs = append(studs, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	type key struct {
		s  int
		hd int64
	}
	corrected := map[key]int32{}
	type absRow struct {
		s         int
		day       int32
		hd        int64
		justified bool
		late      bool
	}
	var abs []absRow
	err = readCSV(filepath.Join(dir, "absences.csv"), func(c map[string]int, r []string) error {
		s, ok := idx[r[c["student_id"]]]
		if !ok {
			return nil
		}
		d, err := indicators.ParseDay(r[c["date"]])
		if err != nil {
			return err
		}
		hd := int64(d) * 2
		if r[c["half"]] == "PM" {
			hd++
		}
		if r[c["corrects"]] != "" {
			rd, err := indicators.ParseDay(r[c["recorded_at"]][:10])
			if err == nil {
				corrected[key{s, hd}] = rd
			}
			return nil
		}
		abs = append(abs, absRow{s, d, hd, r[c["justified"]] == "true", r[c["reason"]] == "retard"})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, a := range abs {
		if a.justified {
			studs[a.s].Jus = append(studs[a.s].Jus, int32(a.hd))
		} else {
			studs[a.s].Unj = append(studs[a.s].Unj, int32(a.hd))
			if a.late {
				studs[a.s].Late = append(studs[a.s].Late, int32(a.hd))
			}
		}
		e := indicators.Event{Kind: indicators.Absence, Day: a.day, Justified: a.justified}
		if d, ok := corrected[key{a.s, a.hd}]; ok {
			e.CorrectedDay = d
		}
		studs[a.s].Events = append(studs[a.s].Events, e)
	}
	err = readCSV(filepath.Join(dir, "grades.csv"), func(c map[string]int, r []string) error {
		s, ok := idx[r[c["student_id"]]]
		if !ok {
			return nil
		}
		p := strings.TrimPrefix(strings.ToUpper(r[c["period"]]), "T")
		if len(p) != 1 {
			return nil
		}
		e := indicators.Event{Kind: indicators.Mark, Term: int(p[0] - '1'), Subject: r[c["subject"]], Mark: math.NaN()}
		switch st := r[c["status"]]; {
		case (st == "ok" || st == "") && r[c["mark"]] != "":
			e.Mark, _ = strconv.ParseFloat(r[c["mark"]], 64)
		case st == "absent" || st == "not_graded" || st == "missing":
		default:
			return nil
		}
		studs[s].Events = append(studs[s].Events, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readCSV(filepath.Join(dir, "activity.csv"), func(c map[string]int, r []string) error {
		s, ok := idx[r[0]]
		if !ok {
			return nil
		}
		d, err := indicators.ParseDay(r[1])
		if err != nil {
			return err
		}
		studs[s].Events = append(studs[s].Events, indicators.Event{Kind: indicators.Activity, Day: d})
		return nil
	})
	_ = atoi
	return studs, err
}
