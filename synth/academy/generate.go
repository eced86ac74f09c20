package academy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"golang.org/x/text/encoding/charmap"
)

// Output formats. CSV, Parquet and JSON Lines apply to the tables
// (Tables); the others are bundles of their own.
const (
	FormatCSV       = "csv"       // <table>.csv
	FormatParquet   = "parquet"   // <table>.parquet
	FormatJSONL     = "jsonl"     // <table>.jsonl
	FormatOneRoster = "oneroster" // oneroster/*.csv, a OneRoster 1.2 CSV bundle
	FormatXAPI      = "xapi"      // xapi/statements.jsonl
	FormatPronote   = "pronote"   // pronote/notes.csv, pronote/absences.csv (Windows-1252, ";")
	// FormatEvaluations writes evaluations.csv: 6e and 4e national
	// evaluation results, per student and domain.
	FormatEvaluations = "evaluations"
	// FormatStaff writes teacher_absences.csv: teachers' days of absence
	// per school, replaced or not.
	FormatStaff = "staff"
	// FormatPlatform writes platform_logs.csv (requests per platform,
	// school and minute over Options.PlatformDays) and its ground truth,
	// platform_incidents.csv (platform.go).
	FormatPlatform = "platform"
	// FormatPrimary writes the écoles (primary_schools.csv, with their
	// circonscription), CP and CE1 national evaluations
	// (primary_evaluations.csv), enrolments and departures of the year
	// (enrolments.csv), each école's projected enrolment
	// (enrolment_projection.csv) and the ground truth (primary_truth.csv).
	FormatPrimary = "primary"
)

// AllFormats lists every format.
var AllFormats = []string{FormatCSV, FormatParquet, FormatJSONL, FormatOneRoster, FormatXAPI, FormatPronote, FormatEvaluations, FormatStaff, FormatPlatform, FormatPrimary}

// Options says what to generate and where.
type Options struct {
	Dir      string   // output folder, created if missing
	Students int      // number of students
	Schools  int      // number of schools; 0: one per 600 students, at least 3
	Seed     uint64   // same seed, same bytes
	Year     int      // the school year starts in September of Year
	Zone     string   // holiday zone: A, B or C
	Formats  []string // subset of AllFormats; empty: all
	Profile  Profile  // rates; use DefaultProfile() or LoadProfile
	// Workers is the number of goroutines generating students (0:
	// GOMAXPROCS). The output does not depend on it.
	Workers int
	// Chunk is the number of students per unit of work (0: 256). The
	// output does not depend on it, except for Parquet row groups.
	Chunk int
	// Mem allocates the Parquet batches (nil: a Go allocator of the
	// generation's own).
	Mem memory.Allocator
	// PlatformDays is the span of the platform logs from the first day of
	// the school year (0: the first term, PlatformDays).
	PlatformDays int
}

func (o *Options) has(f string) bool {
	for _, g := range o.Formats {
		if g == f {
			return true
		}
	}
	return false
}

// File is one written file.
type File struct {
	Path  string
	Rows  int64 // lines or records, without the header
	Bytes int64
}

// Result says what Generate wrote.
type Result struct {
	Files    []File
	Students int
	Schools  int
	Classes  int
	Elapsed  time.Duration
}

// Rate is the number of students generated per second.
func (r *Result) Rate() float64 { return float64(r.Students) / r.Elapsed.Seconds() }

// output is one file being written.
type output struct {
	path  string
	f     *os.File
	w     *bufio.Writer
	rows  int64
	pq    *pqarrow.FileWriter
	cp    bool // text re-encoded to Windows-1252 by the worker
	table int  // for Parquet
}

func (o *output) write(b []byte) error {
	o.rows += int64(bytes.Count(b, []byte{'\n'}))
	_, err := o.w.Write(b)
	return err
}

// chunk is a range of students and their rows, one per unit of work.
type chunk struct {
	seq, from, to int
	text          [numStreams][]byte
	recs          [5]arrow.RecordBatch
}

