package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
)

func printRun(w io.Writer, r result) {
	fmt.Fprintf(w, "%-20s wall %7.3f s  cpu %7.3f s  output %7.2f MB  peak RSS %6.0f MB (largest process) %6.0f MB (all processes, PSS sampled)\n",
		r.name, r.wall.Seconds(), r.cpu.Seconds(), mb(r.output), mb(r.maxRSS), mb(r.treeRSS))
}

// printSummary prints the best run of each mode (least wall time) as a
// Markdown table, with the ratios to DuckDB's when it ran.
func printSummary(w io.Writer, results []result) {
	best := map[string]result{}
	var order []string
	for _, r := range results {
		b, ok := best[r.name]
		if !ok {
			order = append(order, r.name)
		}
		if !ok || r.wall < b.wall {
			best[r.name] = r
		}
	}
	var duck *result
	for _, n := range order {
		if strings.HasPrefix(n, "duckdb") {
			d := best[n]
			duck = &d
		}
	}
	fmt.Fprintln(w, "\nbest of each (least wall time):")
	fmt.Fprintln(w, "| run | wall | CPU | output | peak RSS (largest process) | peak PSS (all processes) | speed vs DuckDB (wall) | speed vs DuckDB (per CPU-second) | size vs DuckDB |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, n := range order {
		r := best[n]
		ratios := "| | | "
		if duck != nil {
			ratios = fmt.Sprintf("| %.2f× | %.2f× | %.2f× ", ratio(duck.wall, r.wall), ratio(duck.cpu, r.cpu), float64(r.output)/float64(duck.output))
		}
		fmt.Fprintf(w, "| %s | %.3f s | %.3f s | %.2f MB | %.0f MB | %.0f MB %s|\n",
			n, r.wall.Seconds(), r.cpu.Seconds(), mb(r.output), mb(r.maxRSS), mb(r.treeRSS), ratios)
	}
	for _, prefix := range []string{"", "baseline-"} {
		p, ok1 := best[prefix+"plugins"]
		ip, ok2 := best[prefix+"in-process"]
		if !ok1 || !ok2 {
			continue
		}
		fmt.Fprintf(w, "\n%splugins vs %sin-process: best wall %+.1f %% (%+.1f ms), CPU %+.1f %% (%+.1f ms)",
			prefix, prefix, 100*(p.wall.Seconds()/ip.wall.Seconds()-1), ms(p.wall-ip.wall),
			100*(p.cpu.Seconds()/ip.cpu.Seconds()-1), ms(p.cpu-ip.cpu))
		pw, pc := medians(results, prefix+"plugins")
		iw, ic := medians(results, prefix+"in-process")
		fmt.Fprintf(w, "; median wall %+.1f %% (%+.1f ms), CPU %+.1f %% (%+.1f ms)\n",
			100*(pw.Seconds()/iw.Seconds()-1), ms(pw-iw), 100*(pc.Seconds()/ic.Seconds()-1), ms(pc-ic))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// medians returns the median wall and CPU times of the runs of mode.
func medians(results []result, mode string) (wall, cpu time.Duration) {
	var walls, cpus []time.Duration
	for _, r := range results {
		if r.name == mode {
			walls, cpus = append(walls, r.wall), append(cpus, r.cpu)
		}
	}
	return median(walls), median(cpus)
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if n := len(d); n%2 == 0 {
		return (d[n/2-1] + d[n/2]) / 2
	}
	return d[len(d)/2]
}

// ratio is how many times faster b is than a (a / b).
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return a.Seconds() / b.Seconds()
}

// checkRows fails unless the Parquet file at path holds rows rows.
func checkRows(path string, rows int64) error {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("read back %s: %w", path, err)
	}
	defer rdr.Close()
	if n := rdr.NumRows(); n != rows {
		return fmt.Errorf("%s holds %d rows, expected %d", path, n, rows)
	}
	return nil
}

// printColumns prints the compressed size of each column in each file.
func printColumns(w io.Writer, files map[string]string) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	sizes := map[string]map[string]int64{}
	var cols []string
	for _, n := range names {
		f, err := os.Open(files[n])
		if err != nil {
			return err
		}
		rdr, err := file.NewParquetReader(f)
		if err != nil {
			f.Close()
			return fmt.Errorf("read %s: %w", files[n], err)
		}
		md := rdr.MetaData()
		sizes[n] = map[string]int64{}
		for g := 0; g < md.NumRowGroups(); g++ {
			rg := md.RowGroup(g)
			for c := 0; c < rg.NumColumns(); c++ {
				cc, err := rg.ColumnChunk(c)
				if err != nil {
					rdr.Close()
					return err
				}
				name := cc.PathInSchema().String()
				if _, ok := sizes[n][name]; !ok && n == names[0] {
					cols = append(cols, name)
				}
				sizes[n][name] += cc.TotalCompressedSize()
			}
		}
		fmt.Fprintf(w, "%s: %d row groups\n", n, md.NumRowGroups())
		rdr.Close()
	}
	fmt.Fprintf(w, "\ncolumn sizes (compressed, MB):\n| column | %s |\n|---|%s\n", strings.Join(names, " | "), strings.Repeat("---|", len(names)))
	for _, c := range cols {
		fmt.Fprintf(w, "| %s |", c)
		for _, n := range names {
			fmt.Fprintf(w, " %.2f |", mb(sizes[n][c]))
		}
		fmt.Fprintln(w)
	}
	return nil
}
