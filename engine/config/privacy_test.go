package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePrivacy(t *testing.T) {
	const doc = head + src + sink + `
[privacy]
pseudonymise = ["student_id"]
personal = ["class_id"]
key_file = "secrets/key"
previous_key_env = "OLD_KEY"
previous_key_until = "2027-01-31"
retention = { state = "200d", outputs = "forever" }
`
	p, err := Parse("pipeline.toml", []byte(doc+"[[sink]]\nname = \"team\"\ninput = \"attendance\"\nconnector = \"csv_file\"\ncolumns = [\"student_id\"]\nreidentify = { column = \"student_id\", lookup = \"attendance\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	pr := p.Privacy
	if pr == nil || pr.KeyFile != p.Resolve("secrets/key") || pr.PreviousKeyEnv != "OLD_KEY" || !pr.PreviousKeyUntil.Equal(time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("privacy = %+v", pr)
	}
	if pr.Retention != (Retention{State: 200 * 24 * time.Hour, DeadLetter: DefaultDeadLetterRetention, Outputs: 0}) {
		t.Errorf("retention = %+v", pr.Retention)
	}
	if got := strings.Join(pr.PersonalColumns(), ","); got != "class_id,student_id" {
		t.Errorf("personal columns %s", got)
	}
	team := p.Sink("team")
	if team.Reidentify == nil || team.Reidentify.Lookup != "attendance" || len(team.Columns) != 1 {
		t.Errorf("team sink %+v", team)
	}
	if p.AuditLog != filepath.Join(p.Dir, "out", "demo.audit.jsonl") {
		t.Errorf("audit log %s", p.AuditLog)
	}
}

func TestParsePrivacyBad(t *testing.T) {
	tests := []struct {
		name, toml, want string
	}{
		{
			name: "no key",
			toml: "[privacy]\npseudonymise = [\"student_id\"]\n",
			want: "pipeline.toml:10: privacy.key_env: pseudonymise needs exactly one of key_env",
		},
		{
			name: "two keys",
			toml: "[privacy]\npseudonymise = [\"student_id\"]\nkey_env = \"K\"\nkey_file = \"k\"\n",
			want: "pipeline.toml:10: privacy.key_env: pseudonymise needs exactly one of key_env",
		},
		{
			name: "previous key without end",
			toml: "[privacy]\npseudonymise = [\"s\"]\nkey_env = \"K\"\nprevious_key_file = \"old\"\n",
			want: "pipeline.toml:10: privacy.previous_key_until: a previous key needs previous_key_until",
		},
		{
			name: "bad date",
			toml: "[privacy]\nprevious_key_until = \"31/01/2027\"\n",
			want: `pipeline.toml:11: privacy.previous_key_until: expected a date such as "2027-01-31", got "31/01/2027"`,
		},
		{
			name: "bad retention",
			toml: "[privacy]\nretention = { state = \"a year\" }\n",
			want: `pipeline.toml:11: privacy.retention.state: expected a positive duration such as "365d", "6w" or "72h", or "forever", got "a year"`,
		},
		{
			name: "key in the file",
			toml: "[privacy]\nkey = \"secret\"\n",
			want: "pipeline.toml:11: privacy.key: unknown key",
		},
		{
			name: "reidentify a clear column",
			toml: "[privacy]\npseudonymise = [\"s\"]\nkey_env = \"K\"\n[[sink]]\nname = \"team\"\ninput = \"attendance\"\nconnector = \"c\"\nreidentify = { column = \"name\", lookup = \"attendance\" }\n",
			want: `privacy.reidentify` + "|" + `sink[1].reidentify.column: column "name" is not pseudonymised`,
		},
		{
			name: "lookup not a source",
			toml: "[privacy]\npseudonymise = [\"s\"]\nkey_env = \"K\"\n[[sink]]\nname = \"team\"\ninput = \"attendance\"\nconnector = \"c\"\nreidentify = { column = \"s\", lookup = \"flags\" }\n",
			want: `sink[1].reidentify.lookup: lookup "flags" is not a source`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("pipeline.toml", []byte(head+src+sink+tt.toml))
			if err == nil {
				t.Fatal("no error")
			}
			found := false
			for w := range strings.SplitSeq(tt.want, "|") {
				found = found || strings.Contains(err.Error(), w)
			}
			if !found {
				t.Errorf("error:\n%v\nwant: %s", err, tt.want)
			}
		})
	}
}
