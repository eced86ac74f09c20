package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

func TestSpecCheck(t *testing.T) {
	spec := protocol.Spec{Name: "seq", Kind: protocol.KindSource, Version: "1", Doc: "test source", Options: []protocol.Option{
		{Name: "rows", Type: protocol.TypeInt, Required: true, Doc: "rows to emit"},
		{Name: "dead_letters", Type: protocol.TypeBool, Default: false, Doc: "emit a dead letter per batch"},
		{Name: "fail", Type: protocol.TypeString, Enum: []string{"", "config", "temporary", "plain"}, Default: "", Doc: "fail after the first batch"},
	}}
	got, err := spec.Check(map[string]any{"rows": float64(3)}) // as JSON decodes it
	if err != nil {
		t.Fatal(err)
	}
	if got["rows"] != int64(3) || got["dead_letters"] != false || got["fail"] != "" {
		t.Errorf("checked options = %#v", got)
	}
	_, err = spec.Check(map[string]any{"rows": 1.5, "dead_leters": true})
	var oes protocol.OptionErrors
	if !errors.As(err, &oes) || len(oes) != 2 {
		t.Fatalf("err = %v, want two option errors", err)
	}
	if !strings.Contains(oes[0].Error(), `"dead_leters": unknown option (did you mean "dead_letters"?)`) ||
		!strings.Contains(oes[1].Error(), `"rows": expected an integer, got a float`) {
		t.Errorf("errors = %v", err)
	}
}

// TestDecodePositionKeepsCause: a position that does not decode is a
// configuration error that still carries the decoder's error.
func TestDecodePositionKeepsCause(t *testing.T) {
	var v struct{ N int }
	err := protocol.DecodePosition(protocol.Position(`{"N":`), &v)
	var syntax *json.SyntaxError
	if !errors.Is(err, protocol.ErrConfig) || !errors.As(err, &syntax) {
		t.Errorf("err = %v (%T), want ErrConfig wrapping a *json.SyntaxError", err, err)
	}
}
