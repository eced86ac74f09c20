package webhook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOutboxReplay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	msg := func(id string) *message {
		return &message{id: id, body: []byte(`{"x":"` + id + `"}`), rows: 1, next: now}
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *outbox) // on a fresh outbox, then closed
		tail    string                        // bytes appended to the log after close
		later   time.Duration                 // reopened this long after now
		pending []string
		known   []string
	}{
		{name: "pending and acknowledged", prepare: func(t *testing.T, b *outbox) {
			for _, id := range []string{"a", "b", "c"} {
				b.enqueue(msg(id))
			}
			b.ack(b.pending["b"], 200, now)
		}, pending: []string{"a", "c"}, known: []string{"a", "b", "c"}},
		{name: "torn last line", prepare: func(t *testing.T, b *outbox) {
			b.enqueue(msg("a"))
		}, tail: `{"op":"ack","id":"a","at":1`, pending: []string{"a"}, known: []string{"a"}},
		{name: "dead letters are forgotten", prepare: func(t *testing.T, b *outbox) {
			b.enqueue(msg("a"))
			b.enqueue(msg("b"))
			b.deadLetter(b.pending["a"], "test", now)
		}, pending: []string{"b"}, known: []string{"b"}},
		{name: "sequence numbers survive", prepare: func(t *testing.T, b *outbox) {
			b.enqueue(msg("a")) // seq 1
			b.enqueue(msg("b")) // seq 2
			b.ack(b.pending["b"], 200, now)
			b.enqueue(msg("c")) // seq 3
		}, pending: []string{"a", "c"}, known: []string{"a", "b", "c"}},
		{name: "acknowledgements expire", prepare: func(t *testing.T, b *outbox) {
			b.enqueue(msg("a"))
			b.ack(b.pending["a"], 200, now)
		}, later: 2 * time.Hour, pending: nil, known: nil},
		{name: "attempt state survives", prepare: func(t *testing.T, b *outbox) {
			m := msg("a")
			b.enqueue(m)
			m.attempts, m.status, m.next = 3, 503, now.Add(time.Minute)
			b.attempted(m)
		}, pending: []string{"a"}, known: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "outbox")
			b, err := openOutbox(dir, "http://x", time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, b)
			if err := b.close(); err != nil {
				t.Fatal(err)
			}
			if tc.tail != "" {
				f, err := os.OpenFile(filepath.Join(dir, logFile), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(tc.tail)
				f.Close()
			}
			// Twice: the compacted log replays to the same state.
			for range 2 {
				b, err = openOutbox(dir, "http://x", time.Hour, now.Add(tc.later))
				if err != nil {
					t.Fatal(err)
				}
				if len(b.pending) != len(tc.pending) {
					t.Errorf("pending %v, want %v", keys(b.pending), tc.pending)
				}
				for _, id := range tc.pending {
					m := b.pending[id]
					if m == nil {
						t.Errorf("pending %s missing", id)
						continue
					}
					if m.body != nil {
						t.Errorf("pending %s holds its body in memory", id)
					}
					if body, err := b.load(m); err != nil || string(body) != `{"x":"`+id+`"}` {
						t.Errorf("pending %s: body %q, %v", id, body, err)
					}
				}
				for _, id := range tc.known {
					if !b.known(id) {
						t.Errorf("%s not known", id)
					}
				}
				if tc.name == "sequence numbers survive" && (b.seq != 3 || b.pending["c"].seq != 3) {
					t.Errorf("seq %d, c's %d; want 3", b.seq, b.pending["c"].seq)
				}
				if m := b.pending["a"]; tc.name == "attempt state survives" && (m.attempts != 3 || m.status != 503 || !m.next.Equal(now.Add(time.Minute))) {
					t.Errorf("attempt state %+v", m)
				}
				if err := b.close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestOutboxCorruptMiddleLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, logFile), []byte("{\"op\":\"seq\",\"seq\":1}\nnot json\n{\"op\":\"seq\",\"seq\":2}\n"), 0o644)
	if _, err := openOutbox(dir, "http://x", time.Hour, time.Now()); err == nil {
		t.Fatal("a corrupt line followed by good ones was accepted")
	}
}

