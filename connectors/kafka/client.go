// Package kafka holds the built-in Kafka connectors: the source "kafka"
// (topics, optionally in a consumer group, JSON message values decoded
// into declared columns, Kafka metadata as columns, bad messages to the
// dead letters with topic, partition and offset) and the sink "kafka_topic"
// (JSON values, a key column as message key, provenance headers, written
// in transactions). Both use github.com/twmb/franz-go.
//
// Credentials never come from pipeline.toml: SASL user and password are
// read from environment variables whose names the options give (VIGIE_*,
// the only ones that reach plugin processes).
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Registry names of the connectors.
const (
	SourceName = "kafka"
	SinkName   = "kafka_topic"
)

// Connection option names, shared by source and sink.
const (
	optBrokers      = "brokers"
	optTLS          = "tls"
	optTLSCA        = "tls_ca_file"
	optTLSCert      = "tls_cert_file"
	optTLSKey       = "tls_key_file"
	optTLSServer    = "tls_server_name"
	optSASL         = "sasl_mechanism"
	optSASLUserEnv  = "sasl_user_env"
	optSASLPassEnv  = "sasl_password_env"
	saslPlain       = "PLAIN"
	saslSCRAM256    = "SCRAM-SHA-256"
	saslSCRAM512    = "SCRAM-SHA-512"
	defaultUserEnv  = "VIGIE_KAFKA_USER"
	defaultPassEnv  = "VIGIE_KAFKA_PASSWORD"
	envPrefix       = "VIGIE_"
	clientIDDefault = "vigie"
)

// connectionOptions are the options of both connectors that say how to
// reach the cluster.
var connectionOptions = []protocol.Option{
	{Name: optBrokers, Type: protocol.TypeStringList, Required: true, Doc: "seed brokers, host:port"},
	{Name: optTLS, Type: protocol.TypeBool, Default: false, Doc: "connect with TLS (implied by the tls_* files)"},
	{Name: optTLSCA, Type: protocol.TypePath, Doc: "PEM file of the certificate authorities to trust (default: the system's)"},
	{Name: optTLSCert, Type: protocol.TypePath, Doc: "PEM client certificate, for mutual TLS (with tls_key_file)"},
	{Name: optTLSKey, Type: protocol.TypePath, Doc: "PEM private key of the client certificate"},
	{Name: optTLSServer, Type: protocol.TypeString, Doc: "server name to verify in the brokers' certificates (default: the broker's host)"},
	{Name: optSASL, Type: protocol.TypeString, Enum: []string{saslPlain, saslSCRAM256, saslSCRAM512},
		Doc: "SASL mechanism; user and password come from the environment (sasl_user_env, sasl_password_env), never from the pipeline file"},
	{Name: optSASLUserEnv, Type: protocol.TypeString, Default: defaultUserEnv, Doc: "environment variable holding the SASL user (must start with VIGIE_)"},
	{Name: optSASLPassEnv, Type: protocol.TypeString, Default: defaultPassEnv, Doc: "environment variable holding the SASL password (must start with VIGIE_)"},
}

// configError is a configuration error of option opt of connector name.
func configError(name, opt, format string, args ...any) error {
	return fmt.Errorf("connector %q: option %q: %s: %w", name, opt, fmt.Sprintf(format, args...), protocol.ErrConfig)
}

// connection returns the client options that reach the cluster cfg
// names: seed brokers, TLS and SASL. getenv reads the environment.
func connection(cfg protocol.Config, getenv func(string) string) ([]kgo.Opt, error) {
	brokers := cfg.StringList(optBrokers)
	if len(brokers) == 0 {
		return nil, configError(cfg.Connector, optBrokers, "name at least one broker")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(clientIDDefault)}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if mech := cfg.String(optSASL); mech != "" {
		userEnv, passEnv := cfg.String(optSASLUserEnv), cfg.String(optSASLPassEnv)
		for _, o := range [][2]string{{optSASLUserEnv, userEnv}, {optSASLPassEnv, passEnv}} {
			if !strings.HasPrefix(o[1], envPrefix) {
				return nil, configError(cfg.Connector, o[0], "%q: the variable's name must start with %s (only those reach connector plugins)", o[1], envPrefix)
			}
		}
		user, pass := getenv(userEnv), getenv(passEnv)
		if user == "" || pass == "" {
			return nil, configError(cfg.Connector, optSASL, "%s needs a user and a password in the environment variables %s and %s", mech, userEnv, passEnv)
		}
		switch mech {
		case saslPlain:
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case saslSCRAM256:
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		case saslSCRAM512:
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}

// tlsConfig returns the TLS configuration of cfg, nil without TLS.
func tlsConfig(cfg protocol.Config) (*tls.Config, error) {
	ca, cert, key := cfg.String(optTLSCA), cfg.String(optTLSCert), cfg.String(optTLSKey)
	if !cfg.Bool(optTLS) && ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.String(optTLSServer)}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, configError(cfg.Connector, optTLSCA, "%v", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, configError(cfg.Connector, optTLSCA, "%s holds no PEM certificate", ca)
		}
	}
	if (cert == "") != (key == "") {
		return nil, configError(cfg.Connector, optTLSCert, "tls_cert_file and tls_key_file go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, configError(cfg.Connector, optTLSCert, "%v", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
