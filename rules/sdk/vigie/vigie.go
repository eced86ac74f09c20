// Package vigie is the Go SDK for Vigie indicator rules (ABI version 1, see
// rules/ABI.md). A rule is a main package built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o rule.wasm .
//
// that registers itself from an init function:
//
//	func init() {
//		vigie.Register(vigie.Rule{
//			Manifest: `{"abi": 1, "name": "...", ...}`,
//			Init:     func(p vigie.Params) error { ... },
//			Eval:     func(in *vigie.Input, out *vigie.Output) error { ... },
//		})
//	}
//
//	func main() {}
//
// A group rule ("kind": "group") gets whole groups: Input.NumGroups groups,
// group g being rows Input.GroupBounds(g), and writes output row g for
// group g (Output.Len is the number of groups). examples/group_stats is one,
// ported to every SDK (rules/conformance/group.cases.toml).
//
// The package provides the ABI exports (vigie_abi_version, vigie_manifest,
// vigie_alloc, vigie_init, vigie_eval) itself: //go:wasmexport works from a
// non-main package, so importing the SDK is enough. Memory handed to the host
// and all output buffers come from an arena that is reset at the start of
// every evaluation cycle, so a rule's memory does not grow from batch to
// batch.
//
// The accessors (Input, Output and their columns) are plain Go and also
// compile on other platforms, where they can be tested natively; only the
// exports and the host imports are specific to wasip1.
package vigie

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigie-edu/vigie/rules/abi"
)

// Rule is what a rule author registers.
type Rule struct {
	// Manifest is the rule's manifest as JSON (see rules/ABI.md). It is
	// checked by Register.
	Manifest string
	// Init, optional, is called once per instance with the rule's
	// parameters, defaults already filled in by the host.
	Init func(p Params) error
	// Eval computes the outputs of one batch. Every output row starts null;
	// Eval sets the rows that have a value. Returning an error (or calling
	// Fail) fails the batch.
	Eval func(in *Input, out *Output) error
}

// Level is the level of a log message.
type Level int32

// Log levels, as in the vigie.log import.
const (
	Debug Level = abi.LevelDebug
	Info  Level = abi.LevelInfo
	Warn  Level = abi.LevelWarn
	Error Level = abi.LevelError
)

// guest is the state of the rule registered in this module.
type guest struct {
	rule     Rule
	manifest *abi.Manifest
	json     []byte
	failMsg  string
	bufs     [][]byte // per-output utf8 buffers, reused from cycle to cycle
}

// registered is the module's rule; a module holds exactly one.
var registered *guest

// Register registers the module's rule. It must be called exactly once,
// from an init function. It panics if the manifest is invalid or Eval is
// nil: the module then fails to load, with the reason in the engine's log.
func Register(r Rule) {
	g, err := newGuest(r)
	if err != nil {
		panic("vigie.Register: " + err.Error())
	}
	if registered != nil {
		panic("vigie.Register: called twice")
	}
	registered = g
}

func newGuest(r Rule) (*guest, error) {
	m, err := abi.ParseManifest([]byte(r.Manifest))
	if err != nil {
		return nil, err
	}
	if r.Eval == nil {
		return nil, errors.New("rule has no Eval function")
	}
	return &guest{rule: r, manifest: m, json: []byte(r.Manifest)}, nil
}

// Fail fails the current Init or Eval call with msg, even if the function
// then returns nil. The message reaches the engine through the vigie.fail
// import.
func Fail(msg string) {
	if registered != nil {
		registered.failMsg = msg
	}
}

// Log sends a message to the engine's log, tagged with the rule's name.
func Log(level Level, msg string) { hostLog(level, msg) }

// Logf is Log with fmt.Sprintf formatting.
func Logf(level Level, format string, args ...any) { hostLog(level, fmt.Sprintf(format, args...)) }

// call runs f, turning a panic or a message set with Fail into an error.
func (g *guest) call(f func() error) (err error) {
	g.failMsg = ""
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	err = f()
	if err == nil && g.failMsg != "" {
		err = errors.New(g.failMsg)
	}
	return err
}

// init runs the rule's Init with the parameters JSON.
func (g *guest) init(params []byte) error {
	return g.call(func() error {
		p, err := parseParams(params)
		if err != nil || g.rule.Init == nil {
			return err
		}
		return g.rule.Init(p)
	})
}

// eval runs one evaluation cycle over the descriptors at in and out.
func (g *guest) eval(m memory, in, out uint32) error {
	return g.call(func() error {
		input, err := readInput(m, in, g.manifest.Inputs)
		if err != nil {
			return err
		}
		output, err := g.newOutput(m, out)
		if err != nil {
			return err
		}
		if err := g.rule.Eval(input, output); err != nil {
			return err
		}
		if g.failMsg != "" {
			return errors.New(g.failMsg)
		}
		return output.finish(m)
	})
}

// Params are a rule's parameters, as given to Init. The getters panic when
// the parameter is missing or of another type, which fails Init with that
// message; the host has already checked the parameters against the
// manifest, so this only happens when the manifest and the code disagree.
type Params struct{ m map[string]any }

func parseParams(b []byte) (Params, error) {
	p := Params{m: map[string]any{}}
	if len(bytes.TrimSpace(b)) == 0 {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&p.m); err != nil {
		return p, fmt.Errorf("parse params: %w", err)
	}
	return p, nil
}

// Has reports whether the parameter name was given.
func (p Params) Has(name string) bool { _, ok := p.m[name]; return ok }

func (p Params) number(name string) json.Number {
	v, ok := p.m[name].(json.Number)
	if !ok {
		panic(fmt.Sprintf("param %q is not a number (got %T)", name, p.m[name]))
	}
	return v
}

// Float64 returns the float64 parameter name.
func (p Params) Float64(name string) float64 {
	f, err := p.number(name).Float64()
	if err != nil {
		panic(fmt.Sprintf("param %q: %v", name, err))
	}
	return f
}

// Int64 returns the int64 (or int32) parameter name.
func (p Params) Int64(name string) int64 {
	i, err := p.number(name).Int64()
	if err != nil {
		panic(fmt.Sprintf("param %q: %v", name, err))
	}
	return i
}

// Int32 returns the int32 parameter name.
func (p Params) Int32(name string) int32 { return int32(p.Int64(name)) }

// Bool returns the bool parameter name.
func (p Params) Bool(name string) bool {
	b, ok := p.m[name].(bool)
	if !ok {
		panic(fmt.Sprintf("param %q is not a bool (got %T)", name, p.m[name]))
	}
	return b
}

// String returns the utf8 parameter name.
func (p Params) String(name string) string {
	s, ok := p.m[name].(string)
	if !ok {
		panic(fmt.Sprintf("param %q is not a string (got %T)", name, p.m[name]))
	}
	return s
}
