// Package replay holds the built-in source "replay", which plays the
// events of a `vigie gen` academy (absent half-days, term marks, platform
// sessions) in event-time order, as the timeline of the early-warning
// pack, paced at a speed factor: a live demo with no server
// (docs/design/streaming.md, section 9; examples/pipelines/live.toml).
package replay

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// SourceName is the registry name of the replay source.
const SourceName = "replay"

// MaxGap is the longest stretch of event time without events that the
// source waits for; longer ones (nights, weekends, holidays) are skipped.
const MaxGap = time.Hour

// loopShift is how far each loop moves event times: 52 weeks, so that
// weekdays stay weekdays.
const loopShift = 364 * 24 * time.Hour

// Option names.
const (
	optDir   = "dir"
	optSpeed = "speed"
	optLoop  = "loop"
)

// Source is the replay source. It is stateless and safe for concurrent use.
type Source struct {
	// Now and Sleep pace the replay; nil uses the wall clock. Tests set
	// them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

var _ protocol.Source = Source{}

var spec = protocol.Spec{
	Name:    SourceName,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "replay" (source): plays the events of a vigie gen academy
(absences.csv, grades.csv, calendar.csv and, when present,
xapi/statements.jsonl) in event-time order, as the timeline of the
early-warning pack: student_id, date, half, justified, corrects,
recorded_at, subject, period, mark, status, then event_time (UTC) and
offset (the row's rank in the replay, from 0, its arrival sequence). An
absence's event time is its recorded_at, a mark's its term's end at
18:00 Paris time (its date is the term's end), a platform session's its
statement timestamp. Ties keep file then line order. speed is the event
time played per wall-clock second ("24h": a day per second); stretches of
more than an hour without events (nights, weekends, holidays) are
skipped, not waited for; a batch goes out at batch_rows rows or once its
first row has waited max_delay; "max" plays without pacing. With loop the year
plays again, shifted by 52 weeks, forever. The source reads until stopped
(unbounded); without loop it ends after the last event. The academy is
held in memory (about 200 bytes per event).`,
	Options: []protocol.Option{
		{Name: optDir, Type: protocol.TypePath, Required: true, Doc: "folder written by vigie gen (formats csv and xapi)"},
		{Name: optSpeed, Type: protocol.TypeString, Default: "24h", Doc: `event time per wall-clock second, a duration ("24h", "90m"), or "max" for no pacing`},
		{Name: optLoop, Type: protocol.TypeBool, Default: false, Doc: "play the year again, 52 weeks later, after its last event, until stopped"},
	},
	Unbounded: true,
}

// Spec describes the connector and its options.
func (Source) Spec() protocol.Spec { return spec }

// Schema is the schema of every batch.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "student_id", Type: arrow.BinaryTypes.String},
	{Name: "date", Type: arrow.FixedWidthTypes.Date32},
	{Name: "half", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "justified", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "corrects", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "recorded_at", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "subject", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "period", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "mark", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "event_time", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// Schema returns the replay's schema after checking its options.
func (s Source) Schema(_ context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	if _, err := parseConfig(cfg); err != nil {
		return nil, err
	}
	return Schema, nil
}

type config struct {
	dir   string
	speed time.Duration // 0: max
	loop  bool
}

func parseConfig(cfg protocol.Config) (config, error) {
	c := config{dir: cfg.String(optDir), loop: cfg.Bool(optLoop)}
	sp := cfg.String(optSpeed)
	if sp == "" {
		sp = "24h"
	}
	if sp != "max" {
		d, err := time.ParseDuration(sp)
		if err != nil || d <= 0 {
			return c, protocol.WithKind(fmt.Errorf("option %q: expected a positive duration such as \"24h\", or \"max\"; got %q", optSpeed, sp), protocol.ErrConfig)
		}
		c.speed = d
	}
	if c.dir == "" {
		return c, protocol.WithKind(fmt.Errorf("option %q: the folder of a vigie gen academy is required", optDir), protocol.ErrConfig)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "absences.csv")); err != nil {
		return c, protocol.WithKind(fmt.Errorf("option %q: %s is not a vigie gen academy written with --format csv (no absences.csv): %w", optDir, c.dir, err), protocol.ErrConfig)
	}
	return c, nil
}

// event is one row of the replay.
type event struct {
	t    int64 // event time, µs since the epoch (UTC)
	file int   // 0 absences, 1 grades, 2 statements
	line int
	// Columns.
	student   string
	date      int32
	half      string
	justified int8 // -1 null
	corrects  string
	recorded  string
	subject   string
	period    string
	mark      float64
	hasMark   bool
	status    string
}

// position is where a read stopped: the event time of the last row sent
// and how many rows of that event time were sent.
type position struct {
	T int64 `json:"t"`
	N int   `json:"n"`
}

// Read plays the academy from the start, or after cfg.Resume.
func (s Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	c, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	events, dead, err := load(c.dir)
	if err != nil {
		return err
	}
	var from position
	resumed := cfg.Resume != nil
	if resumed {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
	} else if len(dead) > 0 {
		// Load-time dead letters go out once, before the first batch: a
		// resumed read does not send them again.
		if err := out.DeadLetter(ctx, dead); err != nil {
			return err
		}
	}
	if len(events) == 0 {
		return nil
	}
	now, sleep := s.Now, s.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	batchRows := cfg.BatchRows
	if batchRows <= 0 {
		batchRows = protocol.DefaultBatchRows
	}
	maxDelay := cfg.MaxDelay
	if maxDelay <= 0 {
		maxDelay = protocol.DefaultMaxDelay
	}
	p := &player{out: out, mem: mem, batchRows: batchRows, speed: c.speed, now: now, sleep: sleep, maxDelay: maxDelay}
	defer p.release()
	n := len(events)
	shift := loopShift.Microseconds()
	loop := 0
	if resumed && c.loop && from.T >= events[0].t {
		loop = int((from.T - events[0].t) / shift)
	}
	for ; ; loop++ {
		for i := range events {
			e := &events[i]
			t := e.t + int64(loop)*shift
			if resumed && (t < from.T || t == from.T && p.sameAt(t) < from.N) {
				if t == from.T {
					p.skipAt(t)
				}
				continue
			}
			if err := p.play(ctx, e, t, int64(loop)*int64(n)+int64(i), loop); err != nil {
				return err
			}
		}
		if !c.loop {
			return p.flush(ctx)
		}
	}
}

// player batches and paces the rows.
type player struct {
	out       protocol.Emitter
	mem       memory.Allocator
	b         *array.RecordBuilder
	rows      int
	batchRows int
	speed     time.Duration
	now       func() time.Time
	sleep     func(context.Context, time.Duration) error

	maxDelay time.Duration // longest a paced row waits in a pending batch

	pos      position  // after the last row added
	firstDue time.Time // when the first pending row was due
	started  bool
	wall     time.Time // wall-clock time of played
	played   int64     // event time (µs) reached by the pacing
}

// sameAt counts the rows of event time t already seen (sent or skipped).
func (p *player) sameAt(t int64) int {
	if p.pos.T == t {
		return p.pos.N
	}
	return 0
}

func (p *player) skipAt(t int64) {
	if p.pos.T != t {
		p.pos = position{T: t}
	}
	p.pos.N++
}

func (p *player) release() {
	if p.b != nil {
		p.b.Release()
		p.b = nil
	}
}

// play adds one row, waiting first until its time has come.
func (p *player) play(ctx context.Context, e *event, t, offset int64, loop int) error {
	if p.speed > 0 {
		if !p.started {
			p.started, p.wall, p.played = true, p.now(), t
		}
		gap := min(t-p.played, MaxGap.Microseconds())
		if gap > 0 {
			p.played += gap
			// Event time gap → wall time at the speed factor.
			p.wall = p.wall.Add(time.Duration(float64(gap) * float64(time.Microsecond) * float64(time.Second) / float64(p.speed)))
		}
		p.played = t
		if wait := p.wall.Sub(p.now()); wait > 0 {
			// The rows pending go out before a wait that would keep the
			// first of them more than max_delay.
			if p.rows > 0 && p.wall.Sub(p.firstDue) >= p.maxDelay {
				if err := p.flush(ctx); err != nil {
					return err
				}
			}
			if err := p.sleep(ctx, wait); err != nil {
				return err
			}
		}
		if p.rows == 0 {
			p.firstDue = p.wall
		}
	}
	if p.b == nil {
		p.b = array.NewRecordBuilder(p.mem, Schema)
	}
	f := p.b.Fields()
	f[0].(*array.StringBuilder).Append(e.student)
	f[1].(*array.Date32Builder).Append(arrow.Date32(e.date + int32(loop*364)))
	str := func(k int, s string) {
		if s == "" {
			f[k].AppendNull()
		} else {
			f[k].(*array.StringBuilder).Append(s)
		}
	}
	str(2, e.half)
	if e.justified < 0 {
		f[3].AppendNull()
	} else {
		f[3].(*array.BooleanBuilder).Append(e.justified == 1)
	}
	str(4, e.corrects)
	str(5, e.recorded)
	str(6, e.subject)
	str(7, e.period)
	if e.hasMark {
		f[8].(*array.Float64Builder).Append(e.mark)
	} else {
		f[8].AppendNull()
	}
	str(9, e.status)
	f[10].(*array.TimestampBuilder).Append(arrow.Timestamp(t))
	f[11].(*array.Int64Builder).Append(offset)
	p.rows++
	if p.pos.T != t {
		p.pos = position{T: t}
	}
	p.pos.N++
	if p.rows >= p.batchRows {
		return p.flush(ctx)
	}
	return nil
}

// flush emits the pending rows with the position after them.
func (p *player) flush(ctx context.Context) error {
	if p.rows == 0 {
		return nil
	}
	rec := p.b.NewRecordBatch()
	defer rec.Release()
	p.rows = 0
	pos, err := protocol.NewPosition(p.pos)
	if err != nil {
		return err
	}
	return p.out.Emit(ctx, rec, pos)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// load reads the academy's events, sorted by event time, file, line, and
// the dead letters of the lines that could not be read.
func load(dir string) ([]event, []protocol.DeadLetter, error) {
	var dead []protocol.DeadLetter
	bad := func(path string, line int, reason, raw string) {
		dead = append(dead, protocol.DeadLetter{Origin: path, Line: int64(line), Reason: reason, Raw: raw})
	}
	termEnds, err := termEnds(filepath.Join(dir, "calendar.csv"))
	if err != nil {
		return nil, nil, err
	}
	var events []event
	if err := readCSV(filepath.Join(dir, "absences.csv"), []string{"student_id", "date", "half", "justified", "recorded_at", "corrects"}, func(path string, line int, get func(string) string, raw string) {
		day, err := parseDay(get("date"))
		if err != nil {
			bad(path, line, fmt.Sprintf("date: %v", err), raw)
			return
		}
		at, err := time.Parse(time.RFC3339, get("recorded_at"))
		if err != nil {
			bad(path, line, fmt.Sprintf("recorded_at: %v", err), raw)
			return
		}
		e := event{t: at.UnixMicro(), file: 0, line: line, student: get("student_id"), date: day, half: get("half"),
			justified: -1, corrects: get("corrects"), recorded: get("recorded_at")}
		switch get("justified") {
		case "true":
			e.justified = 1
		case "false":
			e.justified = 0
		}
		events = append(events, e)
	}); err != nil {
		return nil, nil, err
	}
	if err := readCSV(filepath.Join(dir, "grades.csv"), []string{"student_id", "subject", "period", "mark", "status"}, func(path string, line int, get func(string) string, raw string) {
		end, ok := termEnds[get("period")]
		if !ok {
			bad(path, line, fmt.Sprintf("period %q is not a term of calendar.csv", get("period")), raw)
			return
		}
		e := event{t: markTime(end), file: 1, line: line, student: get("student_id"), date: end, justified: -1,
			subject: get("subject"), period: get("period"), status: get("status")}
		if m := get("mark"); m != "" {
			v, err := strconv.ParseFloat(m, 64)
			if err != nil {
				bad(path, line, fmt.Sprintf("mark: %v", err), raw)
				return
			}
			e.mark, e.hasMark = v, true
		}
		events = append(events, e)
	}); err != nil {
		return nil, nil, err
	}
	stmts := filepath.Join(dir, "xapi", "statements.jsonl")
	if _, err := os.Stat(stmts); err == nil {
		if err := readStatements(stmts, func(line int, student, ts, raw string) {
			at, err := time.Parse(time.RFC3339, ts)
			day, derr := parseDay(first10(ts))
			if student == "" || err != nil || derr != nil {
				bad(stmts, line, "statement without actor.account.name or RFC 3339 timestamp", raw)
				return
			}
			events = append(events, event{t: at.UnixMicro(), file: 2, line: line, student: student, date: day, justified: -1})
		}); err != nil {
			return nil, nil, err
		}
	}
	slices.SortFunc(events, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.file, b.file), cmp.Compare(a.line, b.line))
	})
	return events, dead, nil
}

func first10(s string) string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

func parseDay(s string) (int32, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, err
	}
	return int32(t.Unix() / 86400), nil
}

// markTime is 18:00 Paris time on day (UTC+1, UTC+2 in EU summer time).
func markTime(day int32) int64 {
	t := time.Unix(int64(day)*86400, 0).UTC()
	off := 1
	if summer(t) {
		off = 2
	}
	return t.Add(time.Duration(18-off) * time.Hour).UnixMicro()
}

// summer reports whether day t is in EU summer time: from the last Sunday
// of March to the day before the last Sunday of October.
func summer(t time.Time) bool {
	last := func(m time.Month) time.Time {
		d := time.Date(t.Year(), m+1, 0, 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, -int(d.Weekday()))
	}
	return !t.Before(last(time.March)) && t.Before(last(time.October))
}

// termEnds reads calendar.csv: the last day of each period.
func termEnds(path string) (map[string]int32, error) {
	ends := map[string]int32{}
	var bad error
	err := readCSV(path, []string{"date", "period"}, func(_ string, line int, get func(string) string, _ string) {
		d, err := parseDay(get("date"))
		if err != nil {
			bad = fmt.Errorf("%s:%d: date: %w", path, line, err)
			return
		}
		if p := get("period"); p != "" && d > ends[p] {
			ends[p] = d
		}
	})
	if err == nil {
		err = bad
	}
	if err == nil && len(ends) == 0 {
		err = fmt.Errorf("%s: no period", path)
	}
	return ends, err
}

// readCSV calls row for every record of a CSV file with a header holding
// the columns want.
func readCSV(path string, want []string, row func(path string, line int, get func(string) string, raw string)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("replay: %s: header: %w", path, err)
	}
	idx := map[string]int{}
	for i, h := range header {
		idx[strings.TrimSpace(h)] = i
	}
	for _, w := range want {
		if _, ok := idx[w]; !ok {
			return fmt.Errorf("replay: %s: no column %q (columns: %v)", path, w, header)
		}
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: %s: %w", path, err)
		}
		get := func(col string) string {
			if i := idx[col]; i < len(rec) {
				return rec[i]
			}
			return ""
		}
		row(path, line, get, strings.Join(rec, ","))
	}
}

// readStatements calls fn with the actor's account name and the timestamp
// of every statement.
func readStatements(path string, fn func(line int, student, ts, raw string)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var st struct {
		Actor struct {
			Account struct {
				Name string `json:"name"`
			} `json:"account"`
		} `json:"actor"`
		Timestamp string `json:"timestamp"`
	}
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		st.Actor.Account.Name, st.Timestamp = "", ""
		if err := json.Unmarshal(b, &st); err != nil {
			fn(line, "", "", string(b))
			continue
		}
		fn(line, st.Actor.Account.Name, st.Timestamp, string(b))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay: %s: %w", path, err)
	}
	return nil
}
