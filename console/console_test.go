package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/console"
)

// fixture writes a two-school academy: A1 (school A) with an open alert
// and one cleared, B1 (school B) with an open alert, A2 and B2 without.
func fixture(t *testing.T) console.Inputs {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return console.Inputs{
		Students: write("students.csv", "student_id,school_id,class_id,level\nA1,A,A-6a,6e\nA2,A,A-6a,6e\nB1,B,B-5a,5e\nB2,B,B-5a,5e\n"),
		Alerts: write("alerts.csv", `student_id,risk,alert_level,reason_codes,reason,open_alerts,open_alert_count,alert_history
A1,0.8,alert,ABS_RATE,absences 30 % over 4 weeks,a1x:ABS_RATE:2025-09-10,1,a1y:MARK_LOW:2025-09-02:2025-09-04;a1x:ABS_RATE:2025-09-10:
A2,0.1,ok,,,,0,
B1,0.6,alert,INACTIVE,no platform activity for 40 days,b1x:INACTIVE:2025-09-09,1,b1x:INACTIVE:2025-09-09:
B2,0,ok,,,,0,
`),
		// Week of 2025-09-01: A1 absent 3 half-days (one row is a
		// correction, not an absence), B1 1; week of 2025-09-08: A1 1.
		Absences: write("absences.csv", "student_id,date,half,corrects\nA1,2025-09-01,AM,\nA1,2025-09-02,AM,\nA1,2025-09-02,PM,\nA1,2025-09-03,AM,x\nB1,2025-09-03,AM,\nA1,2025-09-08,AM,\n"),
		Marks:    write("grades.csv", "student_id,subject,period,mark,status\nA1,maths,T1,8.5,ok\nA1,francais,T1,,missing\n"),
		Activity: write("activity.csv", "student_id,date\nA1,2025-09-03\nB1,2025-09-01\n"),
		// Two weeks of school: 9 half-days each (Wednesday morning only).
		Calendar:    write("calendar.csv", "date,half_days\n2025-09-01,2\n2025-09-02,2\n2025-09-03,1\n2025-09-04,2\n2025-09-05,2\n2025-09-08,2\n2025-09-09,2\n2025-09-10,1\n2025-09-11,2\n2025-09-12,2\n"),
		DeadLetters: write("dead.csv", "stage,origin,line,column,reason,raw\nabsences,absences.csv,7,date,not a date,\"A1,2025-13-01\"\n"),
		TermEnds:    "2025-11-30,2026-03-15,2026-07-03",
	}
}

