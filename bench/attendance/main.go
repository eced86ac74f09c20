// Command attendance is the CSV → rule → Parquet benchmark of issue 18:
// Vigie against DuckDB on the same job, side by side.
//
// It generates an attendance CSV (10M rows, about 295 MB by default:
// student_id S0000000… cycling over 1M students, day, half_days,
// absent_half_days, justified), builds vigie and the C map rule rule/rate.c
// (rate = absent_half_days / half_days, flag = rate >= 0.1), then runs
// `vigie run` with a csv source, that rule and a zstd parquet sink, with
// plugins and with --in-process, and, when bench/duckdb has its
// node_modules (`cd bench/duckdb && npm ci`), DuckDB's
//
//	COPY (SELECT *, absent_half_days / half_days AS rate, rate >= 0.1 AS flag
//	      FROM read_csv(...)) TO '...parquet' (FORMAT parquet, COMPRESSION zstd)
//
// It prints wall time, CPU time (user + system, children included), output
// size, peak RSS (largest process, and the sampled sum over the process
// tree) for each run, the ratios to DuckDB, and the size of each column in
// both files. From the repository root:
//
//	go run ./bench/attendance                 # 10M rows, in $TMPDIR/vigie-bench
//	go run ./bench/attendance -rows 2000000 -modes plugins,in-process -runs 5
//	go run ./bench/attendance -baseline /tmp/vigie-main   # before/after, same run
//	go run ./bench/attendance -check      # and check the rows against DuckDB's
//
// Run it on an otherwise idle machine and compare ratios within one run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "attendance:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	rows, students int
	dir            string
	threads        int
	modes          []string
	runs           int
	repo           string
	baseline       string // another vigie binary, run as the modes baseline-plugins and baseline-in-process
	check          bool   // compare the rows of Vigie's last output with DuckDB's
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("attendance", flag.ContinueOnError)
	fs.IntVar(&o.rows, "rows", 10_000_000, "rows of the generated CSV")
	fs.IntVar(&o.students, "students", 1_000_000, "distinct student_id values, cycled")
	fs.StringVar(&o.dir, "dir", filepath.Join(os.TempDir(), "vigie-bench"), "folder for the CSV, the binaries and the outputs")
	fs.IntVar(&o.threads, "threads", 2, "DuckDB's threads")
	modes := fs.String("modes", "plugins,in-process,duckdb", "what to run, in order: plugins, in-process, duckdb")
	fs.IntVar(&o.runs, "runs", 1, "times to run each mode (in turn: a, b, c, a, b, c...)")
	fs.BoolVar(&o.check, "check", false, "after the runs, check with DuckDB that Vigie's last output holds the same rows as DuckDB's (EXCEPT ALL both ways; needs the duckdb mode)")
	fs.StringVar(&o.baseline, "baseline", "", "a vigie binary to compare with (say, built from main): adds the modes baseline-plugins and baseline-in-process, run on the same pipeline")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.rows < 1 || o.students < 1 || o.runs < 1 {
		return o, errors.New("rows, students and runs must be at least 1")
	}
	for _, m := range strings.Split(*modes, ",") {
		switch m {
		case "plugins", "in-process", "duckdb", "baseline-plugins", "baseline-in-process":
			o.modes = append(o.modes, m)
		default:
			return o, fmt.Errorf("mode %q: expected plugins, in-process, duckdb, baseline-plugins or baseline-in-process", m)
		}
	}
	if o.baseline != "" && !contains(o.modes, "baseline-plugins") && !contains(o.modes, "baseline-in-process") {
		o.modes = append([]string{"baseline-plugins", "baseline-in-process"}, o.modes...)
	}
	if o.baseline == "" && (contains(o.modes, "baseline-plugins") || contains(o.modes, "baseline-in-process")) {
		return o, errors.New("the baseline modes need -baseline")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if o.repo, err = repoRoot(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	csvPath := filepath.Join(o.dir, fmt.Sprintf("attendance_%d_%d.csv", o.rows, o.students))
	start := time.Now()
	if err := ensureCSV(csvPath, o.rows, o.students); err != nil {
		return err
	}
	st, err := os.Stat(csvPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "input: %s, %d rows, %.1f MB (ready in %s)\n", csvPath, o.rows, mb(st.Size()), time.Since(start).Round(time.Millisecond))

	vigie := filepath.Join(o.dir, "vigie")
	if err := command(ctx, o.repo, "go", "build", "-o", vigie, "./cmd/vigie"); err != nil {
		return err
	}
	wasm := filepath.Join(o.dir, "rate.wasm")
	if err := command(ctx, o.repo, "sh", "rules/sdk/c/build.sh", wasm, "bench/attendance/rule/rate.c"); err != nil {
		return fmt.Errorf("build the rule (needs clang and lld): %w", err)
	}
	vigieOut := filepath.Join(o.dir, "vigie.parquet")
	toml := filepath.Join(o.dir, "pipeline.toml")
	if err := os.WriteFile(toml, []byte(pipelineTOML(csvPath, wasm, vigieOut, filepath.Join(o.dir, "dead_letter.csv"))), 0o644); err != nil {
		return err
	}
	duckDir := filepath.Join(o.repo, "bench", "duckdb")
	duckOut := filepath.Join(o.dir, "duckdb.parquet")
	hasDuck := dirExists(filepath.Join(duckDir, "node_modules", "@duckdb", "node-api"))

	var results []result
	for i := 0; i < o.runs; i++ {
		for _, m := range o.modes {
			var cmd *exec.Cmd
			out := vigieOut
			switch m {
			case "plugins":
				cmd = exec.CommandContext(ctx, vigie, "run", toml)
			case "in-process":
				cmd = exec.CommandContext(ctx, vigie, "run", "--in-process", toml)
			case "baseline-plugins":
				cmd = exec.CommandContext(ctx, o.baseline, "run", toml)
			case "baseline-in-process":
				cmd = exec.CommandContext(ctx, o.baseline, "run", "--in-process", toml)
			case "duckdb":
				if !hasDuck {
					if i == 0 {
						fmt.Fprintf(stdout, "duckdb: skipped, not installed (cd bench/duckdb && npm ci)\n")
					}
					continue
				}
				os.Remove(duckOut)
				out = duckOut
				cmd = exec.CommandContext(ctx, "node", filepath.Join(duckDir, "copy.mjs"), csvPath, duckOut, fmt.Sprint(o.threads))
				m = fmt.Sprintf("duckdb (%d threads)", o.threads)
			}
			cmd.Dir = o.dir
			r, err := measure(ctx, m, cmd)
			if err != nil {
				return err
			}
			if st, err := os.Stat(out); err == nil {
				r.output = st.Size()
			}
			if out == vigieOut {
				if err := checkRows(vigieOut, int64(o.rows)); err != nil {
					return err
				}
			}
			results = append(results, r)
			printRun(stdout, r)
		}
	}
	printSummary(stdout, results)
	if o.check {
		if !hasDuck || !contains(o.modes, "duckdb") {
			return errors.New("-check needs DuckDB (cd bench/duckdb && npm ci) and the duckdb mode")
		}
		out, err := exec.CommandContext(ctx, "node", filepath.Join(duckDir, "compare.mjs"), vigieOut, duckOut).Output()
		if err != nil {
			return fmt.Errorf("compare the outputs: %w", err)
		}
		fmt.Fprintf(stdout, "\nsame rows as DuckDB's output (vigie = a, duckdb = b): %s", out)
		if !strings.Contains(string(out), `"only_a":0,"only_b":0`) {
			return errors.New("the output of vigie and that of DuckDB do not hold the same rows")
		}
	}
	files := map[string]string{"vigie": vigieOut}
	if hasDuck && contains(o.modes, "duckdb") {
		files["duckdb"] = duckOut
	}
	return printColumns(stdout, files)
}

// pipelineTOML is the Vigie side of the job.
func pipelineTOML(csv, wasm, out, dead string) string {
	return fmt.Sprintf(`[pipeline]
name = "attendance_bench"
dead_letter = %q

[[source]]
name = "attendance"
connector = "csv"
[source.options]
path = %q

[[rule]]
name = "rate"
input = "attendance"
module = %q

[[sink]]
name = "out"
input = "rate"
connector = "parquet"
[sink.options]
path = %q
compression = "zstd"
`, dead, csv, wasm, out)
}

// command runs name with args in dir, its output to stderr.
func command(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// repoRoot returns the folder of the go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("run it from the vigie repository (no go.mod above the working directory)")
		}
		dir = up
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mb(n int64) float64 { return float64(n) / 1e6 }
