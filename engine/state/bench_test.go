package state

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkTimelinesMillionStudents keeps 10 rows for each of 1M students
// (arriving in date order across students, as a year of exports would) and
// walks every timeline once. Run it with
//
//	go test -c -o /tmp/state.test ./engine/state
//	/usr/bin/time -v /tmp/state.test -test.run '^$' -test.bench MillionStudents -test.benchtime 1x
//
// to see that peak memory stays near the store's budget, not 1M timelines.
func BenchmarkTimelinesMillionStudents(b *testing.B) { benchTimelines(b, 1_000_000, Options{}) }

// BenchmarkTimelines100K is the same over 100K students, for quick
// before/after comparisons.
func BenchmarkTimelines100K(b *testing.B) { benchTimelines(b, 100_000, Options{}) }

// BenchmarkTimelinesWriteThenScan is BenchmarkTimelines100K over a store
// opened as a group rule at the end of its input opens it (no compactions
// while it is filled, a small block cache); compare the two in one run:
//
//	go test ./engine/state -run '^$' -bench 'Timelines(100K|WriteThenScan)' -benchtime 3x
func BenchmarkTimelinesWriteThenScan(b *testing.B) {
	benchTimelines(b, 100_000, Options{WriteThenScan: true})
}

func benchTimelines(b *testing.B, students int, opts Options) {
	const days, batch = 10, 65536
	mem := memory.NewGoAllocator()
	for range b.N {
		opts.MemoryBytes = 64 << 20
		s, err := OpenTemp(opts)
		if err != nil {
			b.Fatal(err)
		}
		tl, err := s.Timelines(spec())
		if err != nil {
			b.Fatal(err)
		}
		rb := array.NewRecordBuilder(mem, schema)
		rows := 0
		appendBatch := func() {
			rec := rb.NewRecordBatch()
			if err := tl.Append(rec); err != nil {
				b.Fatal(err)
			}
			rec.Release()
			rows = 0
		}
		for d := range days {
			for st := range students {
				rb.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("S%07d", st))
				rb.Field(1).(*array.Date32Builder).Append(arrow.Date32(20300 + d*7))
				rb.Field(2).(*array.Float64Builder).Append(float64(st%20) / 2)
				rb.Field(3).(*array.Int32Builder).Append(int32(d))
				rb.Field(4).(*array.BooleanBuilder).Append(st%3 == 0)
				if rows++; rows == batch {
					appendBatch()
				}
			}
		}
		if rows > 0 {
			appendBatch()
		}
		rb.Release()
		groups, seen := 0, 0
		err = tl.Scan(context.Background(), mem, ScanOptions{BatchRows: batch}, func(rec arrow.RecordBatch, starts []int) error {
			groups += len(starts) - 1
			seen += int(rec.NumRows())
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if groups != students || seen != students*days {
			b.Fatalf("scanned %d groups, %d rows", groups, seen)
		}
		s.Close()
		b.ReportMetric(float64(students*days)/b.Elapsed().Seconds(), "rows/s")
	}
}
