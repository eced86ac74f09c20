package xapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/xapi"
)

const authEnv = "VIGIE_TEST_XAPI_AUTH"

// freeAddr returns a loopback address with a port that was free.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncCollect is a collect safe for the endpoint's goroutines.
type syncCollect struct {
	mu   sync.Mutex
	rows []string
	pos  []string
	got  chan struct{}
}

func (c *syncCollect) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	c.mu.Lock()
	c.rows = append(c.rows, conformance.Rows(rec)...)
	c.pos = append(c.pos, string(pos))
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
	return nil
}

func (c *syncCollect) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func (c *syncCollect) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.rows...)
}

// server runs the endpoint until the test ends and returns its URL.
type server struct {
	url   string
	spool string
	rows  *syncCollect
	stop  func() error
}

func startEndpoint(t *testing.T, opts map[string]any) *server {
	t.Helper()
	t.Setenv(authEnv, "lms:s3cret")
	addr := freeAddr(t)
	spool := filepath.Join(t.TempDir(), "spool.jsonl")
	o := map[string]any{"listen": addr, "auth_env": authEnv, "spool": spool, "flush_interval": "50ms"}
	for k, v := range opts {
		o[k] = v
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	ctx, cancel := context.WithCancel(context.Background())
	rows := &syncCollect{got: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- xapi.HTTPSource{}.Read(ctx, protocol.Config{Connector: xapi.HTTPSourceName, BatchRows: 100, Options: o}, mem, rows)
	}()
	s := &server{url: "http://" + addr + xapi.StatementsPath, spool: spool, rows: rows}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(10 * time.Second):
				stopErr = fmt.Errorf("the endpoint did not stop within 10s")
			}
			mem.AssertSize(t, 0)
		})
		return stopErr
	}
	t.Cleanup(func() { s.stop() })
	// Wait until it listens.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint does not listen on %s: %v", addr, err)
		}
		select {
		case err := <-done:
			t.Fatalf("the endpoint ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return s
}

var client = &http.Client{Timeout: 10 * time.Second}

type reply struct {
	status int
	body   string
}

func send(t *testing.T, method, url, body string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Experience-API-Version", "1.0.3")
	req.SetBasicAuth("lms", "s3cret")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, strings.TrimSpace(string(b))}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitRows waits until the endpoint emitted n rows.
func waitRows(t *testing.T, s *server, n int) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if rows := s.rows.snapshot(); len(rows) >= n {
			return rows
		}
		select {
		case <-s.rows.got:
		case <-deadline:
			t.Fatalf("%d rows emitted, want %d", len(s.rows.snapshot()), n)
		}
	}
}

