package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// secretPrefix marks a Standard Webhooks symmetric secret: "whsec_"
// followed by the base64 of the key.
const secretPrefix = "whsec_"

// Key sizes the spec allows for a symmetric secret: 24 to 64 bytes
// (192 to 512 bits).
const (
	minKeyBytes = 24
	maxKeyBytes = 64
)

// signer computes the webhook-signature header of Standard Webhooks v1:
// for each key, "v1," followed by the base64 HMAC-SHA256 of
// "{id}.{timestamp}.{body}", separated by spaces. Several keys sign at
// once during a secret rotation. A signer is immutable and safe for
// concurrent use.
type signer struct {
	keys [][]byte
}

// parseSecrets decodes whitespace-separated "whsec_..." secrets; from
// names where they come from, for errors. The secret itself never appears
// in an error.
func parseSecrets(text, from string) (*signer, error) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return nil, fmt.Errorf("%s holds no secret (expected one or more whsec_ secrets separated by spaces)", from)
	}
	s := &signer{}
	for i, f := range fields {
		if !strings.HasPrefix(f, secretPrefix) {
			return nil, fmt.Errorf("%s: secret %d does not start with %q", from, i+1, secretPrefix)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f, secretPrefix))
		if err != nil {
			return nil, fmt.Errorf("%s: secret %d is not valid base64 after %q", from, i+1, secretPrefix)
		}
		if len(key) < minKeyBytes || len(key) > maxKeyBytes {
			return nil, fmt.Errorf("%s: secret %d has %d bytes; Standard Webhooks asks for %d to %d", from, i+1, len(key), minKeyBytes, maxKeyBytes)
		}
		s.keys = append(s.keys, key)
	}
	return s, nil
}

// loadSecrets reads the secrets from the environment variable env or from
// the file path (exactly one of them is set).
func loadSecrets(env, path string, getenv func(string) string) (*signer, error) {
	if env != "" {
		v := getenv(env)
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty or not set", env)
		}
		return parseSecrets(v, "environment variable "+env)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	return parseSecrets(string(b), "secret file "+path)
}

// errNoKey is returned by sign on a signer without keys.
var errNoKey = errors.New("no signing key")

// sign returns the webhook-signature header value for one attempt.
func (s *signer) sign(id string, timestamp int64, body []byte) (string, error) {
	if len(s.keys) == 0 {
		return "", errNoKey
	}
	var b strings.Builder
	prefix := id + "." + strconv.FormatInt(timestamp, 10) + "."
	for i, key := range s.keys {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(prefix))
		m.Write(body)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return b.String(), nil
}
