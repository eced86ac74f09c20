package state

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestExportErase keeps timelines of two stages (one keyed by student
// and subject, one by student) and a value per student, then exports and
// erases one student: every record of theirs is found, then gone, and
// nobody else's is touched.
func TestExportErase(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bySubject := spec()
	bySubject.Stage, bySubject.Keys = "by_subject", []int{0, 3}
	for _, sp := range []Spec{spec(), bySubject} {
		tl, err := s.Timelines(sp)
		if err != nil {
			t.Fatal(err)
		}
		rec := record(mem, []row{{"S01", 20000, 1}, {"S01", 20003, 2}, {"S02", 20000, 3}, {"S011", 20001, 4}})
		err = tl.Append(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	vals := s.Values("alerts")
	for _, k := range []string{"S01", "S02", "S011"} {
		key := append([]byte{1}, binary.AppendUvarint(nil, uint64(len(k)))...)
		if err := vals.Set(append(key, k...), []byte("open:"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := vals.Commit(); err != nil {
		t.Fatal(err)
	}

	got, err := s.Export("S01")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range got {
		kinds = append(kinds, r.Stage+"/"+r.Kind)
		if r.Kind == "timeline" && r.Row["student"] != "S01" {
			t.Errorf("exported row of another student: %v", r.Row)
		}
		if r.Kind == "value" && r.Value != "open:S01" {
			t.Errorf("exported value %q", r.Value)
		}
	}
	if want := "risk/timeline risk/timeline by_subject/timeline by_subject/timeline alerts/value"; strings.Join(kinds, " ") != want {
		t.Errorf("exported %s, want %s", strings.Join(kinds, " "), want)
	}
	if day := got[0].Row["day"]; day != "2024-10-04" {
		t.Errorf("day exported as %v (%T)", day, day)
	}

	n, err := s.Erase("S01")
	if err != nil || n != 5 {
		t.Fatalf("Erase = %d, %v; want 5 records", n, err)
	}
	if got, err := s.Export("S01"); err != nil || len(got) != 0 {
		t.Errorf("after erase, export = %v, %v", got, err)
	}
	for _, other := range []string{"S02", "S011"} {
		if got, err := s.Export(other); err != nil || len(got) != 3 {
			t.Errorf("export %s after erasing S01: %d records, %v; want 3", other, len(got), err)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	sc := arrow.NewSchema(append(schema.Fields(), arrow.Field{Name: "at", Type: ts}), nil)
	fp := fingerprint(Spec{Schema: sc, Keys: []int{0, 3}, Order: 1})
	got, keys, order, err := parseFingerprint(fp)
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(Spec{Schema: got, Keys: keys, Order: order}) != fp || order != 1 {
		t.Errorf("%s read back as %s", fp, got)
	}
}

// TestExpire keeps rows on both sides of a cutoff: older rows go, a
// student with no row left also loses the values kept about them.
func TestExpire(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tl, err := s.Timelines(spec())
	if err != nil {
		t.Fatal(err)
	}
	// Days 20000 (2024-10-04) to 20010.
	rec := record(mem, []row{{"S\x00old", 20000, 1}, {"S\x00old", 20001, 1}, {"S02", 20000, 3}, {"S02", 20010, 4}})
	err = tl.Append(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	vals := s.Values("alerts")
	for _, k := range []string{"S\x00old", "S02"} {
		key := append([]byte{1}, binary.AppendUvarint(nil, uint64(len(k)))...)
		if err := vals.Set(append(key, k...), []byte("open")); err != nil {
			t.Fatal(err)
		}
	}
	if err := vals.Commit(); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Date(2024, 10, 10, 12, 0, 0, 0, time.UTC) // day 20006
	n, err := s.Expire(cutoff)
	if err != nil || n != 4 {
		t.Fatalf("Expire = %d, %v; want 4 (3 rows, 1 value)", n, err)
	}
	if got, _ := s.Export("S\x00old"); len(got) != 0 {
		t.Errorf("expired student still has %v", got)
	}
	got, _ := s.Export("S02")
	if len(got) != 2 || got[0].Row["day"] != "2024-10-14" || got[1].Kind != "value" {
		t.Errorf("S02 after expiry: %+v", got)
	}
}

// FuzzParseFingerprint: a schema record read back from disk never makes
// the reader panic, and what it accepts names columns that exist.
func FuzzParseFingerprint(f *testing.F) {
	f.Add(fingerprint(spec()))
	f.Add("columns=a:timestamp[us, tz=UTC],b:utf8 keys=[1] order=0")
	f.Add("columns= keys=[] order=-1")
	f.Fuzz(func(t *testing.T, fp string) {
		sc, keys, order, err := parseFingerprint(fp)
		if err != nil {
			return
		}
		n := len(sc.Fields())
		if order >= n || slices.ContainsFunc(keys, func(k int) bool { return k < 0 || k >= n }) {
			t.Errorf("%q: keys %v, order %d out of %d columns", fp, keys, order, n)
		}
	})
}
