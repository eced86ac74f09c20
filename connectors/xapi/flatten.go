package xapi

import (
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Columns of the flattened statement, in order.
var fields = []arrow.Field{
	{Name: "statement_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "actor", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "actor_home_page", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "actor_name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "verb_id", Type: arrow.BinaryTypes.String},
	{Name: "verb_display", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "object_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "object_type", Type: arrow.BinaryTypes.String},
	{Name: "timestamp", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
	{Name: "stored", Type: arrow.FixedWidthTypes.Timestamp_us, Nullable: true},
	{Name: "result_score_scaled", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "result_score_raw", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "result_score_min", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "result_score_max", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "result_success", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "result_completion", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "result_duration_us", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "result_duration", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "context_registration", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "context_platform", Type: arrow.BinaryTypes.String, Nullable: true},
}

// rawField is the optional last column: the statement as received.
var rawField = arrow.Field{Name: "statement", Type: arrow.BinaryTypes.String}

// Schema returns the schema of flattened statements, with the statement's
// JSON as a last column "statement" when raw is set.
//
// actor is the agent's identifier: its mbox (mailto:...), mbox_sha1sum,
// openid or account name, in that order of preference, with the account's
// homePage in actor_home_page; an anonymous group has a null actor.
// verb_display is the display in "en-US", else "en", else the first
// language by name. object_id is the id of an activity or statement
// reference, or the identifier of an agent or group (as for actor).
// result_duration_us is result.duration in microseconds, years and months
// counted as their Gregorian averages.
func Schema(raw bool) *arrow.Schema {
	fs := fields
	if raw {
		fs = append(append([]arrow.Field(nil), fields...), rawField)
	}
	return arrow.NewSchema(fs, nil)
}

// identifier returns an agent's identifier and its account's homePage.
func (a *agent) identifier() (id, homePage string) {
	switch {
	case a.Mbox != "":
		return a.Mbox, ""
	case a.MboxSHA1Sum != "":
		return a.MboxSHA1Sum, ""
	case a.OpenID != "":
		return a.OpenID, ""
	case a.Account != nil:
		return a.Account.Name, a.Account.HomePage
	}
	return "", ""
}

func display(m map[string]string) string {
	for _, lang := range []string{"en-US", "en"} {
		if s, ok := m[lang]; ok {
			return s
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	return m[keys[0]]
}

func appendString(b array.Builder, s string) {
	sb := b.(*array.StringBuilder)
	if s == "" {
		sb.AppendNull()
		return
	}
	sb.Append(s)
}

func appendFloat(b array.Builder, f *float64) {
	fb := b.(*array.Float64Builder)
	if f == nil {
		fb.AppendNull()
		return
	}
	fb.Append(*f)
}

func appendBool(b array.Builder, v *bool) {
	bb := b.(*array.BooleanBuilder)
	if v == nil {
		bb.AppendNull()
		return
	}
	bb.Append(*v)
}

func appendTime(b array.Builder, s string) {
	tb := b.(*array.TimestampBuilder)
	t, err := parseTime(s)
	if s == "" || err != nil {
		tb.AppendNull()
		return
	}
	tb.Append(arrow.Timestamp(t.UnixMicro()))
}

// appendRow appends a checked statement to b, built for Schema(raw).
func (s *statement) appendRow(b *array.RecordBuilder, raw []byte) {
	actor, home := s.Actor.identifier()
	appendString(b.Field(0), s.ID)
	appendString(b.Field(1), actor)
	appendString(b.Field(2), home)
	appendString(b.Field(3), s.Actor.Name)
	b.Field(4).(*array.StringBuilder).Append(s.Verb.ID)
	appendString(b.Field(5), display(s.Verb.Display))
	objID, objType := s.Object.ID, s.Object.ObjectType
	if objType == "" {
		objType = "Activity"
	}
	if objType == "Agent" || objType == "Group" {
		objID, _ = s.Object.agent.identifier()
	}
	appendString(b.Field(6), objID)
	b.Field(7).(*array.StringBuilder).Append(objType)
	appendTime(b.Field(8), s.Timestamp)
	appendTime(b.Field(9), s.Stored)
	var r result
	if s.Result != nil {
		r = *s.Result
	}
	var sc score
	if r.Score != nil {
		sc = *r.Score
	}
	appendFloat(b.Field(10), sc.Scaled)
	appendFloat(b.Field(11), sc.Raw)
	appendFloat(b.Field(12), sc.Min)
	appendFloat(b.Field(13), sc.Max)
	appendBool(b.Field(14), r.Success)
	appendBool(b.Field(15), r.Completion)
	if us, ok := ParseDuration(r.Duration); ok {
		b.Field(16).(*array.Int64Builder).Append(us)
	} else {
		b.Field(16).AppendNull()
	}
	appendString(b.Field(17), r.Duration)
	var c stmtContext
	if s.Context != nil {
		c = *s.Context
	}
	appendString(b.Field(18), c.Registration)
	appendString(b.Field(19), c.Platform)
	if b.Schema().NumFields() > len(fields) {
		b.Field(len(fields)).(*array.StringBuilder).Append(string(raw))
	}
}