// Generate writes a synthetic academy to opt.Dir. Students are generated
// in parallel, in chunks, and written in order, so memory stays bounded
// and the output is the same whatever the number of workers.
func Generate(ctx context.Context, opt Options) (*Result, error) {
	start := time.Now()
	if len(opt.Formats) == 0 {
		opt.Formats = AllFormats
	}
	for _, f := range opt.Formats {
		if !strings.Contains(","+strings.Join(AllFormats, ",")+",", ","+f+",") {
			return nil, fmt.Errorf("format %q: want one of %s", f, strings.Join(AllFormats, ", "))
		}
	}
	if err := opt.Profile.Validate(); err != nil {
		return nil, err
	}
	if opt.Schools == 0 {
		opt.Schools = max(3, opt.Students/600)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Chunk <= 0 {
		opt.Chunk = 256
	}
	if opt.Mem == nil {
		opt.Mem = memory.NewGoAllocator()
	}
	cal, err := NewCalendar(opt.Year, opt.Zone)
	if err != nil {
		return nil, err
	}
	lay, err := NewLayout(opt.Profile, opt.Seed, opt.Students, opt.Schools)
	if err != nil {
		return nil, err
	}
	w := newWorld(opt.Profile, cal, lay, opt.Seed)
	w.evalDays = w.evaluationDays()
	g := &generation{opt: &opt, w: w}
	if err := g.open(); err != nil {
		g.close()
		return nil, err
	}
	err = g.run(ctx)
	if cerr := g.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	res := &Result{Students: opt.Students, Schools: len(lay.Schools), Classes: len(lay.Divisions), Elapsed: time.Since(start)}
	for _, o := range g.all {
		fi, err := os.Stat(o.path)
		if err != nil {
			return nil, err
		}
		res.Files = append(res.Files, File{Path: o.path, Rows: o.rows, Bytes: fi.Size()})
	}
	return res, nil
}

type generation struct {
	opt     *Options
	w       *world
	streams [numStreams]*output
	parquet [5]*output
	all     []*output
}

func (g *generation) create(rel string) (*output, error) {
	path := filepath.Join(g.opt.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	o := &output{path: path, f: f, w: bufio.NewWriterSize(f, 1<<20)}
	g.all = append(g.all, o)
	return o, nil
}

var cp1252 = charmap.Windows1252

// open creates the files, writes headers and the rows that do not depend
// on students.
func (g *generation) open() error {
	opt, w := g.opt, g.w
	for i, t := range tables {
		if opt.has(FormatCSV) {
			o, err := g.create(t.Name + ".csv")
			if err != nil {
				return err
			}
			g.streams[2*i] = o
			if _, err := o.w.Write(csvHeader(t)); err != nil {
				return err
			}
		}
		if opt.has(FormatJSONL) {
			o, err := g.create(t.Name + ".jsonl")
			if err != nil {
				return err
			}
			g.streams[2*i+1] = o
		}
		if opt.has(FormatParquet) {
			o, err := g.create(t.Name + ".parquet")
			if err != nil {
				return err
			}
			props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy),
				parquet.WithMaxRowGroupLength(256*1024), parquet.WithCreatedBy("vigie gen"))
			o.pq, err = pqarrow.NewFileWriter(t.Schema(), o.w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(g.opt.Mem)))
			if err != nil {
				return err
			}
			o.table = i
			g.parquet[i] = o
		}
	}
	if opt.has(FormatCSV) || opt.has(FormatPrimary) {
		// The school weeks of the primary pipelines read it too.
		o, err := g.create("calendar.csv")
		if err != nil {
			return err
		}
		if err := o.write(w.calendarCSV()); err != nil {
			return err
		}
		o.rows--
	}
	if opt.has(FormatStaff) {
		o, err := g.create("teacher_absences.csv")
		if err != nil {
			return err
		}
		if err := o.write(w.teacherAbsencesCSV()); err != nil {
			return err
		}
		o.rows--
	}
	if opt.has(FormatPlatform) {
		if err := g.platform(); err != nil {
			return err
		}
	}
	if opt.has(FormatPrimary) {
		pw := w.newPrimary()
		for _, f := range []struct {
			name string
			text []byte
		}{
			{"primary_schools.csv", pw.primarySchoolsCSV()},
			{"primary_evaluations.csv", w.primaryEvaluationsCSV(pw)},
			{"enrolments.csv", pw.enrolmentsCSV()},
			{"enrolment_projection.csv", pw.projectionCSV()},
			{"primary_truth.csv", pw.truthCSV()},
		} {
			o, err := g.create(f.name)
			if err != nil {
				return err
			}
			if err := o.write(f.text); err != nil {
				return err
			}
			o.rows--
		}
	}
	if opt.has(FormatEvaluations) {
		o, err := g.create("evaluations.csv")
		if err != nil {
			return err
		}
		if _, err := o.w.WriteString("student_id,school_id,departement,class_id,level,domain,score,group,entered_at\n"); err != nil {
			return err
		}
		g.streams[sEval] = o
	}
	if opt.has(FormatXAPI) {
		o, err := g.create(filepath.Join("xapi", "statements.jsonl"))
		if err != nil {
			return err
		}
		g.streams[sXAPI] = o
	}
	if opt.has(FormatOneRoster) {
		static := w.rosterStatic()
		streamed := map[string]int{"users": sORUsers, "roles": sORRoles, "enrollments": sOREnroll, "results": sORResults}
		man := []byte("propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\n")
		present := map[string]bool{}
		for _, rf := range rosterFiles {
			present[rf.name] = true
		}
		for _, f := range []string{"academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
			"demographics", "enrollments", "lineItemLearningObjectiveIds", "lineItems", "lineItemScoreScales", "orgs", "resources",
			"resultLearningObjectiveIds", "results", "resultScoreScales", "roles", "scoreScales", "userProfiles", "userResources", "users"} {
			mode := "absent"
			if present[f] {
				mode = "bulk"
			}
			man = append(man, "file."+f+","+mode+"\n"...)
		}
		man = append(man, "source.systemName,vigie gen\nsource.systemCode,vigie\n"...)
		o, err := g.create(filepath.Join("oneroster", "manifest.csv"))
		if err != nil {
			return err
		}
		if err := o.write(man); err != nil {
			return err
		}
		o.rows--
		for _, rf := range rosterFiles {
			o, err := g.create(filepath.Join("oneroster", rf.name+".csv"))
			if err != nil {
				return err
			}
			if _, err := o.w.WriteString(rf.header + "\n"); err != nil {
				return err
			}
			if err := o.write(static[rf.name]); err != nil {
				return err
			}
			if s, ok := streamed[rf.name]; ok {
				g.streams[s] = o
			}
		}
	}
	if opt.has(FormatPronote) {
		for _, f := range []struct {
			s            int
			name, header string
		}{
			{sPNNotes, "notes.csv", "Identifiant;Nom;Prénom;Classe;Matière;Période;Date;Note;Barème;Coefficient\r\n"},
			{sPNAbsences, "absences.csv", "Identifiant;Nom;Prénom;Classe;Date;Demi-journée;Justifiée;Motif;Saisie le\r\n"},
		} {
			o, err := g.create(filepath.Join("pronote", f.name))
			if err != nil {
				return err
			}
			h, err := cp1252.NewEncoder().Bytes([]byte(f.header))
			if err != nil {
				return err
			}
			if _, err := o.w.Write(h); err != nil {
				return err
			}
			o.cp = true
			g.streams[f.s] = o
		}
	}
	return nil
}

