// Package xapi holds the built-in xAPI connectors: the source "xapi", which
// reads statements from JSON and JSON Lines files, and the source
// "xapi_http", an endpoint serving the xAPI Statements resource (POST and
// PUT) whose statements it emits as they arrive. Both flatten statements
// to the same Arrow schema (Schema).
//
// Statements are checked against the xAPI 1.0.3 specification (Data,
// section 2.2 "Formatting Requirements"; Communication, section 2.1
// "Statement Resource"): what it says an LRS must reject is rejected, with
// a reason that names the property.
package xapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// statement is the part of an xAPI statement that is checked and
// flattened; the rest is kept in the raw JSON.
type statement struct {
	ID          string           `json:"id"`
	Actor       *agent           `json:"actor"`
	Verb        *verb            `json:"verb"`
	Object      *object          `json:"object"`
	Result      *result          `json:"result"`
	Context     *stmtContext     `json:"context"`
	Timestamp   string           `json:"timestamp"`
	Stored      string           `json:"stored"`
	Version     string           `json:"version"`
	Authority   *agent           `json:"authority"`
	Attachments []map[string]any `json:"attachments"`
}

type account struct {
	HomePage string `json:"homePage"`
	Name     string `json:"name"`
}

type agent struct {
	ObjectType  string   `json:"objectType"`
	Name        string   `json:"name"`
	Mbox        string   `json:"mbox"`
	MboxSHA1Sum string   `json:"mbox_sha1sum"`
	OpenID      string   `json:"openid"`
	Account     *account `json:"account"`
	Member      []agent  `json:"member"`
}

type verb struct {
	ID      string            `json:"id"`
	Display map[string]string `json:"display"`
}

type object struct {
	ObjectType string `json:"objectType"`
	ID         string `json:"id"`
	agent
	Definition *struct {
		Type string `json:"type"`
	} `json:"definition"`
	// SubStatement properties.
	Actor  *agent           `json:"actor"`
	Verb   *verb            `json:"verb"`
	Object *json.RawMessage `json:"object"`
}

type score struct {
	Scaled *float64 `json:"scaled"`
	Raw    *float64 `json:"raw"`
	Min    *float64 `json:"min"`
	Max    *float64 `json:"max"`
}

type result struct {
	Score      *score `json:"score"`
	Success    *bool  `json:"success"`
	Completion *bool  `json:"completion"`
	Duration   string `json:"duration"`
	Response   string `json:"response"`
}

type stmtContext struct {
	Registration string `json:"registration"`
	Platform     string `json:"platform"`
	Language     string `json:"language"`
}

// topLevel are the properties a statement may have.
var topLevel = map[string]bool{
	"id": true, "actor": true, "verb": true, "object": true, "result": true, "context": true,
	"timestamp": true, "stored": true, "authority": true, "version": true, "attachments": true,
}

// Invalid is a statement the specification rejects: Property names the
// offending property (a JSON path like "result.score.scaled", "" for the
// whole statement) and Reason says what was expected.
type Invalid struct {
	Property string
	Reason   string
}

func (e *Invalid) Error() string {
	if e.Property == "" {
		return e.Reason
	}
	return e.Property + ": " + e.Reason
}

func invalid(prop, format string, args ...any) *Invalid {
	return &Invalid{Property: prop, Reason: fmt.Sprintf(format, args...)}
}

var (
	uuidRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	})
	versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^1\.0(\.\d+)?$`) })
	sha1RE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-fA-F]{40}$`) })
	durRE     = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)
	})
)

// IsUUID reports whether s is a UUID in its canonical text form.
func IsUUID(s string) bool { return uuidRE().MatchString(s) }

// IsVersion reports whether s is an xAPI version this package accepts
// (1.0, 1.0.x).
func IsVersion(s string) bool { return versionRE().MatchString(s) }

// parse decodes and checks one statement.
func parse(raw []byte) (*statement, *Invalid) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		if !json.Valid(raw) {
			return nil, invalid("", "not JSON: %s", jsonError(raw))
		}
		return nil, invalid("", "expected a statement (a JSON object), got %s", kindOf(raw))
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(raw, &props); err != nil {
		return nil, invalid("", "not JSON: %s", jsonError(raw))
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !topLevel[k] {
			return nil, invalid(k, "not a statement property")
		}
		if string(props[k]) == "null" {
			return nil, invalid(k, "null is not allowed")
		}
	}
	var s statement
	if err := json.Unmarshal(raw, &s); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asType(err, &te); ok {
			return nil, invalid(te.Field, "expected %s, got a JSON %s", goKind(te.Type.Kind().String()), te.Value)
		}
		return nil, invalid("", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

func asType(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	*te = t
	return ok
}

func goKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "ptr", "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "float64":
		return "a number"
	}
	return k
}

