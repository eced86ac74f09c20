// Package postgres holds the built-in PostgreSQL connectors, both on
// github.com/jackc/pgx/v5: the sink "postgres" (append through binary COPY,
// or upsert on key columns through a staging table and INSERT ... ON
// CONFLICT, its position stored in the same transaction as its rows) and
// the source "postgres_query" (a table or a query read in chunks ordered by a key,
// keyset pagination, typed from the result's columns).
//
// The connection string never comes from pipeline.toml: it is read from
// the environment variable the option dsn_env names (VIGIE_POSTGRES_DSN by
// default; only VIGIE_* variables reach plugin processes) or from the file
// dsn_file names. TLS is the connection string's business (sslmode,
// sslrootcert, sslcert, sslkey), as for psql.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Registry names of the connectors. A registry holds one connector per
// name, so the source cannot be "postgres" too.
const (
	Name       = "postgres"
	SourceName = "postgres_query"
)

// Connection option names, shared by source and sink.
const (
	optDSNEnv     = "dsn_env"
	optDSNFile    = "dsn_file"
	defaultDSNEnv = "VIGIE_POSTGRES_DSN"
	envPrefix     = "VIGIE_"
)

var connectionOptions = []protocol.Option{
	{Name: optDSNEnv, Type: protocol.TypeString, Default: defaultDSNEnv,
		Doc: "environment variable holding the connection string (libpq keyword/value or postgres:// URL; TLS through its sslmode and sslrootcert); must start with VIGIE_"},
	{Name: optDSNFile, Type: protocol.TypePath,
		Doc: "file holding the connection string instead of the environment (first line; keep it readable only by the engine's user)"},
}

// configError is a configuration error of option opt.
func configError(opt, format string, args ...any) error {
	return fmt.Errorf("connector %q: option %q: %s: %w", Name, opt, fmt.Sprintf(format, args...), protocol.ErrConfig)
}

// dsn returns the connection string cfg names, parsed. getenv reads the
// environment.
func dsn(cfg protocol.Config, getenv func(string) string) (*pgx.ConnConfig, error) {
	var s string
	if path := cfg.String(optDSNFile); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, configError(optDSNFile, "%v", err)
		}
		s, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
		if s == "" {
			return nil, configError(optDSNFile, "%s is empty: write the connection string on its first line", path)
		}
	} else {
		env := cfg.String(optDSNEnv)
		if env == "" {
			env = defaultDSNEnv
		}
		if !strings.HasPrefix(env, envPrefix) {
			return nil, configError(optDSNEnv, "%q: the variable's name must start with %s (only those reach connector plugins)", env, envPrefix)
		}
		if s = getenv(env); s == "" {
			return nil, configError(optDSNEnv, "the environment variable %s holds no connection string (or give dsn_file)", env)
		}
	}
	pc, err := pgx.ParseConfig(s)
	if err != nil {
		// pgx's message may quote the string, password included: say only
		// where it came from.
		return nil, configError(optDSNEnv, "the connection string does not parse (libpq keyword/value or postgres:// URL expected)")
	}
	return pc, nil
}

// connect opens a connection to the server cfg names.
func connect(ctx context.Context, cfg protocol.Config) (*pgx.Conn, error) {
	pc, err := dsn(cfg, os.Getenv)
	if err != nil {
		return nil, err
	}
	if _, ok := pc.RuntimeParams["application_name"]; !ok {
		// What a DBA sees in pg_stat_activity.
		pc.RuntimeParams["application_name"] = "vigie " + cfg.Pipeline + "/" + cfg.Stage
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", pc.Host, pc.Port, classify(err))
	}
	return conn, nil
}

// classify marks err: a lost or refused connection, a server shutting
// down, a serialization failure or a deadlock may pass on retry
// (protocol.ErrTemporary); other server errors (a type mismatch, a missing
// privilege, a violated constraint) will not.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "57P"),      // operator intervention: shutdown, crash
			pe.Code == "40001", pe.Code == "40P01", // serialization failure, deadlock
			pe.Code == "53300": // too many connections
			return protocol.WithKind(err, protocol.ErrTemporary)
		}
		return err
	}
	// Anything else is the network: refused, reset, closed.
	return protocol.WithKind(fmt.Errorf("PostgreSQL server unreachable or connection lost: %w", err), protocol.ErrTemporary)
}

// ident quotes a possibly schema-qualified name ("sis.students").
func ident(name string) pgx.Identifier {
	return pgx.Identifier(strings.Split(name, "."))
}

// quote quotes one identifier.
func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}
