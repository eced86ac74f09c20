package config

import (
	"testing"
	"time"
)

func TestFailureSettings(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		p, err := Parse("pipeline.toml", []byte(head+src+ruleHead+sink))
		if err != nil {
			t.Fatal(err)
		}
		want := Threshold{Window: DefaultDeadLetterWindow, MaxShare: DefaultDeadLetterMaxShare}
		if p.DeadLetterThreshold != want || p.Rules[0].DeadLetterThreshold != want || p.Sources[0].DeadLetterThreshold != want {
			t.Errorf("thresholds = %+v, %+v, %+v; want %+v", p.DeadLetterThreshold, p.Rules[0].DeadLetterThreshold, p.Sources[0].DeadLetterThreshold, want)
		}
		if b := p.Rules[0].Bisect; b != (Bisect{MaxCalls: DefaultBisectMaxCalls, MaxTime: DefaultBisectMaxTime}) {
			t.Errorf("bisect = %+v", b)
		}
		if p.StopTimeout != DefaultStopTimeout {
			t.Errorf("stop timeout = %v", p.StopTimeout)
		}
		if p.MaxDelay != 200*time.Millisecond {
			t.Errorf("max delay = %v, want 200ms", p.MaxDelay)
		}
	})
	t.Run("pipeline-wide, inherited and overridden", func(t *testing.T) {
		doc := `[pipeline]
name = "demo"
dead_letter_window = 500
dead_letter_max_share = 0.25
bisect_max_calls = 32
bisect_max_time = "2s"
stop_timeout = "3s"
max_delay = "50ms"
[[source]]
name = "attendance"
connector = "csv"
dead_letter_max_share = 1
[[rule]]
name = "r"
input = "attendance"
module = "r.wasm"
dead_letter_window = 50
bisect_max_time = "500ms"
` + sink
		p, err := Parse("pipeline.toml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Sources[0].DeadLetterThreshold; got != (Threshold{Window: 500, MaxShare: 1}) {
			t.Errorf("source threshold = %+v", got)
		}
		if got := p.Rules[0].DeadLetterThreshold; got != (Threshold{Window: 50, MaxShare: 0.25}) {
			t.Errorf("rule threshold = %+v", got)
		}
		if got := p.Rules[0].Bisect; got != (Bisect{MaxCalls: 32, MaxTime: 500 * time.Millisecond}) {
			t.Errorf("rule bisect = %+v", got)
		}
		if p.StopTimeout != 3*time.Second {
			t.Errorf("stop timeout = %v", p.StopTimeout)
		}
		if p.MaxDelay != 50*time.Millisecond {
			t.Errorf("max delay = %v, want 50ms", p.MaxDelay)
		}
	})
	for _, tc := range []struct{ name, pipeline, rule, want string }{
		{"share above 1", "dead_letter_max_share = 10", "",
			`pipeline.toml:3: pipeline.dead_letter_max_share: must be a share between 0 and 1 (0.1 for 10%), got 10`},
		{"share not a number", `dead_letter_max_share = "10%"`, "",
			`pipeline.toml:3: pipeline.dead_letter_max_share: expected number, got string`},
		{"window zero", "dead_letter_window = 0", "",
			`pipeline.toml:3: pipeline.dead_letter_window: must be between 1 and 16777216 rows, got 0`},
		{"bad stop timeout", `stop_timeout = "soon"`, "",
			`pipeline.toml:3: pipeline.stop_timeout: expected a duration such as "500ms" or "10s", got "soon"`},
		{"bad max delay", `max_delay = "soon"`, "",
			`pipeline.toml:3: pipeline.max_delay: expected a duration such as "500ms" or "10s", got "soon"`},
		{"zero max delay", `max_delay = "0s"`, "",
			`pipeline.toml:3: pipeline.max_delay: must be positive, got "0s"`},
		{"max delay not a string", `max_delay = 200`, "",
			`pipeline.toml:3: pipeline.max_delay: expected string, got integer`},
		{"rule calls zero", "", "bisect_max_calls = 0",
			`pipeline.toml:11: rule[0].bisect_max_calls: must be between 1 and 1048576, got 0`},
		{"rule negative time", "", `bisect_max_time = "-1s"`,
			`pipeline.toml:11: rule[0].bisect_max_time: must be positive, got "-1s"`},
		{"rule negative share", "", "dead_letter_max_share = -0.5",
			`pipeline.toml:11: rule[0].dead_letter_max_share: must be a share between 0 and 1 (0.1 for 10%), got -0.5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := head + tc.pipeline + "\n" + src + ruleHead + tc.rule + "\n" + sink
			_, err := Parse("pipeline.toml", []byte(doc))
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}
