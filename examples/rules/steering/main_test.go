package main

import (
	"strings"
	"testing"
)

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		s      school
		reason string // "" : not flagged; else a part of the reason
	}{
		{"on projection", school{enrolment: 50, projected: 50, hasEnrolment: true}, ""},
		{"10 % above", school{enrolment: 55, projected: 50, hasEnrolment: true}, "enrolment 55, 10 % above the 50 projected"},
		{"just under 10 %", school{enrolment: 54, projected: 50, hasEnrolment: true}, ""},
		{"below", school{enrolment: 40, projected: 50, hasEnrolment: true}, "20 % below"},
		{"a small école, two pupils", school{enrolment: 12, projected: 10, hasEnrolment: true}, ""},
		{"a small école, three pupils", school{enrolment: 13, projected: 10, hasEnrolment: true}, "30 % above"},
		{"no projection", school{enrolment: 13, projected: 0, hasEnrolment: true}, ""},
		{"hours at the threshold", school{peak: 72, hasPeak: true}, "72 teaching hours unreplaced"},
		{"hours under it", school{peak: 68, hasPeak: true}, ""},
		{"both", school{enrolment: 60, projected: 50, hasEnrolment: true, peak: 80, hasPeak: true}, "20 % above the 50 projected; 80 teaching hours"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.s, 0.10, 3, 72)
			if (v.reason == "") != (tc.reason == "") || !strings.Contains(v.reason, tc.reason) {
				t.Errorf("reason %q, want %q", v.reason, tc.reason)
			}
			if v.hasGap != (tc.s.hasEnrolment && tc.s.projected > 0) {
				t.Errorf("gap given: %v", v.hasGap)
			}
		})
	}
}