func kindOf(raw []byte) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '[':
		return "an array"
	case raw[0] == '"':
		return "a string"
	case raw[0] == 'n':
		return "null"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	}
	return "a number"
}

func jsonError(b []byte) string {
	var v any
	err := json.Unmarshal(b, &v)
	if err == nil {
		return "unexpected content"
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func isIRI(s string) bool {
	i := strings.IndexByte(s, ':')
	return i > 0 && !strings.ContainsAny(s, " \t\n")
}

// check applies the specification's requirements.
func (s *statement) check() *Invalid {
	if s.ID != "" && !IsUUID(s.ID) {
		return invalid("id", "expected a UUID, got %q", s.ID)
	}
	if s.Actor == nil {
		return invalid("actor", "required")
	}
	if err := s.Actor.check("actor", true); err != nil {
		return err
	}
	if s.Verb == nil {
		return invalid("verb", "required")
	}
	if err := s.Verb.check("verb"); err != nil {
		return err
	}
	if s.Object == nil {
		return invalid("object", "required")
	}
	if err := s.Object.check("object", true); err != nil {
		return err
	}
	if s.Result != nil {
		if err := s.Result.check(); err != nil {
			return err
		}
	}
	if s.Context != nil && s.Context.Registration != "" && !IsUUID(s.Context.Registration) {
		return invalid("context.registration", "expected a UUID, got %q", s.Context.Registration)
	}
	if s.Timestamp != "" {
		if _, err := parseTime(s.Timestamp); err != nil {
			return invalid("timestamp", "expected an ISO 8601 timestamp with a time zone (2025-09-01T08:30:00Z), got %q", s.Timestamp)
		}
	}
	if s.Stored != "" {
		if _, err := parseTime(s.Stored); err != nil {
			return invalid("stored", "expected an ISO 8601 timestamp with a time zone, got %q", s.Stored)
		}
	}
	if s.Version != "" && !IsVersion(s.Version) {
		return invalid("version", "expected 1.0.x, got %q", s.Version)
	}
	if s.Authority != nil {
		if err := s.Authority.check("authority", true); err != nil {
			return err
		}
	}
	return nil
}

func (a *agent) check(path string, topLevel bool) *Invalid {
	ifis := 0
	if a.Mbox != "" {
		ifis++
		if !strings.HasPrefix(a.Mbox, "mailto:") || len(a.Mbox) < len("mailto:x") {
			return invalid(path+".mbox", "expected a mailto: IRI, got %q", a.Mbox)
		}
	}
	if a.MboxSHA1Sum != "" {
		ifis++
		if !sha1RE().MatchString(a.MboxSHA1Sum) {
			return invalid(path+".mbox_sha1sum", "expected 40 hexadecimal digits, got %q", a.MboxSHA1Sum)
		}
	}
	if a.OpenID != "" {
		ifis++
		if !isIRI(a.OpenID) {
			return invalid(path+".openid", "expected a URI, got %q", a.OpenID)
		}
	}
	if a.Account != nil {
		ifis++
		if a.Account.HomePage == "" || !isIRI(a.Account.HomePage) {
			return invalid(path+".account.homePage", "expected an IRL, got %q", a.Account.HomePage)
		}
		if a.Account.Name == "" {
			return invalid(path+".account.name", "required")
		}
	}
	switch a.ObjectType {
	case "", "Agent":
		if a.ObjectType == "" && !topLevel {
			break
		}
		if ifis != 1 {
			return invalid(path, "an agent needs exactly one identifier (mbox, mbox_sha1sum, openid or account), got %d", ifis)
		}
		if len(a.Member) > 0 {
			return invalid(path+".member", "only a group has members")
		}
	case "Group":
		if ifis > 1 {
			return invalid(path, "a group has at most one identifier, got %d", ifis)
		}
		if ifis == 0 && len(a.Member) == 0 {
			return invalid(path+".member", "an anonymous group needs members")
		}
		for i := range a.Member {
			m := &a.Member[i]
			if m.ObjectType == "Group" {
				return invalid(fmt.Sprintf("%s.member[%d]", path, i), "a group cannot contain a group")
			}
			if err := m.check(fmt.Sprintf("%s.member[%d]", path, i), true); err != nil {
				return err
			}
		}
	default:
		return invalid(path+".objectType", `expected "Agent" or "Group", got %q`, a.ObjectType)
	}
	return nil
}

func (v *verb) check(path string) *Invalid {
	if v.ID == "" {
		return invalid(path+".id", "required")
	}
	if !isIRI(v.ID) {
		return invalid(path+".id", "expected an IRI, got %q", v.ID)
	}
	return nil
}

func (o *object) check(path string, allowSub bool) *Invalid {
	switch o.ObjectType {
	case "", "Activity":
		if o.ID == "" {
			return invalid(path+".id", "required for an activity")
		}
		if !isIRI(o.ID) {
			return invalid(path+".id", "expected an IRI, got %q", o.ID)
		}
	case "Agent", "Group":
		a := o.agent
		a.ObjectType = o.ObjectType
		return a.check(path, true)
	case "StatementRef":
		if !IsUUID(o.ID) {
			return invalid(path+".id", "expected the UUID of a statement, got %q", o.ID)
		}
	case "SubStatement":
		if !allowSub {
			return invalid(path+".objectType", "a sub-statement cannot contain a sub-statement")
		}
		if o.Actor == nil {
			return invalid(path+".actor", "required")
		}
		if err := o.Actor.check(path+".actor", true); err != nil {
			return err
		}
		if o.Verb == nil {
			return invalid(path+".verb", "required")
		}
		if err := o.Verb.check(path + ".verb"); err != nil {
			return err
		}
		if o.Object == nil {
			return invalid(path+".object", "required")
		}
		var inner object
		if err := json.Unmarshal(*o.Object, &inner); err != nil {
			return invalid(path+".object", "expected an object")
		}
		return inner.check(path+".object", false)
	default:
		return invalid(path+".objectType", `expected "Activity", "Agent", "Group", "StatementRef" or "SubStatement", got %q`, o.ObjectType)
	}
	return nil
}

func (r *result) check() *Invalid {
	if sc := r.Score; sc != nil {
		if sc.Scaled != nil && (*sc.Scaled < -1 || *sc.Scaled > 1) {
			return invalid("result.score.scaled", "expected a number from -1 to 1, got %g", *sc.Scaled)
		}
		if sc.Min != nil && sc.Max != nil && *sc.Min > *sc.Max {
			return invalid("result.score.min", "%g is more than max %g", *sc.Min, *sc.Max)
		}
		if sc.Raw != nil && sc.Min != nil && *sc.Raw < *sc.Min {
			return invalid("result.score.raw", "%g is less than min %g", *sc.Raw, *sc.Min)
		}
		if sc.Raw != nil && sc.Max != nil && *sc.Raw > *sc.Max {
			return invalid("result.score.raw", "%g is more than max %g", *sc.Raw, *sc.Max)
		}
	}
	if r.Duration != "" {
		if _, ok := ParseDuration(r.Duration); !ok {
			return invalid("result.duration", "expected an ISO 8601 duration (PT1H30M, PT4.5S), got %q", r.Duration)
		}
	}
	return nil
}

// parseTime parses an ISO 8601 timestamp with a time zone.
func parseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// Lengths of the calendar units of a duration, in seconds: a year and a
// month have no fixed length, so they count as their Gregorian averages.
const (
	secondsPerYear  = 365.2425 * 86400
	secondsPerMonth = secondsPerYear / 12
)

// ParseDuration converts an ISO 8601 duration (PnYnMnWnDTnHnMnS, any part
// may have a fraction) to microseconds. Years and months count as their
// Gregorian averages. ok is false for anything else, or one that does not
// fit an int64.
func ParseDuration(s string) (micros int64, ok bool) {
	m := durRE().FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, false
	}
	units := []float64{secondsPerYear, secondsPerMonth, 7 * 86400, 86400, 3600, 60, 1}
	total := 0.0
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, false
		}
		total += f * u
	}
	us := math.Round(total * 1e6)
	if us >= math.MaxInt64 || math.IsNaN(us) {
		return 0, false
	}
	return int64(us), true
}

// contentHash identifies a statement's content for de-duplication: the
// properties other than id, stored, authority and version (which the LRS
// may set), in a canonical encoding.
func contentHash(raw []byte) ([32]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return [32]byte{}, err
	}
	for _, k := range []string{"id", "stored", "authority", "version"} {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}
