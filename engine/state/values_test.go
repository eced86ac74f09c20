package state

import (
	"testing"
)

func TestValuesPendingUntilCommit(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(v *Values, k string) string {
		t.Helper()
		b, ok, err := v.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return "<none>"
		}
		return string(b)
	}
	v := s.Values("alerts")
	if err := v.Set([]byte("S1"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if got := get(v, "S1"); got != "a" {
		t.Errorf("pending write: Get = %s, want a", got)
	}
	if got := get(s.Values("alerts"), "S1"); got != "<none>" {
		t.Errorf("another handle sees the pending write: %s", got)
	}
	v.Discard()
	if got := get(v, "S1"); got != "<none>" {
		t.Errorf("after Discard: %s", got)
	}
	for _, kv := range [][2]string{{"S1", "a"}, {"S2", "b"}} {
		if err := v.Set([]byte(kv[0]), []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := v.Delete([]byte("S2")); err != nil {
		t.Fatal(err)
	}
	if got := get(v, "S2"); got != "<none>" {
		t.Errorf("pending delete: Get = %s", got)
	}
	if err := v.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v = s.Values("alerts")
	if got1, got2 := get(v, "S1"), get(v, "S2"); got1 != "a" || got2 != "<none>" {
		t.Errorf("after reopening: S1 %s, S2 %s; want a and none", got1, got2)
	}
	if got := get(s.Values("alerts2"), "S1"); got != "<none>" { // another stage: its own keyspace
		t.Errorf("other stage's keyspace: S1 = %s", got)
	}
}
