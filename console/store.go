package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", pure Go
)

// Store is where the console reads a run's outputs and records what
// teaching teams do about alerts. The default is an embedded SQLite file
// (OpenSQLite); the PostgreSQL sink's tables can implement the same
// interface (see RATIONALE.md, "The console's store").
type Store interface {
	Students(ctx context.Context, school string) ([]Student, error)
	Student(ctx context.Context, id string) (Student, bool, error)
	OpenAlerts(ctx context.Context, school string) ([]Alert, error)
	AlertHistory(ctx context.Context, student string) ([]AlertSpan, error)
	AlertSpan(ctx context.Context, id string) (AlertSpan, bool, error)
	Timeline(ctx context.Context, student string) (Timeline, error)
	WeeklyBySchool(ctx context.Context) ([]Week, error)
	AddAction(ctx context.Context, a Action) error
	Actions(ctx context.Context, alertID string) ([]Action, error)
	DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error)
	Close() error
}

// Student is one row of the roster with the rule's latest verdict.
type Student struct {
	ID, School, Class, Level string
	Risk                     float64
	AlertLevel               string // ok, watch, alert
	Reason                   string
	ReasonCodes              string
	OpenAlerts               int
}

// Alert is an alert open at the end of the run, with its student.
type Alert struct {
	ID, Code, Opened string
	Student          Student
	// LastAction is the latest action recorded on the alert ("" if none).
	LastAction, LastBy, Assignee string
}

// AlertSpan is one alert of a student over the year: opened on Opened,
// cleared on Cleared ("" while open).
type AlertSpan struct {
	ID, Student, Code, Opened, Cleared string
}

// Timeline is what a student's chart shows.
type Timeline struct {
	Absences []string // one date per absent half-day
	Activity []string // one date per platform session
	Marks    []Mark
}

// Mark is a term mark, dated at the end of its term.
type Mark struct {
	Date, Subject string
	Value         float64
}

// Week is one school's week: absence rate and alerts opened.
type Week struct {
	School, Week  string // week: the Monday, yyyy-mm-dd
	AbsentHalves  int
	PossibleHalfs int // students × half-days of school that week
	AlertsOpened  int
}

// Rate is the absence rate of the week, in [0,1].
func (w Week) Rate() float64 {
	if w.PossibleHalfs == 0 {
		return 0
	}
	return float64(w.AbsentHalves) / float64(w.PossibleHalfs)
}

// Action is what a member of a teaching team did about an alert.
type Action struct {
	AlertID, Student string
	Kind             string // acknowledge, assign, note, close
	Assignee         string // assign
	Note             string // note, close
	Outcome          string // close
	By               string
	At               time.Time
}

// ActionKinds are the actions a teaching team can record.
var ActionKinds = []string{"acknowledge", "assign", "note", "close"}

// Outcomes close an alert.
var Outcomes = []string{"followed up", "resolved", "no action needed", "referred"}

// DeadLetter is a rejected row of the run.
type DeadLetter struct {
	Stage, Origin, Line, Column, Reason, Raw string
}

// sqliteStore is the embedded default Store.
type sqliteStore struct {
	db *sql.DB
}

var _ Store = (*sqliteStore)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS students (id TEXT PRIMARY KEY, school TEXT, class TEXT, level TEXT,
  risk REAL, alert_level TEXT, reason TEXT, reason_codes TEXT, open_alerts INTEGER);
CREATE INDEX IF NOT EXISTS students_school ON students(school);
CREATE TABLE IF NOT EXISTS alerts (id TEXT, student TEXT, code TEXT, opened TEXT, cleared TEXT,
  PRIMARY KEY (id, opened));
CREATE INDEX IF NOT EXISTS alerts_student ON alerts(student);
CREATE TABLE IF NOT EXISTS events (student TEXT, kind TEXT, date TEXT, subject TEXT, value REAL);
CREATE INDEX IF NOT EXISTS events_student ON events(student);
CREATE TABLE IF NOT EXISTS calendar (date TEXT PRIMARY KEY, half_days INTEGER);
CREATE TABLE IF NOT EXISTS dead_letters (stage TEXT, origin TEXT, line TEXT, col TEXT, reason TEXT, raw TEXT);
CREATE TABLE IF NOT EXISTS actions (seq INTEGER PRIMARY KEY AUTOINCREMENT, alert TEXT, student TEXT,
  kind TEXT, assignee TEXT, note TEXT, outcome TEXT, by TEXT, at TEXT);
