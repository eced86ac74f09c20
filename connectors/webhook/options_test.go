package webhook_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/webhook"
)

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secretNew+"\n"+secretOld+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOOK_SECRET", secretNew)
	t.Setenv("HOOK_SHORT", "whsec_"+base64.StdEncoding.EncodeToString([]byte("short")))
	t.Setenv("HOOK_NOPREFIX", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	t.Setenv("HOOK_EMPTY", "")
	base := func(extra map[string]any) map[string]any {
		o := map[string]any{"url": "https://example.org/hook", "outbox": filepath.Join(dir, "outbox")}
		for k, v := range extra {
			o[k] = v
		}
		return o
	}
	tests := []struct {
		name string
		opts map[string]any
		want string // "" for valid
	}{
		{"secret from env", base(map[string]any{"secret_env": "HOOK_SECRET"}), ""},
		{"secrets from file", base(map[string]any{"secret_file": secretFile}), ""},
		{"literal secret refused", base(map[string]any{"secret_env": secretNew}), "never the secret itself"},
		{"secret option unknown", base(map[string]any{"secret": secretNew}), `unknown option`},
		{"no secret", base(nil), "name the environment variable"},
		{"both", base(map[string]any{"secret_env": "HOOK_SECRET", "secret_file": secretFile}), "not both"},
		{"unset variable", base(map[string]any{"secret_env": "HOOK_EMPTY"}), "HOOK_EMPTY is empty or not set"},
		{"missing file", base(map[string]any{"secret_file": filepath.Join(dir, "nope")}), "read secret file"},
		{"short key", base(map[string]any{"secret_env": "HOOK_SHORT"}), "has 5 bytes"},
		{"no whsec_ prefix", base(map[string]any{"secret_env": "HOOK_NOPREFIX"}), `does not start with "whsec_"`},
		{"bad url", base(map[string]any{"secret_env": "HOOK_SECRET", "url": "ftp://x"}), "not an http or https URL"},
		{"credentials in url", base(map[string]any{"secret_env": "HOOK_SECRET", "url": "https://u:p@x/"}), "credentials"},
		{"bad schedule", base(map[string]any{"secret_env": "HOOK_SECRET", "retry_schedule": []any{"0s", "soon"}}), `delay 2: "soon"`},
		{"empty schedule", base(map[string]any{"secret_env": "HOOK_SECRET", "retry_schedule": []any{}}), "at least one delay"},
		{"batch too big", base(map[string]any{"secret_env": "HOOK_SECRET", "batch": int64(20000)}), "out of range"},
		{"bad timeout", base(map[string]any{"secret_env": "HOOK_SECRET", "timeout": "0s"}), "positive duration"},
		{"CA file without a certificate", base(map[string]any{"secret_env": "HOOK_SECRET", "tls_ca_file": secretFile}), "holds no PEM certificate"},
		{"client certificate without key", base(map[string]any{"secret_env": "HOOK_SECRET", "tls_cert_file": secretFile}), "go together"},
		{"id column and columns", base(map[string]any{"secret_env": "HOOK_SECRET", "id_column": "a", "id_columns": []any{"b"}}), "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Sink{}.Validate(context.Background(), protocol.Config{Options: tc.opts})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, protocol.ErrConfig) {
				t.Errorf("error %v is not a configuration error", err)
			}
			if strings.Contains(err.Error(), secretNew[6:]) {
				t.Errorf("error %v shows the secret", err)
			}
		})
	}
}
