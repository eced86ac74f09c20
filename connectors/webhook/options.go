package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Name is the connector's name in pipeline.toml.
const Name = "webhook"

// Option names.
const (
	optURL          = "url"
	optSecretEnv    = "secret_env"
	optSecretFile   = "secret_file"
	optOutbox       = "outbox"
	optIDColumn     = "id_column"
	optIDColumns    = "id_columns"
	optBatch        = "batch"
	optThin         = "thin"
	optThinColumns  = "thin_columns"
	optEventType    = "event_type"
	optSchedule     = "retry_schedule"
	optJitter       = "jitter"
	optTimeout      = "timeout"
	optConcurrency  = "concurrency"
	optDrainTimeout = "drain_timeout"
	optDedupeWindow = "dedupe_window"
	optTLSCA        = "tls_ca_file"
	optTLSCert      = "tls_cert_file"
	optTLSKey       = "tls_key_file"
)

// defaultSchedule is the delay before each attempt, the first one
// included: the example schedule of the Standard Webhooks spec, cut at
// eight attempts (about 32 hours).
var defaultSchedule = []string{"0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"}

// Defaults of the other options.
const (
	defaultTimeout      = 30 * time.Second
	defaultConcurrency  = 4
	defaultDrainTimeout = 30 * time.Second
	defaultDedupeWindow = 7 * 24 * time.Hour
	defaultJitter       = 0.2
	maxBatch            = 10000
	maxConcurrency      = 256
)

// Default id and thin columns, used when the input has them.
var (
	alertIDColumns     = []string{"alert_id", "change", "reason_codes", "alert_level"}
	defaultThinColumns = []string{"alert_id", "change", "student_id", "code", "reason_codes"}
)

var spec = protocol.Spec{
	Name:    Name,
	Kind:    protocol.KindSink,
	Version: "0.1.0",
	Doc: `Connector "webhook" (sink): POSTs rows as JSON to an HTTP endpoint following
Standard Webhooks v1: headers webhook-id (stable for one row across retries
and restarts, the receiver's idempotency key), webhook-timestamp (Unix
seconds of the attempt) and webhook-signature ("v1," + base64 HMAC-SHA256
of "{id}.{timestamp}.{body}", one per secret, space-separated, so a secret
can be rotated). Secrets ("whsec_" + base64, 24 to 64 bytes) come from the
environment variable secret_env or the file secret_file, never from
pipeline.toml. A body is {"type", "timestamp", "data": the row} or, with
batch > 1, {"type": "vigie.batch", "timestamp", "data": [{"id", "type",
"data"}, ...]}; thin = true sends only the thin_columns. Every row is first
appended to a durable outbox (the folder outbox, best inside the pipeline's
state_dir): what Write accepted survives a kill and is sent by the next run;
what the receiver acknowledged (2xx) is not sent again. Failed attempts are
retried on retry_schedule with jitter, honouring Retry-After; 429, 502 and
504 slow the endpoint down; 410 disables it (pending and later rows go to
the outbox's dead_letters.jsonl); a row whose attempts are exhausted goes
there too, with the last status. The rows it dead-letters during a run
(including earlier runs' changes given up now) are counted as the sink
stage's dead letters in the run summary; they are in dead_letters.jsonl,
not in the pipeline's dead_letter file. Close waits up to drain_timeout for
deliveries, then leaves the rest in the outbox for the next run.`,
	Options: []protocol.Option{
		{Name: optURL, Type: protocol.TypeString, Required: true, Doc: "endpoint URL (http or https)"},
		{Name: optSecretEnv, Type: protocol.TypeString, Doc: "environment variable holding the whsec_ secret(s), space-separated (the newest first); this or secret_file"},
		{Name: optSecretFile, Type: protocol.TypePath, Doc: "file holding the whsec_ secret(s), separated by spaces or lines; this or secret_env"},
		{Name: optOutbox, Type: protocol.TypePath, Required: true, Doc: "folder of the durable outbox (created); one sink per folder"},
		{Name: optIDColumn, Type: protocol.TypeString, Doc: "column whose value is the webhook-id as is (letters, digits, _ - : only)"},
		{Name: optIDColumns, Type: protocol.TypeStringList, Doc: "columns whose values, hashed, make the webhook-id (default: alert_id, change, reason_codes, alert_level when the input has alert_id and change; else every column)"},
		{Name: optBatch, Type: protocol.TypeInt, Default: int64(1), Doc: "rows per request, 1 to 10000"},
		{Name: optThin, Type: protocol.TypeBool, Default: false, Doc: "send only the thin_columns (ids and reason codes)"},
		{Name: optThinColumns, Type: protocol.TypeStringList, Doc: "columns of a thin body (default: those of alert_id, change, student_id, code, reason_codes in the input)"},
		{Name: optEventType, Type: protocol.TypeString, Doc: `the body's "type" (default: "alert." + the change column's value when there is one, else "vigie.row")`},
		{Name: optSchedule, Type: protocol.TypeStringList, Default: defaultSchedule, Doc: "delay before each attempt, the first included; its length is the number of attempts"},
		{Name: optJitter, Type: protocol.TypeFloat, Default: defaultJitter, Doc: "random share added to or taken from each retry delay, 0 to 1"},
		{Name: optTimeout, Type: protocol.TypeString, Default: "30s", Doc: "timeout of one request"},
		{Name: optConcurrency, Type: protocol.TypeInt, Default: int64(defaultConcurrency), Doc: "most requests in flight to the endpoint, 1 to 256"},
		{Name: optDrainTimeout, Type: protocol.TypeString, Default: "30s", Doc: "how long Close waits for pending deliveries before leaving them in the outbox"},
		{Name: optDedupeWindow, Type: protocol.TypeString, Default: "168h", Doc: "how long the outbox remembers acknowledged ids, so that a replayed row is not sent again"},
		{Name: optTLSCA, Type: protocol.TypePath, Doc: "PEM certificates of the authorities that sign the endpoint's certificate (default: the system's)"},
		{Name: optTLSCert, Type: protocol.TypePath, Doc: "PEM client certificate, for mutual TLS (with tls_key_file)"},
		{Name: optTLSKey, Type: protocol.TypePath, Doc: "PEM private key of tls_cert_file"},
	},
}

