// Package console is Vigie's web console over a run's outputs: for a
// teaching team, the open alerts of its school with their reasons, each
// student's timeline and the actions taken (acknowledge, assign, note,
// close with an outcome, each recorded with who and when); for steering,
// absence rates and alert counts by school and week; for a data engineer,
// the pipeline graph with per-stage counts and the dead letters.
//
// Accounts have roles (teacher: one school; steering: aggregates only;
// admin), bcrypt password hashes, HttpOnly SameSite=Strict session cookies
// and a CSRF token checked on every POST. No page shows a student outside
// the viewer's scope: a teacher asking for a student of another school gets
// 404, steering gets 403 on every student page.
//
// The pages carry no JavaScript; charts are SVG drawn on the server.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configure New.
type Options struct {
	Store Store
	Users []User
	// Run shows the pipeline's run on the data engineer's page (nil: no
	// run).
	Run func() RunView
	Log *slog.Logger
	// Now stamps actions (nil: time.Now).
	Now func() time.Time
}

// Server is the console's HTTP handler.
type Server struct {
	opts     Options
	users    map[string]*User
	sessions *sessions
	tmpl     map[string]*template.Template
	mux      *http.ServeMux
}

// New returns the console over opts.Store.
func New(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("console: no store")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, users: map[string]*User{}, sessions: &sessions{m: map[string]*session{}}, tmpl: map[string]*template.Template{}}
	for i := range opts.Users {
		u := opts.Users[i]
		s.users[u.Name] = &u
	}
	funcs := template.FuncMap{
		"pct":   func(v float64) string { return fmt.Sprintf("%.1f %%", 100*v) },
		"risk":  func(v float64) string { return fmt.Sprintf("%.2f", v) },
		"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
		"split": func(s string) []string { return strings.FieldsFunc(s, func(r rune) bool { return r == ';' }) },
	}
	pages, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		s.tmpl[name] = t
	}
	static, _ := fs.Sub(assets, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.auth(nil, s.logout))
	mux.HandleFunc("GET /{$}", s.auth(nil, s.home))
	mux.HandleFunc("GET /alerts", s.auth([]Role{RoleTeacher, RoleAdmin}, s.alerts))
	mux.HandleFunc("GET /students/{id}", s.auth([]Role{RoleTeacher, RoleAdmin}, s.student))
	mux.HandleFunc("POST /alerts/{id}/actions", s.auth([]Role{RoleTeacher, RoleAdmin}, s.action))
	mux.HandleFunc("GET /steering", s.auth([]Role{RoleSteering, RoleAdmin}, s.steering))
	mux.HandleFunc("GET /pipeline", s.auth([]Role{RoleAdmin}, s.pipeline))
	s.mux = mux
	return s, nil
}

