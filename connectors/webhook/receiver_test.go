package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A receiver is a real HTTP endpoint that checks every request against
// the Standard Webhooks v1 algorithm, written here from the spec and
// independently of the sink's signer: the signed content is
// "{webhook-id}.{webhook-timestamp}.{body}", the signature HMAC-SHA256
// under the base64 key after "whsec_", and the header a space-separated
// list of "v1,{base64}" of which one must match.
type receiver struct {
	t      *testing.T
	keys   [][]byte
	fault  func(attempt int, w http.ResponseWriter, r *http.Request) bool
	srv    *httptest.Server
	mu     sync.Mutex
	tries  map[string][]delivery // by webhook-id, every attempt
	acked  map[string]int        // 2xx answers by webhook-id
	bad    []string              // requests that failed verification
	order  []string              // webhook-ids in arrival order
	flight int
	most   int // most requests in flight at once

	// allowDuplicates lets check accept an id acknowledged twice.
	allowDuplicates bool
}

type delivery struct {
	at   time.Time
	body string
}

// newReceiver starts a receiver that accepts any of the secrets. fault,
// if not nil, sees the attempt number of each request's id (1 for the
// first) and may answer in its place (returning true).
func newReceiver(t *testing.T, secrets []string, fault func(attempt int, w http.ResponseWriter, r *http.Request) bool) *receiver {
	t.Helper()
	rc := &receiver{t: t, fault: fault, tries: map[string][]delivery{}, acked: map[string]int{}}
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(s[len("whsec_"):])
		if err != nil {
			t.Fatal(err)
		}
		rc.keys = append(rc.keys, key)
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url() string { return rc.srv.URL + "/hook" }

// verify checks one request's signature against the receiver's keys.
func (rc *receiver) verify(id, ts, sigs string, body []byte) string {
	if id == "" || ts == "" || sigs == "" {
		return "missing webhook header"
	}
	if strings.Contains(id, ".") {
		return "webhook-id contains a dot"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "timestamp is not an integer"
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "timestamp out of tolerance"
	}
	content := []byte(id + "." + ts + ".")
	content = append(content, body...)
	for _, sig := range strings.Split(sigs, " ") {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			continue
		}
		for _, key := range rc.keys {
			mac := hmac.New(sha256.New, key)
			mac.Write(content)
			if hmac.Equal(got, mac.Sum(nil)) {
				return ""
			}
		}
	}
	return "no signature matches"
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	id := r.Header.Get("webhook-id")
	if why := rc.verify(id, r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body); why != "" || r.Method != http.MethodPost {
		rc.mu.Lock()
		rc.bad = append(rc.bad, id+": "+why)
		rc.mu.Unlock()
		http.Error(w, why, http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.tries[id] = append(rc.tries[id], delivery{at: time.Now(), body: string(body)})
	attempt := len(rc.tries[id])
	rc.flight++
	rc.most = max(rc.most, rc.flight)
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.flight--
		rc.mu.Unlock()
	}()
	if rc.fault != nil && rc.fault(attempt, w, r) {
		return
	}
	rc.mu.Lock()
	rc.acked[id]++
	rc.order = append(rc.order, id)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// check fails the test unless every request was signed, every attempt of
// an id carried the same body, and each id was acknowledged once; it
// returns the acknowledged ids' bodies.
func (rc *receiver) check() map[string]string {
	rc.t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, b := range rc.bad {
		rc.t.Errorf("request failed verification: %s", b)
	}
	out := map[string]string{}
	for id, ds := range rc.tries {
		for _, d := range ds[1:] {
			if d.body != ds[0].body {
				rc.t.Errorf("id %s: body changed between attempts:\n%s\n%s", id, ds[0].body, d.body)
			}
		}
		if n := rc.acked[id]; n > 1 && !rc.allowDuplicates {
			rc.t.Errorf("id %s acknowledged %d times", id, n)
		} else if n >= 1 {
			out[id] = ds[0].body
		}
	}
	return out
}

// counts returns the attempts per id and the most requests in flight.
func (rc *receiver) counts() (map[string]int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for id, ds := range rc.tries {
		out[id] = len(ds)
	}
	return out, rc.most
}

// reset forgets every request.
func (rc *receiver) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.tries, rc.acked, rc.bad, rc.order = map[string][]delivery{}, map[string]int{}, nil, nil
}