func TestOutboxLock(t *testing.T) {
	dir := t.TempDir()
	b, err := openOutbox(dir, "http://x", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	defer func(w time.Duration) { lockWait = w }(lockWait)
	lockWait = 100 * time.Millisecond
	if _, err := openOutbox(dir, "http://x", time.Hour, time.Now()); err == nil {
		t.Fatal("two outboxes opened on one folder")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"Sat, 05 Dec 2026 10:00:30 GMT", 30 * time.Second},
		{"Sat, 05 Dec 2026 09:00:00 GMT", 0},
		{"999999999", maxRetryAfter},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.5, 0.999} {
		got := jitter(10*time.Second, 0.2, r)
		if got < 8*time.Second || got > 12*time.Second {
			t.Errorf("jitter(10s, 0.2, %v) = %s, outside 8s..12s", r, got)
		}
	}
	if jitter(0, 0.5, 0.9) != 0 {
		t.Error("an immediate attempt got a delay")
	}
	if a, b := jitter(time.Minute, 0.2, 0), jitter(time.Minute, 0.2, 0.99); a == b {
		t.Error("jitter does not vary")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestOutboxCompactsDuringRun: a long run's log is compacted when it has
// grown, and still replays to the same state.
func TestOutboxCompactsDuringRun(t *testing.T) {
	defer func(n int64) { compactAfter = n }(compactAfter)
	compactAfter = 4 << 10
	dir := t.TempDir()
	now := time.Now()
	b, err := openOutbox(dir, "http://x", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		m := &message{id: fmt.Sprintf("m%d", i), body: []byte(`{"row":"` + strings.Repeat("x", 100) + `"}`), rows: 1, next: now}
		b.enqueue(m)
		if i%10 != 0 {
			b.ack(m, 200, now)
		}
		if err := b.maybeCompact(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	// Without compaction: about 1000 enqueues of 200 bytes and 900 acks.
	if fi.Size() > 100<<10 {
		t.Errorf("log of %d bytes after compactions", fi.Size())
	}
	b, err = openOutbox(dir, "http://x", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if len(b.pending) != 100 || len(b.acked) != 900 || b.seq != 1000 {
		t.Errorf("after replay: %d pending, %d acknowledged, seq %d; want 100, 900, 1000", len(b.pending), len(b.acked), b.seq)
	}
}

func TestPlainRemote(t *testing.T) {
	for url, want := range map[string]bool{
		"http://ent.example.org/hook": true,
		"http://10.0.0.5:8080/":       true,
		"https://ent.example.org/":    false,
		"http://127.0.0.1:8088/":      false,
		"http://[::1]:8088/":          false,
		"http://localhost/":           false,
	} {
		if got := plainRemote(url); got != want {
			t.Errorf("plainRemote(%q) = %v, want %v", url, got, want)
		}
	}
}

// TestOutboxBodyBudget: past the budget, bodies live in the log only and
// are read back; acknowledged ones free their share.
func TestOutboxBodyBudget(t *testing.T) {
	defer func(n int64) { bodyBudget = n }(bodyBudget)
	bodyBudget = 25
	now := time.Now()
	b, err := openOutbox(t.TempDir(), "http://x", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	var ms []*message
	for i := range 4 {
		m := &message{id: fmt.Sprintf("m%d", i), body: []byte(fmt.Sprintf(`{"n":%d,"pad":"xx"}`, i)), rows: 1, next: now} // 18 bytes
		b.enqueue(m)
		ms = append(ms, m)
	}
	if ms[0].body == nil || ms[1].body != nil || b.inMem != 18 {
		t.Errorf("in memory: %q, %q, %d bytes; want only the first", ms[0].body, ms[1].body, b.inMem)
	}
	for i, m := range ms {
		body, err := b.load(m)
		if want := fmt.Sprintf(`{"n":%d,"pad":"xx"}`, i); err != nil || string(body) != want {
			t.Errorf("body %d: %q, %v; want %q", i, body, err, want)
		}
	}
	b.ack(ms[0], 200, now)
	if b.inMem != 0 {
		t.Errorf("%d bytes held after the acknowledgement", b.inMem)
	}
	m := &message{id: "m9", body: []byte(`{"n":9,"pad":"xx"}`), rows: 1, next: now}
	b.enqueue(m)
	if m.body == nil {
		t.Error("the freed budget is not used again")
	}
}
