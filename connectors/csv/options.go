// Package csv holds the built-in CSV connectors: the source "csv", which
// reads a CSV file into Arrow record batches with typed columns and dead
// letters for bad rows, and the sink "csv_file", which writes record batches
// to a CSV file atomically.
package csv

import (
	"fmt"
	"unicode/utf8"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Option names shared by the source and the sink.
const (
	optPath      = "path"
	optDelimiter = "delimiter"
	optHeader    = "header"
)

// delimiterOption is the `delimiter` option of both connectors.
var delimiterOption = protocol.Option{
	Name: optDelimiter, Type: protocol.TypeString, Default: ",",
	Doc: `field separator, one character; "\t" (a tab, or the two characters \t) for TSV`,
}

// checked returns cfg's options checked against spec, defaults filled in.
// The engine has already done so; checking again costs little and lets the
// connectors be called directly (tests, embedding) with raw options.
func checked(spec protocol.Spec, cfg protocol.Config) (protocol.Config, error) {
	opts, err := spec.Check(cfg.Options)
	if err != nil {
		return cfg, err
	}
	cfg.Options = opts
	return cfg, nil
}

// delimiter returns the `delimiter` option as a rune.
func delimiter(cfg protocol.Config) (rune, error) {
	s := cfg.String(optDelimiter)
	if s == `\t` {
		return '\t', nil
	}
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 || size != len(s) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' || r == 0xFEFF {
		return 0, fmt.Errorf("connector %q: option %q: %q is not a usable delimiter (one character other than a quote or a line break): %w",
			cfg.Connector, optDelimiter, s, protocol.ErrConfig)
	}
	return r, nil
}