// settings are the checked options of one sink.
type settings struct {
	url          string
	secretEnv    string
	secretFile   string
	outbox       string
	idColumn     string
	idColumns    []string
	batch        int
	thin         bool
	thinColumns  []string
	eventType    string
	schedule     []time.Duration
	jitter       float64
	timeout      time.Duration
	concurrency  int
	drainTimeout time.Duration
	dedupeWindow time.Duration
	signer       *signer
	tls          *tls.Config // nil: Go's defaults
}

func optionError(opt, format string, args ...any) error {
	return &protocol.OptionError{Connector: Name, Option: opt, Msg: fmt.Sprintf(format, args...)}
}

// check checks cfg's options and loads the secrets (from getenv or the
// secret file). Errors wrap protocol.ErrConfig.
func check(cfg protocol.Config, getenv func(string) string) (*settings, error) {
	opts, err := spec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	s := &settings{
		url:         cfg.String(optURL),
		secretEnv:   cfg.String(optSecretEnv),
		secretFile:  cfg.String(optSecretFile),
		outbox:      cfg.String(optOutbox),
		idColumn:    cfg.String(optIDColumn),
		idColumns:   cfg.StringList(optIDColumns),
		batch:       int(cfg.Int(optBatch)),
		thin:        cfg.Bool(optThin),
		thinColumns: cfg.StringList(optThinColumns),
		eventType:   cfg.String(optEventType),
		jitter:      cfg.Float(optJitter),
		concurrency: int(cfg.Int(optConcurrency)),
	}
	u, err := url.Parse(s.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, optionError(optURL, "%q is not an http or https URL", s.url)
	}
	if u.User != nil {
		return nil, optionError(optURL, "the URL carries credentials; webhooks are authenticated by their signature")
	}
	switch {
	case s.secretEnv == "" && s.secretFile == "":
		return nil, optionError(optSecretEnv, "name the environment variable (secret_env) or the file (secret_file) holding the whsec_ secret")
	case s.secretEnv != "" && s.secretFile != "":
		return nil, optionError(optSecretEnv, "give secret_env or secret_file, not both")
	case strings.Contains(s.secretEnv, secretPrefix) || strings.ContainsAny(s.secretEnv, " =") || strings.Contains(s.secretFile, secretPrefix):
		return nil, optionError(optSecretEnv, "looks like a secret: pipeline.toml names where the secret is (an environment variable or a file), never the secret itself")
	}
	if s.idColumn != "" && len(s.idColumns) > 0 {
		return nil, optionError(optIDColumn, "give id_column or id_columns, not both")
	}
	if s.batch < 1 || s.batch > maxBatch {
		return nil, optionError(optBatch, "%d is out of range 1..%d", s.batch, maxBatch)
	}
	if s.concurrency < 1 || s.concurrency > maxConcurrency {
		return nil, optionError(optConcurrency, "%d is out of range 1..%d", s.concurrency, maxConcurrency)
	}
	if !(s.jitter >= 0 && s.jitter <= 1) {
		return nil, optionError(optJitter, "%v is out of range 0..1", s.jitter)
	}
	sched := cfg.StringList(optSchedule)
	if len(sched) == 0 {
		return nil, optionError(optSchedule, "needs at least one delay (the first attempt's, usually \"0s\")")
	}
	for i, d := range sched {
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 {
			return nil, optionError(optSchedule, "delay %d: %q is not a duration such as \"5s\" or \"2h\"", i+1, d)
		}
		s.schedule = append(s.schedule, v)
	}
	durations := []struct {
		opt string
		to  *time.Duration
	}{{optTimeout, &s.timeout}, {optDrainTimeout, &s.drainTimeout}, {optDedupeWindow, &s.dedupeWindow}}
	for _, d := range durations {
		v, err := time.ParseDuration(cfg.String(d.opt))
		if err != nil || v <= 0 {
			return nil, optionError(d.opt, "%q is not a positive duration such as \"30s\"", cfg.String(d.opt))
		}
		*d.to = v
	}
	if s.tls, err = tlsConfig(cfg); err != nil {
		return nil, err
	}
	if s.signer, err = loadSecrets(s.secretEnv, s.secretFile, getenv); err != nil {
		opt := optSecretEnv
		if s.secretFile != "" {
			opt = optSecretFile
		}
		return nil, optionError(opt, "%v", err)
	}
	return s, nil
}

// tlsConfig returns the TLS configuration of the tls_* options, nil when
// none is given.
func tlsConfig(cfg protocol.Config) (*tls.Config, error) {
	ca, cert, key := cfg.String(optTLSCA), cfg.String(optTLSCert), cfg.String(optTLSKey)
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, optionError(optTLSCA, "%v", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, optionError(optTLSCA, "%s holds no PEM certificate", ca)
		}
	}
	if (cert == "") != (key == "") {
		return nil, optionError(optTLSCert, "tls_cert_file and tls_key_file go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, optionError(optTLSCert, "%v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