// ServeHTTP serves the console with security headers on every answer: a
// content security policy that allows no script at all.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// page is what every template gets.
type page struct {
	Title string
	User  *User
	CSRF  string
	Data  any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, ss *session, title string, data any) {
	p := page{Title: title, Data: data}
	if ss != nil {
		p.User, p.CSRF = ss.user, ss.csrf
	}
	var b strings.Builder
	if err := s.tmpl[name].Execute(&b, p); err != nil {
		s.opts.Log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, ss *session, status int, msg string) {
	s.render(w, r, status, "error", ss, http.StatusText(status), msg)
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, ss *session, err error) {
	s.opts.Log.Error("console", "path", r.URL.Path, "err", err)
	s.fail(w, r, ss, http.StatusInternalServerError, "The console could not read its store.")
}

type handler func(w http.ResponseWriter, r *http.Request, ss *session)

// auth lets a signed-in user with one of roles (nil: any) through; a POST
// must also carry the session's CSRF token.
func (s *Server) auth(roles []Role, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := s.sessions.get(r)
		if ss == nil || ss.user == nil {
			if r.Method != http.MethodGet {
				s.fail(w, r, nil, http.StatusForbidden, "Sign in first.")
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !validCSRF(ss, r) {
			s.fail(w, r, ss, http.StatusForbidden, "This form has expired or did not come from the console (CSRF token missing or wrong). Reload the page and try again.")
			return
		}
		if roles != nil && !slices.Contains(roles, ss.user.Role) {
			s.fail(w, r, ss, http.StatusForbidden, "Your account cannot see this page.")
			return
		}
		h(w, r, ss)
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	ss := s.sessions.get(r)
	if ss == nil {
		ss = s.sessions.start(w, r, nil)
	}
	s.render(w, r, http.StatusOK, "login", ss, "Sign in", nil)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ss := s.sessions.get(r)
	if !validCSRF(ss, r) {
		s.fail(w, r, nil, http.StatusForbidden, "This form has expired (CSRF token missing or wrong). Reload the sign-in page.")
		return
	}
	u := s.users[r.PostFormValue("name")]
	if !checkPassword(u, r.PostFormValue("password")) {
		s.render(w, r, http.StatusUnauthorized, "login", ss, "Sign in", "Unknown name or wrong password.")
		return
	}
	s.sessions.start(w, r, u)
	s.opts.Log.Info("console: sign in", "user", u.Name, "role", u.Role)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss *session) {
	s.sessions.end(w, ss)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, ss *session) {
	switch ss.user.Role {
	case RoleSteering:
		http.Redirect(w, r, "/steering", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/alerts", http.StatusSeeOther)
	}
}

// scope is the school a user may see ("" : every school).
func scope(u *User) string {
	if u.Role == RoleTeacher {
		return u.School
	}
	return ""
}

type alertsData struct {
	School  string
	Class   string
	Classes []string
	Alerts  []Alert
	Total   int
}

func (s *Server) alerts(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx := r.Context()
	school := scope(ss.user)
	all, err := s.opts.Store.OpenAlerts(ctx, school)
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	d := alertsData{School: school, Class: r.URL.Query().Get("class"), Total: len(all)}
	seen := map[string]bool{}
	for _, a := range all {
		if !seen[a.Student.Class] {
			seen[a.Student.Class] = true
			d.Classes = append(d.Classes, a.Student.Class)
		}
		if d.Class == "" || a.Student.Class == d.Class {
			d.Alerts = append(d.Alerts, a)
		}
	}
	sort.Strings(d.Classes)
	title := "Open alerts"
	if school != "" {
		title += " — school " + school
	}
	s.render(w, r, http.StatusOK, "alerts", ss, title, d)
}

type studentData struct {
	Student Student
	Chart   template.HTML
	History []spanView
	Kinds   []string
	Outcome []string
}

type spanView struct {
	AlertSpan
	Actions []Action
	Closed  *Action // the close action, if any
}

// visibleStudent returns the student if the user may see them; ok false
// means 404 (also for a student of another school: their existence is not
// revealed).
func (s *Server) visibleStudent(ctx context.Context, u *User, id string) (Student, bool, error) {
	st, ok, err := s.opts.Store.Student(ctx, id)
	if err != nil || !ok {
		return st, false, err
	}
	if sc := scope(u); sc != "" && st.School != sc {
		return st, false, nil
	}
	return st, true, nil
}

func (s *Server) student(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx := r.Context()
	st, ok, err := s.visibleStudent(ctx, ss.user, r.PathValue("id"))
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	if !ok {
		s.fail(w, r, ss, http.StatusNotFound, "No such student in your scope.")
		return
	}
	hist, err := s.opts.Store.AlertHistory(ctx, st.ID)
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	tl, err := s.opts.Store.Timeline(ctx, st.ID)
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	d := studentData{Student: st, Chart: timelineChart(tl, hist), Kinds: ActionKinds, Outcome: Outcomes}
	for _, h := range hist {
		acts, err := s.opts.Store.Actions(ctx, h.ID)
		if err != nil {
			s.internal(w, r, ss, err)
			return
		}
		v := spanView{AlertSpan: h, Actions: acts}
		for i := range acts {
			if acts[i].Kind == "close" {
				v.Closed = &acts[i]
			}
		}
		d.History = append(d.History, v)
	}
	s.render(w, r, http.StatusOK, "student", ss, "Student "+st.ID, d)
}

func (s *Server) action(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx := r.Context()
	span, ok, err := s.opts.Store.AlertSpan(ctx, r.PathValue("id"))
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	var st Student
	if ok {
		st, ok, err = s.visibleStudent(ctx, ss.user, span.Student)
		if err != nil {
			s.internal(w, r, ss, err)
			return
		}
	}
	if !ok {
		s.fail(w, r, ss, http.StatusNotFound, "No such alert in your scope.")
		return
	}
	a := Action{AlertID: span.ID, Student: st.ID, Kind: r.PostFormValue("kind"), By: ss.user.Name, At: s.opts.Now()}
	switch a.Kind {
	case "acknowledge":
	case "assign":
		a.Assignee = strings.TrimSpace(r.PostFormValue("assignee"))
		if a.Assignee == "" {
			s.fail(w, r, ss, http.StatusBadRequest, "Assign to whom? Give a name.")
			return
		}
	case "note":
		a.Note = strings.TrimSpace(r.PostFormValue("note"))
		if a.Note == "" {
			s.fail(w, r, ss, http.StatusBadRequest, "The note is empty.")
			return
		}
	case "close":
		a.Outcome, a.Note = r.PostFormValue("outcome"), strings.TrimSpace(r.PostFormValue("note"))
		if !slices.Contains(Outcomes, a.Outcome) {
			s.fail(w, r, ss, http.StatusBadRequest, "Closing needs an outcome.")
			return
		}
	default:
		s.fail(w, r, ss, http.StatusBadRequest, "Unknown action.")
		return
	}
	if err := s.opts.Store.AddAction(ctx, a); err != nil {
		s.internal(w, r, ss, err)
		return
	}
	s.opts.Log.Info("console: action", "user", a.By, "alert", a.AlertID, "kind", a.Kind)
	http.Redirect(w, r, "/students/"+st.ID+"#alert-"+span.ID, http.StatusSeeOther)
}

type steeringData struct {
	Rate, Opened template.HTML
	Schools      []schoolTotal
}

type schoolTotal struct {
	School                   string
	Students, Alerts, Opened int
	Rate                     float64
}

func (s *Server) steering(w http.ResponseWriter, r *http.Request, ss *session) {
	ctx := r.Context()
	weeks, err := s.opts.Store.WeeklyBySchool(ctx)
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	var xs []string
	idx := map[string]int{}
	var schools []string
	rate := map[string][]float64{}
	opened := map[string][]float64{}
	tot := map[string]*schoolTotal{}
	var absent, possible = map[string]int{}, map[string]int{}
	for _, wk := range weeks {
		if _, ok := idx[wk.Week]; !ok {
			idx[wk.Week] = len(xs)
			xs = append(xs, wk.Week)
		}
		if tot[wk.School] == nil {
			tot[wk.School] = &schoolTotal{School: wk.School}
			schools = append(schools, wk.School)
		}
		tot[wk.School].Opened += wk.AlertsOpened
		absent[wk.School] += wk.AbsentHalves
		possible[wk.School] += wk.PossibleHalfs
	}
	sort.Strings(xs)
	for i, x := range xs {
		idx[x] = i
	}
	for _, sc := range schools {
		rate[sc] = make([]float64, len(xs))
		opened[sc] = make([]float64, len(xs))
	}
	for _, wk := range weeks {
		rate[wk.School][idx[wk.Week]] = wk.Rate()
		opened[wk.School][idx[wk.Week]] = float64(wk.AlertsOpened)
	}
	var rs, os []series
	for _, sc := range schools {
		rs = append(rs, series{Name: sc, Values: rate[sc]})
		os = append(os, series{Name: sc, Values: opened[sc]})
	}
	d := steeringData{
		Rate:   lineChart("absence-rate", "Absence rate by week", xs, rs, func(v float64) string { return fmt.Sprintf("%.0f %%", 100*v) }),
		Opened: lineChart("alerts-opened", "Alerts opened by week", xs, os, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
	}
	open, err := s.opts.Store.OpenAlerts(ctx, "")
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	students, err := s.opts.Store.Students(ctx, "")
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	for _, st := range students {
		if t := tot[st.School]; t != nil {
			t.Students++
		}
	}
	for _, a := range open {
		if t := tot[a.Student.School]; t != nil {
			t.Alerts++
		}
	}
	for _, sc := range schools {
		t := tot[sc]
		if possible[sc] > 0 {
			t.Rate = float64(absent[sc]) / float64(possible[sc])
		}
		d.Schools = append(d.Schools, *t)
	}
	s.render(w, r, http.StatusOK, "steering", ss, "Steering", d)
}

type pipelineData struct {
	Run         RunView
	Graph       template.HTML
	DeadLetters []DeadLetter
}

func (s *Server) pipeline(w http.ResponseWriter, r *http.Request, ss *session) {
	d := pipelineData{}
	if s.opts.Run != nil {
		d.Run = s.opts.Run()
		d.Graph = graphChart(d.Run)
	}
	dl, err := s.opts.Store.DeadLetters(r.Context(), 500)
	if err != nil {
		s.internal(w, r, ss, err)
		return
	}
	d.DeadLetters = dl
	s.render(w, r, http.StatusOK, "pipeline", ss, "Pipeline", d)
}
