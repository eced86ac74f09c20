package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigie-edu/vigie/internal/readback"
)

// chromium returns Debian's Chromium, or skips the test when it is not
// installed (fails instead when VIGIE_REQUIRE_CHROMIUM=1, as in .ci/run).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("VIGIE_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium) and VIGIE_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium is not installed (apt-get install chromium); set VIGIE_REQUIRE_CHROMIUM=1 to fail instead")
	return ""
}

// consoleErrors collects the errors and warnings the browser reports:
// console calls, uncaught exceptions and its own log (CSP violations,
// failed loads).
type consoleErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (c *consoleErrors) watch(ctx context.Context) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				c.mu.Lock()
				c.msgs = append(c.msgs, string(m.Type)+" "+m.Source+": "+m.Text+" "+m.URL)
				c.mu.Unlock()
			}
		}
	}()
}

// take returns and forgets the messages so far, after letting the ones of
// the last page arrive.
func (c *consoleErrors) take() []string {
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.msgs
	c.msgs = nil
	return m
}

// TestConsoleBrowser runs `vigie console --demo` on a copy of the bundled
// academy and drives it with headless Chromium: every page loads without
// a console error and shows the numbers of the run, an acknowledgement
// persists across a reload, a teacher of one school cannot open a student
// of another (404) nor steering a student page (403), and a POST without
// its CSRF token is refused. Screenshots of the main pages go to the
// test's artifact directory (go test -artifacts) and, when
// VIGIE_SCREENSHOTS names a folder, there too.
func TestConsoleBrowser(t *testing.T) {
	chrome := chromium(t)
	file := earlyWarning(t)
	dir := filepath.Dir(file)
	copyFile(t, filepath.Join("..", "..", "examples", "data", "calendar.csv"), filepath.Join(dir, "examples", "data", "calendar.csv"))

	addrc := make(chan string, 1)
	release := make(chan struct{})
	consoleHook = func(addr string, stop func()) {
		addrc <- addr
		<-release
		stop()
	}
	defer func() { consoleHook = nil }()
	var stdout, stderr bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"console", "--in-process", "--demo", "--listen", "127.0.0.1:0", file}, &stdout, &stderr)
	}()
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case code := <-exited:
		t.Fatalf("console exited %d before serving:\n%s%s", code, stdout.String(), stderr.String())
	case <-time.After(3 * time.Minute):
		t.Fatal("console did not start")
	}
	defer func() {
		close(release)
		if code := <-exited; code != exitOK {
			t.Errorf("console exited %d:\n%s", code, stderr.String())
		}
	}()

	// What the run produced, read independently of the console: the
	// summary it printed and the alerts output.
	summary := map[string][4]string{}
	row := regexp.MustCompile(`^\s*(\S+)\s+(source|rule|sink|join|union|alerts)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$`)
	for _, line := range strings.Split(stdout.String(), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			summary[m[1]] = [4]string{m[3], m[4], m[5], m[6]}
		}
	}
	if len(summary) != 9 {
		t.Fatalf("no run summary in the console's output:\n%s", stdout.String())
	}
	rows := readback.CSV(t, filepath.Join(dir, "out", "alerts.csv"))
	h := readback.Columns(rows[0])
	openBySchool := map[string]int{}
	studentsBySchool := map[string]int{}
	var alertedA, studentB string
	const schoolA, schoolB = "0751020B", "0921049R"
	for _, r := range rows[1:] {
		school := r[h["school_id"]]
		studentsBySchool[school]++
		for _, a := range strings.Split(r[h["open_alerts"]], ";") {
			if a != "" {
				openBySchool[school]++
				if school == schoolA && alertedA == "" {
					alertedA = r[h["student_id"]]
				}
			}
		}
		if school == schoolB && studentB == "" {
			studentB = r[h["student_id"]]
		}
	}
	if alertedA == "" || studentB == "" {
		t.Fatalf("the bundled academy has no open alert in %s or no student in %s", schoolA, schoolB)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	errs := &consoleErrors{}
	errs.watch(ctx)

	shots := []string{t.ArtifactDir()}
	if d := os.Getenv("VIGIE_SCREENSHOTS"); d != "" {
		shots = append(shots, d)
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		for _, d := range shots {
			if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a missing element fails fast
		defer cancel()
		s, err := chromedp.Run(qctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	// open loads a page and returns its HTTP status.
	open := func(step string, actions ...chromedp.Action[chromedp.Void]) int64 {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, actions...)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return resp.Status
	}
	noErrors := func(page string) {
		t.Helper()
		if m := errs.take(); len(m) > 0 {
			t.Errorf("%s: the browser reported:\n%s", page, strings.Join(m, "\n"))
		}
	}
	login := func(name string) {
		t.Helper()
		if st := open("sign-in page", chromedp.Navigate(base+"/login")); st != http.StatusOK {
			t.Fatalf("/login: %d", st)
		}
		do("sign in as "+name,
			chromedp.SendKeys(chromedp.ID("name"), name),
			chromedp.SendKeys(chromedp.ID("password"), demoPassword),
			chromedp.Click(chromedp.ID("signin")),
			chromedp.WaitVisible(chromedp.ID("whoami")),
		)
		noErrors("sign in as " + name)
	}
	logout := func() {
		t.Helper()
		do("sign out", chromedp.Click(chromedp.CSS(".who button")), chromedp.WaitVisible(chromedp.ID("signin")))
	}

	// A teacher of school A: the open alerts of the school.
	login("teacher-" + schoolA)
	if st := open("alerts page", chromedp.Navigate(base+"/alerts")); st != http.StatusOK {
		t.Fatalf("/alerts: %d", st)
	}
	screenshot("alerts")
	noErrors("alerts")
	if got := text("#open-count"); got != strconv.Itoa(openBySchool[schoolA]) {
		t.Errorf("alerts page shows %s open alerts, the run's output has %d in %s", got, openBySchool[schoolA], schoolA)
	}
	if !strings.Contains(text("#notice"), "never a decision") {
		t.Error("the alerts page does not say an alert is not a decision")
	}
	if n := count("#alerts tbody tr[data-alert]"); n != openBySchool[schoolA] {
		t.Errorf("%d alert rows, want %d", n, openBySchool[schoolA])
	}

	// The student's page: timeline with the alert marked, then acknowledge.
	if st := open("student page", chromedp.Navigate(base+"/students/"+alertedA)); st != http.StatusOK {
		t.Fatalf("/students/%s: %d", alertedA, st)
	}
	screenshot("student")
	noErrors("student")
	if count("#timeline line.opened") == 0 {
		t.Error("the timeline marks no alert opening")
	}
	if n := count("tr.action"); n != 0 {
		t.Fatalf("%d actions before any was taken", n)
	}
	open("acknowledge", chromedp.Click(chromedp.CSS("button.ack")))
	open("reload", chromedp.Reload())
	noErrors("student after acknowledge")
	if got := text("tr.action"); !strings.Contains(got, "acknowledge") || !strings.Contains(got, "teacher-"+schoolA) {
		t.Errorf("after reload the action reads %q, want an acknowledge by teacher-%s", got, schoolA)
	}
	open("alerts after acknowledge", chromedp.Navigate(base+"/alerts"))
	if got := text("#alerts"); !strings.Contains(got, "acknowledge by teacher-"+schoolA) {
		t.Errorf("the alerts list does not show the acknowledgement:\n%s", got)
	}

	// A POST whose CSRF token was removed is refused.
	open("student page again", chromedp.Navigate(base+"/students/"+alertedA))
	do("drop the token", chromedp.RemoveAttribute(chromedp.CSS(`form:has(button.ack) input[name="csrf"]`), "name", chromedp.NodeReady))
	if st := open("post without token", chromedp.Click(chromedp.CSS("button.ack"))); st != http.StatusForbidden {
		t.Errorf("a POST without its token answered %d, want 403", st)
	}
	if got := text("#error"); !strings.Contains(got, "CSRF") {
		t.Errorf("a POST without its token got %q", got)
	}
	errs.take() // the browser logs the 403 itself
	open("count actions", chromedp.Navigate(base+"/students/"+alertedA))
	if n := count("tr.action"); n != 1 {
		t.Errorf("%d actions recorded after the refused POST, want 1", n)
	}

	// A student of school B, by direct URL: 404, and nothing of them shown.
	if st := open("student of school B", chromedp.Navigate(base+"/students/"+studentB)); st != http.StatusNotFound {
		t.Errorf("teacher of %s opening %s (school %s): status %d, want 404", schoolA, studentB, schoolB, st)
	}
	if body := text("main"); strings.Contains(body, schoolB) {
		t.Errorf("the 404 page names the student's school:\n%s", body)
	}
	if st := open("steering as a teacher", chromedp.Navigate(base+"/steering")); st != http.StatusForbidden {
		t.Errorf("teacher opening /steering: %d, want 403", st)
	}
	errs.take()
	logout()

	// Steering: aggregates by school, no student page.
	login("steering")
	open("steering page", chromedp.Navigate(base+"/steering"))
	screenshot("steering")
	noErrors("steering")
	if count("#absence-rate polyline") != len(studentsBySchool) {
		t.Errorf("the absence-rate chart has %d lines, want one per school (%d)", count("#absence-rate polyline"), len(studentsBySchool))
	}
	for school, n := range studentsBySchool {
		if got := text(`#schools tr[data-school="` + school + `"] td.students`); got != strconv.Itoa(n) {
			t.Errorf("steering: school %s has %s students, the run's output %d", school, got, n)
		}
		if got := text(`#schools tr[data-school="` + school + `"] td.open`); got != strconv.Itoa(openBySchool[school]) {
			t.Errorf("steering: school %s has %s open alerts, the run's output %d", school, got, openBySchool[school])
		}
	}
	if strings.Contains(text("main"), alertedA) {
		t.Error("the steering page names a student")
	}
	if st := open("student as steering", chromedp.Navigate(base+"/students/"+alertedA)); st != http.StatusForbidden {
		t.Errorf("steering opening a student page: %d, want 403", st)
	}
	errs.take()
	logout()

	// Admin: the pipeline graph with the run's counts.
	login("admin")
	open("pipeline page", chromedp.Navigate(base+"/pipeline"))
	screenshot("pipeline")
	noErrors("pipeline")
	if got := text("#run-status"); got != "ok" {
		t.Errorf("run status %q", got)
	}
	if n := count("#graph g.stage"); n != len(summary) {
		t.Errorf("the graph has %d stages, the summary %d", n, len(summary))
	}
	for stage, want := range summary {
		for i, col := range []string{"in", "out", "dead", "batches"} {
			if got := text(`#stages tr[data-stage="` + stage + `"] td.` + col); got != want[i] {
				t.Errorf("pipeline page: stage %s %s = %s, the summary says %s", stage, col, got, want[i])
			}
		}
	}
	open("alerts as admin", chromedp.Navigate(base+"/alerts"))
	total := 0
	for _, n := range openBySchool {
		total += n
	}
	if got := text("#open-count"); got != strconv.Itoa(total) {
		t.Errorf("admin sees %s open alerts, want %d (every school)", got, total)
	}
	noErrors("alerts as admin")
}