CREATE INDEX IF NOT EXISTS actions_alert ON actions(alert);
`

// OpenSQLite opens (creating it if needed) the console's SQLite database
// at path. Actions recorded in it survive a reload of the run's outputs.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("open console store: %w", err)
	}
	db.SetMaxOpenConns(1) // one writer; reads are small
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("console store %s: %w", path, err)
	}
	return &sqliteStore{db: db}, nil
}

func (s *sqliteStore) Close() error { return s.db.Close() }

// replace empties the run's tables and fills them from d, in one
// transaction; actions are kept.
func (s *sqliteStore) replace(ctx context.Context, d *runData) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, t := range []string{"students", "alerts", "events", "calendar", "dead_letters"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return err
		}
	}
	ins := func(q string, rows [][]any) error {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			if _, err := st.ExecContext(ctx, r...); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
	var rows [][]any
	for _, st := range d.students {
		rows = append(rows, []any{st.ID, st.School, st.Class, st.Level, st.Risk, st.AlertLevel, st.Reason, st.ReasonCodes, st.OpenAlerts})
	}
	if err := ins("INSERT INTO students VALUES (?,?,?,?,?,?,?,?,?)", rows); err != nil {
		return err
	}
	rows = rows[:0]
	for _, a := range d.alerts {
		rows = append(rows, []any{a.ID, a.Student, a.Code, a.Opened, a.Cleared})
	}
	if err := ins("INSERT OR REPLACE INTO alerts VALUES (?,?,?,?,?)", rows); err != nil {
		return err
	}
	rows = rows[:0]
	for _, e := range d.events {
		rows = append(rows, []any{e.student, e.kind, e.date, e.subject, e.value})
	}
	if err := ins("INSERT INTO events VALUES (?,?,?,?,?)", rows); err != nil {
		return err
	}
	rows = rows[:0]
	for date, n := range d.calendar {
		rows = append(rows, []any{date, n})
	}
	if err := ins("INSERT INTO calendar VALUES (?,?)", rows); err != nil {
		return err
	}
	rows = rows[:0]
	for _, l := range d.deadLetters {
		rows = append(rows, []any{l.Stage, l.Origin, l.Line, l.Column, l.Reason, l.Raw})
	}
	if err := ins("INSERT INTO dead_letters VALUES (?,?,?,?,?,?)", rows); err != nil {
		return err
	}
	return tx.Commit()
}

const studentCols = "id, school, class, level, risk, alert_level, reason, reason_codes, open_alerts"

func scanStudent(sc interface{ Scan(...any) error }, st *Student) error {
	return sc.Scan(&st.ID, &st.School, &st.Class, &st.Level, &st.Risk, &st.AlertLevel, &st.Reason, &st.ReasonCodes, &st.OpenAlerts)
}

// Students lists the students of a school ("" : every school).
func (s *sqliteStore) Students(ctx context.Context, school string) ([]Student, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+studentCols+" FROM students WHERE ?1 = '' OR school = ?1 ORDER BY class, id", school)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Student
	for rows.Next() {
		var st Student
		if err := scanStudent(rows, &st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func (s *sqliteStore) Student(ctx context.Context, id string) (Student, bool, error) {
	var st Student
	err := scanStudent(s.db.QueryRowContext(ctx, "SELECT "+studentCols+" FROM students WHERE id = ?", id), &st)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	return st, err == nil, err
}

// OpenAlerts lists the alerts open at the end of the run in a school (""
// : every school), riskiest student first, with the last action on each.
func (s *sqliteStore) OpenAlerts(ctx context.Context, school string) ([]Alert, error) {
	q := `SELECT a.id, a.code, a.opened, ` + prefixed("s.", studentCols) + `,
	  COALESCE((SELECT kind FROM actions WHERE alert = a.id ORDER BY seq DESC LIMIT 1), ''),
	  COALESCE((SELECT by FROM actions WHERE alert = a.id ORDER BY seq DESC LIMIT 1), ''),
	  COALESCE((SELECT assignee FROM actions WHERE alert = a.id AND kind = 'assign' ORDER BY seq DESC LIMIT 1), '')
	FROM alerts a JOIN students s ON s.id = a.student
	WHERE a.cleared = '' AND (?1 = '' OR s.school = ?1)
	ORDER BY s.risk DESC, a.opened, a.id`
	rows, err := s.db.QueryContext(ctx, q, school)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		var a Alert
		st := &a.Student
		if err := rows.Scan(&a.ID, &a.Code, &a.Opened, &st.ID, &st.School, &st.Class, &st.Level, &st.Risk, &st.AlertLevel, &st.Reason, &st.ReasonCodes, &st.OpenAlerts,
			&a.LastAction, &a.LastBy, &a.Assignee); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

func (s *sqliteStore) AlertHistory(ctx context.Context, student string) ([]AlertSpan, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, student, code, opened, cleared FROM alerts WHERE student = ? ORDER BY opened, id", student)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertSpan
	for rows.Next() {
		var a AlertSpan
		if err := rows.Scan(&a.ID, &a.Student, &a.Code, &a.Opened, &a.Cleared); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AlertSpan returns the latest span of the alert with that id.
func (s *sqliteStore) AlertSpan(ctx context.Context, id string) (AlertSpan, bool, error) {
	var a AlertSpan
	err := s.db.QueryRowContext(ctx, "SELECT id, student, code, opened, cleared FROM alerts WHERE id = ? ORDER BY opened DESC LIMIT 1", id).
		Scan(&a.ID, &a.Student, &a.Code, &a.Opened, &a.Cleared)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

func (s *sqliteStore) Timeline(ctx context.Context, student string) (Timeline, error) {
	var t Timeline
	rows, err := s.db.QueryContext(ctx, "SELECT kind, date, subject, value FROM events WHERE student = ? ORDER BY date", student)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	for rows.Next() {
		var kind, date, subject string
		var v float64
		if err := rows.Scan(&kind, &date, &subject, &v); err != nil {
			return t, err
		}
		switch kind {
		case kindAbsence:
			t.Absences = append(t.Absences, date)
		case kindActivity:
			t.Activity = append(t.Activity, date)
		case kindMark:
			t.Marks = append(t.Marks, Mark{Date: date, Subject: subject, Value: v})
		}
	}
	return t, rows.Err()
}

// WeeklyBySchool computes, per school and week of the calendar, the
// absent half-days over the half-days possible, and the alerts opened.
func (s *sqliteStore) WeeklyBySchool(ctx context.Context) ([]Week, error) {
	// The Monday of a date: date(d, '-N days') with N = (weekday+6)%7.
	const monday = "date(%s, '-' || ((CAST(strftime('%%w', %s) AS INTEGER) + 6) %% 7) || ' days')"
	wk := func(col string) string { return fmt.Sprintf(monday, col, col) }
	q := `WITH weeks AS (SELECT ` + wk("date") + ` AS week, SUM(half_days) AS halves FROM calendar GROUP BY 1),
	  schools AS (SELECT school, COUNT(*) AS n FROM students GROUP BY school),
	  absent AS (SELECT s.school, ` + wk("e.date") + ` AS week, COUNT(*) AS n
	    FROM events e JOIN students s ON s.id = e.student WHERE e.kind = '` + kindAbsence + `' GROUP BY 1, 2),
	  opened AS (SELECT s.school, ` + wk("a.opened") + ` AS week, COUNT(*) AS n
	    FROM alerts a JOIN students s ON s.id = a.student GROUP BY 1, 2)
	SELECT sc.school, w.week, COALESCE(ab.n, 0), sc.n * w.halves, COALESCE(op.n, 0)
	FROM schools sc CROSS JOIN weeks w
	LEFT JOIN absent ab ON ab.school = sc.school AND ab.week = w.week
	LEFT JOIN opened op ON op.school = sc.school AND op.week = w.week
	WHERE w.halves > 0
	ORDER BY sc.school, w.week`
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Week
	for rows.Next() {
		var w Week
		if err := rows.Scan(&w.School, &w.Week, &w.AbsentHalves, &w.PossibleHalfs, &w.AlertsOpened); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func (s *sqliteStore) AddAction(ctx context.Context, a Action) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO actions (alert, student, kind, assignee, note, outcome, by, at) VALUES (?,?,?,?,?,?,?,?)",
		a.AlertID, a.Student, a.Kind, a.Assignee, a.Note, a.Outcome, a.By, a.At.UTC().Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("record action: %w", err)
	}
	return nil
}

func (s *sqliteStore) Actions(ctx context.Context, alertID string) ([]Action, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT alert, student, kind, assignee, note, outcome, by, at FROM actions WHERE alert = ? ORDER BY seq", alertID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var a Action
		var at string
		if err := rows.Scan(&a.AlertID, &a.Student, &a.Kind, &a.Assignee, &a.Note, &a.Outcome, &a.By, &at); err != nil {
			return nil, err
		}
		a.At, _ = time.Parse(time.RFC3339, at)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *sqliteStore) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT stage, origin, line, col, reason, raw FROM dead_letters LIMIT ?", limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var l DeadLetter
		if err := rows.Scan(&l.Stage, &l.Origin, &l.Line, &l.Column, &l.Reason, &l.Raw); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