func (g *generation) close() error {
	var first error
	for _, o := range g.all {
		var err error
		if o.pq != nil {
			err = o.pq.Close() // flushes o.w? no: writes to o.w
		}
		if e := o.w.Flush(); err == nil {
			err = e
		}
		if e := o.f.Close(); err == nil {
			err = e
		}
		if err != nil && first == nil {
			first = fmt.Errorf("write %s: %w", o.path, err)
		}
	}
	return first
}

// run generates the students with opt.Workers goroutines and writes their
// chunks in order.
func (g *generation) run(ctx context.Context) error {
	opt := g.opt
	n := (opt.Students + opt.Chunk - 1) / opt.Chunk
	inFlight := 2 * opt.Workers
	free := make(chan *chunk, inFlight)
	for range inFlight {
		free <- &chunk{}
	}
	jobs := make(chan *chunk)
	done := make(chan *chunk, inFlight)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // feeder: the free list bounds the chunks in flight
		defer wg.Done()
		defer close(jobs)
		for seq := range n {
			var c *chunk
			select {
			case c = <-free:
			case <-ctx.Done():
				return
			}
			c.seq, c.from, c.to = seq, seq*opt.Chunk, min(opt.Students, (seq+1)*opt.Chunk)
			select {
			case jobs <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range opt.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := newWorker(g.w, opt)
			for c := range jobs {
				k.fill(c, g)
				select {
				case done <- c:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var err error
	pending := map[int]*chunk{}
	for next := 0; next < n && err == nil; {
		select {
		case c := <-done:
			pending[c.seq] = c
		case <-ctx.Done():
			err = ctx.Err()
			continue
		}
		for c, ok := pending[next]; ok && err == nil; c, ok = pending[next] {
			delete(pending, next)
			err = g.write(c)
			free <- c
			next++
		}
	}
	cancel()
	wg.Wait()
	for _, c := range pending {
		c.release()
	}
	return err
}

func (c *chunk) release() {
	for i, r := range c.recs {
		if r != nil {
			r.Release()
			c.recs[i] = nil
		}
	}
}

// fill generates the students of a chunk into it.
func (k *worker) fill(c *chunk, g *generation) {
	for i := range k.text {
		k.text[i] = c.text[i][:0]
	}
	for _, b := range k.batches {
		b.reset()
	}
	for i := c.from; i < c.to; i++ {
		k.student(i)
	}
	for i, b := range k.batches {
		if g.streams[2*i] != nil {
			k.text[2*i] = b.appendCSV(k.text[2*i])
		}
		if g.streams[2*i+1] != nil {
			k.text[2*i+1] = b.appendJSONL(k.text[2*i+1])
		}
		if g.parquet[i] != nil {
			c.recs[i] = b.record(g.opt.Mem)
		}
	}
	for _, s := range []int{sPNNotes, sPNAbsences} {
		if g.streams[s] != nil {
			enc, err := cp1252.NewEncoder().Bytes(k.text[s])
			if err != nil { // every character generated is in Windows-1252
				panic(err)
			}
			k.scratch = k.text[s]
			k.text[s] = enc
		}
	}
	c.text = k.text
}

func (g *generation) write(c *chunk) error {
	defer c.release()
	for s, o := range g.streams {
		if o != nil && len(c.text[s]) > 0 {
			if err := o.write(c.text[s]); err != nil {
				return fmt.Errorf("write %s: %w", o.path, err)
			}
		}
	}
	for i, o := range g.parquet {
		if o != nil && c.recs[i] != nil {
			if err := o.pq.WriteBuffered(c.recs[i]); err != nil {
				return fmt.Errorf("write %s: %w", o.path, err)
			}
			o.rows += c.recs[i].NumRows()
		}
	}
	return nil
}

// calendarCSV is the school calendar as a table: one row per day.
func (w *world) calendarCSV() []byte {
	b := []byte("date,weekday,half_days,holiday,period,zone\n")
	cal := w.cal
	for d := cal.First; !d.After(cal.Last); d = d.AddDate(0, 0, 1) {
		per := ""
		for _, p := range cal.Periods {
			if !d.Before(p.First) && !d.After(p.Last) {
				per = p.Name
			}
		}
		b = csvRow(b, day(d), strings.ToLower(d.Weekday().String()), fmt.Sprint(cal.HalfDays(d)), cal.HolidayOn(d), per, cal.Zone)
	}
	return b
}