func TestEndpoint(t *testing.T) {
	s := startEndpoint(t, nil)
	simple, long := readTestdata(t, "spec_simple.json"), readTestdata(t, "spec_long.json")
	simpleID, longID := "fd41c918-b88b-4b20-a0a5-a4c32391aaa0", "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"
	noID := `{"actor": {"mbox": "mailto:eve@example.com"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/launched"}, "object": {"id": "http://example.com/a"}}`
	other := strings.Replace(simple, `"sent"`, `"posted"`, 1)
	steps := []struct {
		name       string
		method     string
		query      string
		body       string
		header     map[string]string
		wantStatus int
		wantBody   string // a piece of the body
	}{
		{"put the simple example", "PUT", "?statementId=" + simpleID, simple, nil, 204, ""},
		{"put it again: a no-op", "PUT", "?statementId=" + simpleID, simple, nil, 204, ""},
		{"put other content under its id", "PUT", "?statementId=" + simpleID, other, nil, 409, `"error":"statement fd41c918-b88b-4b20-a0a5-a4c32391aaa0 was received before with other content"`},
		{"put with another id in the body", "PUT", "?statementId=" + longID, simple, nil, 400, `differs from the statementId parameter`},
		{"put without statementId", "PUT", "", simple, nil, 400, `parameter statementId: expected a UUID`},
		{"post the long example and one without id", "POST", "", "[" + long + "," + noID + "]", nil, 200, `["6690e6c9-3ef0-4ed3-8b37-7f3964730bee","`},
		{"post the simple example again", "POST", "", simple, nil, 200, `["fd41c918-b88b-4b20-a0a5-a4c32391aaa0"]`},
		{"post an empty array", "POST", "", "[]", nil, 200, `[]`},
		{"no auth", "POST", "", simple, map[string]string{"Authorization": ""}, 401, `authentication required`},
		{"wrong password", "POST", "", simple, map[string]string{"Authorization": "Basic bG1zOndyb25n"}, 401, `authentication required`},
		{"no version header", "POST", "", simple, map[string]string{"X-Experience-API-Version": ""}, 400, `X-Experience-API-Version: expected 1.0.x, got \"\"`},
		{"version 0.95", "POST", "", simple, map[string]string{"X-Experience-API-Version": "0.95"}, 400, `got \"0.95\"`},
		{"missing actor", "POST", "", `{"verb": {"id": "http://example.com/v"}, "object": {"id": "http://example.com/a"}}`, nil, 400, `"error":"actor: required"`},
		{"missing verb in an array", "POST", "", "[" + noID + `,{"actor": {"mbox": "mailto:a@example.com"}, "object": {"id": "http://example.com/a"}}]`, nil, 400, `statement 2: verb: required`},
		{"missing object", "POST", "", `{"actor": {"mbox": "mailto:a@example.com"}, "verb": {"id": "http://example.com/v"}}`, nil, 400, `object: required`},
		{"bad uuid", "POST", "", strings.Replace(simple, simpleID, "fd41c918", 1), nil, 400, `id: expected a UUID, got \"fd41c918\"`},
		{"bad timestamp", "POST", "", strings.Replace(simple, "2015-11-18T12:17:00+00:00", "18/11/2015 12:17", 1), nil, 400, `timestamp: expected an ISO 8601 timestamp`},
		{"bad statement version", "POST", "", strings.Replace(noID, `{"actor"`, `{"version": "2.0.0", "actor"`, 1), nil, 400, `version: expected 1.0.x, got \"2.0.0\"`},
		{"two ids alike in a batch", "POST", "", "[" + simple + "," + simple + "]", nil, 400, `is also the id of statement 1`},
		{"not JSON", "POST", "", `{"actor":`, nil, 400, `not JSON`},
		{"too big", "POST", "", "[" + strings.Repeat(noID+",", 1000) + noID + "]", nil, 413, `body larger than 65536 bytes`},
		{"GET is not served", "GET", "", "", nil, 405, `method GET is not served`},
		{"another path", "POST", "/../../other", simple, nil, 404, `no resource`},
	}
	s2 := startEndpoint(t, map[string]any{"max_body_bytes": int64(65536)})
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			url := s.url
			if st.name == "too big" {
				url = s2.url
			}
			if st.name == "another path" {
				url = strings.TrimSuffix(s.url, xapi.StatementsPath) + "/other"
			} else {
				url += st.query
			}
			got := send(t, st.method, url, st.body, st.header)
			if got.status != st.wantStatus || !strings.Contains(got.body, st.wantBody) {
				t.Fatalf("%d %s\nwant %d with %s", got.status, got.body, st.wantStatus, st.wantBody)
			}
			if st.wantStatus >= 400 && st.wantStatus != 405 && !json.Valid([]byte(got.body)) {
				t.Errorf("error body is not JSON: %s", got.body)
			}
		})
	}
	waitRows(t, s, 3)
	time.Sleep(150 * time.Millisecond) // a duplicate would be emitted by now
	if err := s.stop(); err != context.Canceled {
		t.Fatalf("stop: %v, want context.Canceled", err)
	}
	rows := s.rows.snapshot()
	if len(rows) != 3 {
		t.Fatalf("rows:\n%s", strings.Join(rows, "\n"))
	}
	// The simple example, stored now, with its own timestamp.
	if !strings.HasPrefix(rows[0], strings.Join(strings.Split(rowSimple, "|")[:9], "|")+"|20") {
		t.Errorf("row 0 = %s", rows[0])
	}
	// The long example keeps its columns but for stored, set by the endpoint.
	long0 := strings.Split(rowLong, "|")
	got1 := strings.Split(rows[1], "|")
	got1[9], long0[9] = "", ""
	if strings.Join(got1, "|") != strings.Join(long0, "|") {
		t.Errorf("row 1 = %s\nwant   %s", rows[1], rowLong)
	}
	// A statement without a timestamp gets the stored time.
	got2 := strings.Split(rows[2], "|")
	if got2[8] != got2[9] || !xapi.IsUUID(got2[0]) {
		t.Errorf("row 2 = %s", rows[2])
	}
}

