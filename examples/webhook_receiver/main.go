// Command webhook_receiver is a tiny Standard Webhooks receiver for
// trying the webhook sink (examples/pipelines/alert_webhook.toml): it
// verifies each request's signature with the secret(s) in
// $VIGIE_WEBHOOK_SECRET, answers 204 (401 when no signature matches), and
// prints one line per request: the webhook-id and the body. A webhook-id
// seen before is acknowledged again and marked "again" (a receiver uses
// the id as its idempotency key).
//
//	go run ./examples/webhook_receiver -addr 127.0.0.1:8088
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8088", "address to listen on")
	env := flag.String("secret-env", "VIGIE_WEBHOOK_SECRET", "environment variable holding the whsec_ secret(s)")
	flag.Parse()
	var keys [][]byte
	for _, s := range strings.Fields(os.Getenv(*env)) {
		k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil || !strings.HasPrefix(s, "whsec_") {
			log.Fatalf("%s: not a whsec_ secret", *env)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		log.Fatalf("set %s to the webhook secret (whsec_...)", *env)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			return
		}
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		if !verify(keys, id, ts, r.Header.Get("webhook-signature"), body) {
			log.Printf("refused %s: bad signature or timestamp", id)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		again := seen[id]
		seen[id] = true
		mu.Unlock()
		mark := ""
		if again {
			mark = " (again)"
		}
		fmt.Printf("%s%s %s\n", id, mark, body)
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("listening on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

// verify checks a Standard Webhooks v1 signature header against keys and
// the timestamp against a 5-minute tolerance.
func verify(keys [][]byte, id, ts, header string, body []byte) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return false
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return false
	}
	for _, sig := range strings.Fields(header) {
		v, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v != "v1" || err != nil {
			continue
		}
		for _, k := range keys {
			m := hmac.New(sha256.New, k)
			m.Write([]byte(id + "." + ts + "."))
			m.Write(body)
			if hmac.Equal(got, m.Sum(nil)) {
				return true
			}
		}
	}
	return false
}
