package pipelines_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

type pjxRegistry struct{ *protocol.Registry }

func (r pjxRegistry) Connector(_ context.Context, name string) (protocol.Connector, error) {
	return r.Get(name)
}

// TestXAPIEndpoint runs xapi_http.toml on a free port, posts the
// specification's examples with an ordinary HTTP client, stops the run
// gracefully and checks the CSV written.
func TestXAPIEndpoint(t *testing.T) {
	toml := sandbox(t, "xapi_http.toml", "pipelines/testdata/xapi")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	src, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(toml, []byte(strings.Replace(string(src), `listen = "127.0.0.1:8089"`, `listen = "`+addr+`"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIE_XAPI_AUTH", "ent:correct-horse")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.Load(toml)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: pjxRegistry{builtin.Registry()}, Rules: rt, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close(ctx)
	stop := make(chan struct{})
	type result struct {
		sum *stream.Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := plan.Run(ctx, pipeline.RunOptions{Stop: stop})
		done <- result{sum, err}
	}()

	url := "http://" + addr + "/xapi/statements"
	post := func(body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Experience-API-Version", "1.0.3")
		req.SetBasicAuth("ent", "correct-horse")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	examples, err := os.ReadFile(filepath.Join(filepath.Dir(toml), "testdata", "xapi", "spec_examples.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the endpoint, then post: the array holds an invalid
	// statement (a bad UUID), so it is refused as a whole.
	var status int
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if status, body = post(string(examples)); status != 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status != 400 || !strings.Contains(body, `statement 3: id: expected a UUID`) {
		t.Fatalf("post of the examples: %d %s", status, body)
	}
	// Without the bad one: both accepted.
	good := examples2(string(examples))
	if status, body = post(good); status != 200 || !strings.Contains(body, "fd41c918-b88b-4b20-a0a5-a4c32391aaa0") {
		t.Fatalf("post: %d %s", status, body)
	}
	if status, body = post(`{"actor": {"account": {"homePage": "https://ent.vigie.example", "name": "S0001"}}, "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"}, "object": {"id": "https://ent.vigie.example/activites/maths/quiz-1"}, "result": {"score": {"scaled": 0.5}, "duration": "PT2M"}}`); status != 200 {
		t.Fatalf("post: %d %s", status, body)
	}
	// flush_interval is 1s: wait for the batch to reach the sink, then stop.
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		t.Fatal("the run did not stop")
	}
	if !errors.Is(res.err, stream.ErrInterrupted) {
		t.Fatalf("run: %v, want an interrupted run", res.err)
	}
	st, _ := res.sum.Stage("statements")
	if st.RowsOut != 3 {
		t.Errorf("statements: %d rows out, want 3", st.RowsOut)
	}
	recs := readback.CSV(t, filepath.Join(filepath.Dir(toml), "out", "xapi_statements.csv"))
	if len(recs) != 4 {
		t.Fatalf("%d records in the CSV", len(recs))
	}
	if recs[1][0] != "fd41c918-b88b-4b20-a0a5-a4c32391aaa0" || recs[2][19] != "Example virtual meeting software" ||
		recs[3][1] != "S0001" || recs[3][10] != "0.5" || recs[3][16] != "120000000" {
		t.Errorf("rows:\n%v\n%v\n%v", recs[1], recs[2], recs[3])
	}
	spool, err := os.ReadFile(filepath.Join(filepath.Dir(toml), "out", "xapi_spool.jsonl"))
	if err != nil || strings.Count(string(spool), "\n") != 3 {
		t.Errorf("spool: %v, %q", err, spool)
	}
}

// examples2 returns the JSON array of the specification's two examples
// (without the invalid third statement).
func examples2(all string) string {
	i := strings.Index(all, `"b0e5c1d2-`)
	j := strings.LastIndex(all[:i], "{")
	k := strings.LastIndex(all[:j], ",")
	return all[:k] + "]"
}
