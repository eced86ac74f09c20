package webhook

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzOutboxReplay feeds arbitrary logs to the outbox: it opens them or
// refuses them with an error, never panics, and what it opened replays
// to the same state after its compaction.
func FuzzOutboxReplay(f *testing.F) {
	f.Add([]byte("{\"op\":\"seq\",\"seq\":3}\n{\"op\":\"enq\",\"seq\":1,\"id\":\"a\",\"body\":\"e30=\",\"rows\":1}\n{\"op\":\"ack\",\"id\":\"b\",\"at\":1}\n"))
	f.Add([]byte("{\"op\":\"enq\",\"seq\":1,\"id\":\"a\",\"body\":\"e30=\"}\n{\"op\":\"try\",\"id\":\"a\",\"attempts\":2,\"next\":5,\"status\":503}\n{\"op\":\"off\",\"url\":\"http://x\"}\n{\"op\":\"dead\",\"id\":\"a\"}\n{\"op\":\"enq\""))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, logFile), log, 0o644); err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1_800_000_000, 0)
		b, err := openOutbox(dir, "http://x", time.Hour, now)
		if err != nil {
			return
		}
		pending, seq := len(b.pending), b.seq
		bodies := map[string]string{}
		for id, m := range b.pending {
			body, err := b.load(m)
			if err != nil {
				t.Fatalf("load %s: %v", id, err)
			}
			bodies[id] = string(body)
		}
		if err := b.close(); err != nil {
			t.Fatal(err)
		}
		b, err = openOutbox(dir, "http://x", time.Hour, now)
		if err != nil {
			t.Fatalf("the compacted log does not open: %v", err)
		}
		defer b.close()
		if len(b.pending) != pending || b.seq != seq {
			t.Fatalf("reopened: %d pending, seq %d; was %d, %d", len(b.pending), b.seq, pending, seq)
		}
		for id, m := range b.pending {
			body, err := b.load(m)
			if err != nil || string(body) != bodies[id] {
				t.Fatalf("reopened: body of %s %q, %v; was %q", id, body, err, bodies[id])
			}
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "120", "-1", "Sat, 05 Dec 2026 10:00:30 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %s, outside 0..%s", v, d, maxRetryAfter)
		}
	})
}

func FuzzParseSecrets(f *testing.F) {
	f.Add("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	f.Add("whsec_ whsec_x")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := parseSecrets(text, "test")
		if err != nil {
			return
		}
		if len(s.keys) == 0 {
			t.Fatal("no key and no error")
		}
		for _, k := range s.keys {
			if len(k) < minKeyBytes || len(k) > maxKeyBytes {
				t.Fatalf("key of %d bytes accepted", len(k))
			}
		}
		if _, err := s.sign("msg_x", 1, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	})
}