// A stopped endpoint loses nothing it acknowledged: a new read from the
// last position emits exactly what followed it, and ids stay known.
func TestEndpointResume(t *testing.T) {
	s := startEndpoint(t, map[string]any{"flush_interval": "1h"})
	var ids []string
	for i := range 5 {
		body := fmt.Sprintf(`{"actor": {"account": {"homePage": "https://ent.example", "name": "S%d"}}, "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"}, "object": {"id": "http://example.com/a/%d"}, "timestamp": "2025-09-0%dT08:00:00Z"}`, i, i, i+1)
		got := send(t, "POST", s.url, body, nil)
		if got.status != 200 {
			t.Fatalf("%d %s", got.status, got.body)
		}
		ids = append(ids, got.body)
	}
	// flush_interval is an hour: nothing emitted before the stop.
	if err := s.stop(); err != context.Canceled {
		t.Fatal(err)
	}
	if n := len(s.rows.snapshot()); n != 0 {
		t.Fatalf("%d rows emitted before any flush", n)
	}
	t.Setenv(authEnv, "lms:s3cret")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	opts := map[string]any{"auth_env": authEnv, "spool": s.spool, "replay_only": true}
	all := &syncCollect{got: make(chan struct{}, 1)}
	cfg := protocol.Config{Connector: xapi.HTTPSourceName, BatchRows: 2, Options: opts}
	if err := (xapi.HTTPSource{}).Read(context.Background(), cfg, mem, all); err != nil {
		t.Fatal(err)
	}
	if len(all.rows) != 5 || len(all.pos) != 3 {
		t.Fatalf("replay: %d rows in %d batches", len(all.rows), len(all.pos))
	}
	// The spool keeps the ids the endpoint acknowledged, in order.
	for i, row := range all.rows {
		if id := strings.Split(row, "|")[0]; !xapi.IsUUID(id) || !strings.Contains(ids[i], id) {
			t.Errorf("replayed row %d has id %q, the endpoint acknowledged %s", i, id, ids[i])
		}
	}
	cfg.Resume = protocol.Position(all.pos[0])
	rest := &syncCollect{got: make(chan struct{}, 1)}
	if err := (xapi.HTTPSource{}).Read(context.Background(), cfg, mem, rest); err != nil {
		t.Fatal(err)
	}
	if strings.Join(rest.rows, "\n") != strings.Join(all.rows[2:], "\n") {
		t.Fatalf("resumed:\n%s\nwant\n%s", strings.Join(rest.rows, "\n"), strings.Join(all.rows[2:], "\n"))
	}
}

func TestEndpointSpoolConformance(t *testing.T) {
	t.Setenv(authEnv, "lms:s3cret")
	spool := filepath.Join(t.TempDir(), "spool.jsonl")
	var lines bytes.Buffer
	for _, name := range []string{"spec_simple.json", "spec_long.json"} {
		var v any
		json.Unmarshal([]byte(readTestdata(t, name)), &v)
		b, _ := json.Marshal(v)
		lines.Write(b)
		lines.WriteByte('\n')
	}
	// A last line cut by a crash is dropped.
	lines.WriteString(`{"id": "7d5acc92-ae89-4839-8973-615707827b9f", "actor":`)
	if err := os.WriteFile(spool, lines.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := conformance.SourceCase{
		Options:   map[string]any{"auth_env": authEnv, "spool": spool, "replay_only": true},
		BatchRows: 1,
		WantRows:  []string{strings.Replace(rowSimple, "|Activity|2015-11-18T12:17:00Z|(null)|", "|Activity|2015-11-18T12:17:00Z|(null)|", 1), rowLong},
		Bad: []conformance.BadCase{
			{Options: map[string]any{"auth_env": "VIGIE_TEST_NOT_SET", "spool": spool}, Want: "environment variable VIGIE_TEST_NOT_SET is not set"},
			{Options: map[string]any{"auth_env": "lms:s3cret", "spool": spool}, Want: "expected the name of an environment variable, not credentials"},
			{Options: map[string]any{"auth_env": authEnv, "spool": spool, "flush_interval": "soon"}, Want: `expected a positive duration`},
			{Options: map[string]any{"auth_env": authEnv, "spool": spool, "listen": "8089"}, Want: `expected host:port`},
			{Options: map[string]any{"auth_env": authEnv}, Want: `option "spool": required option is missing`},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, xapi.HTTPSource{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSource(t, conformance.ThroughPlugin(t, xapi.HTTPSource{}).(protocol.Source), c)
	})
}
