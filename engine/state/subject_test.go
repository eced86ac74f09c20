package state

import (
	"encoding/binary"
	"fmt"
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

// perRowStore keeps, as a stage with emit = "per_row" and the alerts stage
// after it do, arrival-versioned rows of students S01, S011, S02 and
// S\x00old (days 20000 to 20010) in partitions 0, 3 and 0xFFFFFFFF, and
// announced-alert versions of each in the same partitions.
func perRowStore(t *testing.T, mem memory.Allocator) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	a, err := s.Arrivals(spec())
	if err != nil {
		t.Fatal(err)
	}
	rec := record(mem, []row{{"S01", 20000, 1}, {"S01", 20010, 2}, {"S011", 20000, 3}, {"S02", 20010, 4}, {"S\x00old", 20001, 5}})
	defer rec.Release()
	vs := s.Versions("changes")
	for _, p := range []uint32{0, 3, ^uint32(0)} {
		var w Write
		var ws []VersionWrite
		for i := range int(rec.NumRows()) {
			g, o, r := a.Encode(rec, i)
			w.Put = append(w.Put, Entry{Partition: p, Group: g, Order: o, Seq: uint64(i), Row: r})
			k := rec.Column(0).ValueStr(i)
			// The alerts stage's key: present, length, value, per column.
			key := append(binary.AppendUvarint([]byte{1}, uint64(len(k))), k...)
			ws = append(ws, VersionWrite{Partition: p, Key: key, Seq: uint64(i), Value: []byte(`[{"id":"` + k + `"}]`)})
		}
		if err := a.Commit(w); err != nil {
			t.Fatal(err)
		}
		if err := vs.Commit(ws); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestExportErasePerRow: the per-row timelines ("a") and the announced
// alert versions ("w") of a student are exported, with their partition
// and sequence, and erased, in every partition; nobody else's are.
func TestExportErasePerRow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := perRowStore(t, mem)
	got, err := s.Export("S01")
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range got {
		if r.Arrival == nil {
			t.Fatalf("record without arrival: %+v", r)
		}
		seen = append(seen, fmt.Sprintf("%s/%s@%d:%d", r.Stage, r.Kind, r.Arrival.Partition, r.Arrival.Seq))
		if r.Kind == "timeline" && r.Row["student"] != "S01" || r.Kind == "value" && r.Value != `[{"id":"S01"}]` {
			t.Errorf("exported another student's record: %+v", r)
		}
	}
	want := "risk/timeline@0:0 risk/timeline@0:1 risk/timeline@3:0 risk/timeline@3:1 risk/timeline@4294967295:0 risk/timeline@4294967295:1 " +
		"changes/value@0:0 changes/value@0:1 changes/value@3:0 changes/value@3:1 changes/value@4294967295:0 changes/value@4294967295:1"
	if strings.Join(seen, " ") != want {
		t.Errorf("exported\n%s\nwant\n%s", strings.Join(seen, " "), want)
	}
	if got[0].Row["day"] != "2024-10-04" {
		t.Errorf("day exported as %v", got[0].Row["day"])
	}

	n, err := s.Erase("S01")
	if err != nil || n != 12 {
		t.Fatalf("Erase = %d, %v; want 12 records", n, err)
	}
	if got, err := s.Export("S01"); err != nil || len(got) != 0 {
		t.Errorf("after erase, export = %+v, %v", got, err)
	}
	for _, other := range []string{"S011", "S02", "S\x00old"} {
		if got, err := s.Export(other); err != nil || len(got) != 6 {
			t.Errorf("export %q after erasing S01: %d records, %v; want 6", other, len(got), err)
		}
	}
	// Scan every key: no S01 row or version is left.
	a, err := s.Arrivals(spec())
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, p := range []uint32{0, 3, ^uint32(0)} {
		es, err := a.Load(p, appendOrderedString([]byte{1}, "S01"))
		if err != nil {
			t.Fatal(err)
		}
		left += len(es)
		if _, ok, err := s.Versions("changes").Before(p, append(binary.AppendUvarint([]byte{1}, 3), "S01"...), 1<<62); ok || err != nil {
			t.Errorf("partition %d: S01's announced alerts still kept (%v)", p, err)
		}
	}
	if left != 0 {
		t.Errorf("%d per-row rows of S01 left", left)
	}
}

// TestExpirePerRow: wall-clock retention drops per-row rows before the
// cutoff in every partition; a student with no row left also loses the
// announced alert versions, one with a recent row keeps them.
func TestExpirePerRow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := perRowStore(t, mem)
	cutoff := time.Date(2024, 10, 10, 12, 0, 0, 0, time.UTC) // day 20006
	n, err := s.Expire(cutoff)
	// Rows: S01's day 20000, S011's, S\x00old's, in 3 partitions (9);
	// versions: S011's and S\x00old's, in 3 partitions (6).
	if err != nil || n != 15 {
		t.Fatalf("Expire = %d, %v; want 15 (9 rows, 6 versions)", n, err)
	}
	for key, want := range map[string]int{"S01": 9, "S02": 6, "S011": 0, "S\x00old": 0} {
		got, err := s.Export(key)
		if err != nil || len(got) != want {
			t.Errorf("%q after expiry: %d records, %v; want %d", key, len(got), err, want)
		}
		for _, r := range got {
			if r.Kind == "timeline" && r.Row["day"] != "2024-10-14" {
				t.Errorf("%q: expired row kept: %+v", key, r.Row)
			}
		}
	}
}