func newStore(t *testing.T, in console.Inputs) console.Store {
	t.Helper()
	ctx := context.Background()
	s, err := console.OpenSQLite(ctx, filepath.Join(t.TempDir(), "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := console.Load(ctx, s, in); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadAndQueries(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, fixture(t))
	open, err := s.OpenAlerts(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != "a1x" || open[0].Student.ID != "A1" || open[0].Student.Reason != "absences 30 % over 4 weeks" {
		t.Errorf("open alerts of A: %+v", open)
	}
	if all, _ := s.OpenAlerts(ctx, ""); len(all) != 2 || all[0].Student.ID != "A1" {
		t.Errorf("open alerts of every school, riskiest first: %+v", all)
	}
	hist, _ := s.AlertHistory(ctx, "A1")
	if len(hist) != 2 || hist[0].Cleared != "2025-09-04" || hist[1].Cleared != "" {
		t.Errorf("history of A1: %+v", hist)
	}
	tl, _ := s.Timeline(ctx, "A1")
	if len(tl.Absences) != 4 || len(tl.Activity) != 1 || len(tl.Marks) != 1 || tl.Marks[0].Date != "2025-11-30" {
		t.Errorf("timeline of A1: %+v", tl)
	}
	weeks, err := s.WeeklyBySchool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]console.Week{
		"A 2025-09-01": {AbsentHalves: 3, PossibleHalfs: 2 * 9, AlertsOpened: 1},
		"A 2025-09-08": {AbsentHalves: 1, PossibleHalfs: 2 * 9, AlertsOpened: 1},
		"B 2025-09-01": {AbsentHalves: 1, PossibleHalfs: 2 * 9},
		"B 2025-09-08": {AbsentHalves: 0, PossibleHalfs: 2 * 9, AlertsOpened: 1},
	}
	if len(weeks) != len(want) {
		t.Fatalf("weeks: %+v", weeks)
	}
	for _, w := range weeks {
		k := w.School + " " + w.Week
		wa, ok := want[k]
		if !ok || w.AbsentHalves != wa.AbsentHalves || w.PossibleHalfs != wa.PossibleHalfs || w.AlertsOpened != wa.AlertsOpened {
			t.Errorf("week %s: %+v, want %+v", k, w, wa)
		}
	}
	dl, _ := s.DeadLetters(ctx, 10)
	if len(dl) != 1 || dl[0].Reason != "not a date" {
		t.Errorf("dead letters: %+v", dl)
	}
}

// TestActionsSurviveReload: actions are kept when a new run's outputs are
// loaded into the same store.
func TestActionsSurviveReload(t *testing.T) {
	ctx := context.Background()
	in := fixture(t)
	path := filepath.Join(t.TempDir(), "console.db")
	s, err := console.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := console.Load(ctx, s, in); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	if err := s.AddAction(ctx, console.Action{AlertID: "a1x", Student: "A1", Kind: "acknowledge", By: "t", At: at}); err != nil {
		t.Fatal(err)
	}
	if err := console.Load(ctx, s, in); err != nil {
		t.Fatal(err)
	}
	acts, _ := s.Actions(ctx, "a1x")
	if len(acts) != 1 || acts[0].By != "t" || !acts[0].At.Equal(at) {
		t.Errorf("actions after reload: %+v", acts)
	}
}

// client is a signed-in browser without JavaScript: a cookie jar and the
// CSRF token of the last page.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	resp, err := c.c.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

func (c *client) post(path string, form url.Values) (int, *http.Response) {
	c.t.Helper()
	resp, err := c.c.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp
}

func (c *client) login(name, password string) int {
	c.t.Helper()
	c.get("/login")
	code, _ := c.post("/login", url.Values{"csrf": {c.csrf}, "name": {name}, "password": {password}})
	return code
}

func server(t *testing.T) *httptest.Server {
	t.Helper()
	var users []console.User
	for _, u := range []struct {
		name   string
		role   console.Role
		school string
	}{{"ta", console.RoleTeacher, "A"}, {"tb", console.RoleTeacher, "B"}, {"st", console.RoleSteering, ""}, {"ad", console.RoleAdmin, ""}} {
		nu, err := console.NewUser(u.name, u.role, u.school, "pw-"+u.name)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, nu)
	}
	srv, err := console.New(console.Options{Store: newStore(t, fixture(t)), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

func TestLoginAndSession(t *testing.T) {
	ts := server(t)
	c := newClient(t, ts.URL)
	if code, _ := c.get("/alerts"); code != http.StatusSeeOther {
		t.Errorf("/alerts signed out: %d, want a redirect to /login", code)
	}
	if code := c.login("ta", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", code)
	}
	if code := c.login("nobody", "pw-ta"); code != http.StatusUnauthorized {
		t.Errorf("unknown user: %d", code)
	}
	// The sign-in form needs its token too.
	c.get("/login")
	if code, _ := c.post("/login", url.Values{"name": {"ta"}, "password": {"pw-ta"}}); code != http.StatusForbidden {
		t.Errorf("sign in without the CSRF token: %d, want 403", code)
	}
	c.get("/login")
	code, resp := c.post("/login", url.Values{"csrf": {c.csrf}, "name": {"ta"}, "password": {"pw-ta"}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "vigie_session" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict", cookie)
	}
	if code, body := c.get("/alerts"); code != http.StatusOK || !strings.Contains(body, `<span id="open-count">1</span>`) {
		t.Errorf("/alerts as ta: %d\n%s", code, body)
	}
	if _, body := c.get("/alerts"); strings.Contains(body, "B1") {
		t.Error("a teacher of A sees a student of B in the alerts list")
	}
	if code, _ := c.post("/logout", url.Values{"csrf": {c.csrf}}); code != http.StatusSeeOther {
		t.Errorf("sign out: %d", code)
	}
	if code, _ := c.get("/alerts"); code != http.StatusSeeOther {
		t.Errorf("/alerts after sign out: %d", code)
	}
}

func TestScope(t *testing.T) {
	ts := server(t)
	for _, tc := range []struct {
		user, path string
		want       int
	}{
		{"ta", "/students/A1", http.StatusOK},
		{"ta", "/students/B1", http.StatusNotFound},
		{"ta", "/students/nobody", http.StatusNotFound},
		{"ta", "/steering", http.StatusForbidden},
		{"ta", "/pipeline", http.StatusForbidden},
		{"tb", "/students/B1", http.StatusOK},
		{"tb", "/students/A1", http.StatusNotFound},
		{"st", "/steering", http.StatusOK},
		{"st", "/alerts", http.StatusForbidden},
		{"st", "/students/A1", http.StatusForbidden},
		{"ad", "/students/B1", http.StatusOK},
		{"ad", "/pipeline", http.StatusOK},
	} {
		t.Run(tc.user+tc.path, func(t *testing.T) {
			c := newClient(t, ts.URL)
			if code := c.login(tc.user, "pw-"+tc.user); code != http.StatusSeeOther {
				t.Fatalf("sign in: %d", code)
			}
			if code, body := c.get(tc.path); code != tc.want {
				t.Errorf("GET %s as %s: %d, want %d\n%s", tc.path, tc.user, code, tc.want, body)
			}
		})
	}
}

func TestActions(t *testing.T) {
	ts := server(t)
	c := newClient(t, ts.URL)
	c.login("ta", "pw-ta")
	c.get("/students/A1")
	post := func(alert string, form url.Values) int {
		t.Helper()
		code, _ := c.post("/alerts/"+alert+"/actions", form)
		return code
	}
	for _, tc := range []struct {
		name  string
		alert string
		form  url.Values
		want  int
	}{
		{"no token", "a1x", url.Values{"kind": {"acknowledge"}}, http.StatusForbidden},
		{"wrong token", "a1x", url.Values{"kind": {"acknowledge"}, "csrf": {"x" + c.csrf}}, http.StatusForbidden},
		{"alert of another school", "b1x", url.Values{"kind": {"acknowledge"}, "csrf": {c.csrf}}, http.StatusNotFound},
		{"unknown kind", "a1x", url.Values{"kind": {"delete"}, "csrf": {c.csrf}}, http.StatusBadRequest},
		{"close without outcome", "a1x", url.Values{"kind": {"close"}, "csrf": {c.csrf}}, http.StatusBadRequest},
		{"acknowledge", "a1x", url.Values{"kind": {"acknowledge"}, "csrf": {c.csrf}}, http.StatusSeeOther},
		{"assign", "a1x", url.Values{"kind": {"assign"}, "assignee": {"CPE Martin"}, "csrf": {c.csrf}}, http.StatusSeeOther},
		{"note", "a1x", url.Values{"kind": {"note"}, "note": {"called the family"}, "csrf": {c.csrf}}, http.StatusSeeOther},
		{"close", "a1x", url.Values{"kind": {"close"}, "outcome": {"followed up"}, "csrf": {c.csrf}}, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.alert, tc.form); got != tc.want {
				t.Errorf("POST %s: %d, want %d", tc.name, got, tc.want)
			}
		})
	}
	_, body := c.get("/students/A1")
	for _, want := range []string{"<td>acknowledge</td>", "to CPE Martin", "called the family", "closed by ta: followed up"} {
		if !strings.Contains(body, want) {
			t.Errorf("student page lacks %q", want)
		}
	}
	if strings.Count(body, `class="action"`) != 4 {
		t.Errorf("%d actions shown, want 4", strings.Count(body, `class="action"`))
	}
	// Nothing was recorded on school B's alert.
	b := newClient(t, ts.URL)
	b.login("tb", "pw-tb")
	if _, body := b.get("/students/B1"); strings.Contains(body, `class="action"`) {
		t.Error("an action was recorded on another school's alert")
	}
}

func TestNoScriptAndHeaders(t *testing.T) {
	ts := server(t)
	c := newClient(t, ts.URL)
	c.login("ad", "pw-ad")
	for _, p := range []string{"/alerts", "/students/A1", "/steering", "/pipeline"} {
		resp, err := c.c.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(strings.ToLower(string(b)), "<script") {
			t.Errorf("%s has a script", p)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
	}
}
