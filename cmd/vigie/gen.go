package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/vigie-edu/vigie/synth/academy"
)

// newGenCmd is `vigie gen`: it writes a synthetic academy, a OneRoster
// bundle, marks, half-day absences, xAPI statements, Pronote-style exports
// and the ground truth of who drifts toward dropout (package synth/academy).
func newGenCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Write a synthetic academy with ground truth",
		Long: `Write a synthetic academy: a OneRoster bundle, marks, half-day absences,
xAPI statements, Pronote-style exports and the ground truth of who drifts
toward dropout (package synth/academy). The same seed writes the same bytes.`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	students := fs.Int("students", 1000, "number of students")
	schools := fs.Int("schools", 0, "number of schools (0: one per 600 students, at least 3)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed writes the same bytes")
	year := fs.Int("year", 2025, "school year starting in September of this year")
	zone := fs.String("zone", "C", "holiday zone: A, B or C")
	out := fs.String("out", "academy", "output folder")
	formats := fs.String("format", strings.Join(academy.AllFormats, ","), "comma-separated outputs: "+strings.Join(academy.AllFormats, ", "))
	profile := fs.String("profile", "", "rates file (JSON or TOML) over the defaults, see synth/academy/README.md")
	platformDays := fs.Int("platform-days", 0, "days of platform logs (format platform) from the first day of the year (0: the first term)")
	workers := fs.Int("workers", 0, "generating goroutines (0: GOMAXPROCS); the output does not depend on it")
	_ = cmd.RegisterFlagCompletionFunc("zone", cobra.FixedCompletions([]string{"A", "B", "C"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = do(func(*cobra.Command, []string) int {
		return cmdGen(academy.Options{Dir: *out, Students: *students, Schools: *schools, Seed: *seed,
			Year: *year, Zone: *zone, Workers: *workers, Mem: memory.NewGoAllocator(), PlatformDays: *platformDays}, *formats, *profile, stdout, stderr)
	})
	return cmd
}

// cmdGen generates the academy of o with the comma-separated formats and
// the rates of the profile file, if any.
func cmdGen(o academy.Options, formats, profile string, stdout, stderr io.Writer) int {
	p := academy.DefaultProfile()
	if profile != "" {
		var err error
		if p, err = academy.LoadProfile(profile); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
	}
	var fmts []string
	for _, f := range strings.Split(formats, ",") {
		if f = strings.TrimSpace(f); f != "" {
			fmts = append(fmts, f)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	o.Formats, o.Profile = fmts, p
	res, err := academy.Generate(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "vigie gen: %v\n", err)
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitFailed
	}
	var total int64
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "%-40s %12d rows %14d bytes\n", f.Path, f.Rows, f.Bytes)
		total += f.Bytes
	}
	fmt.Fprintf(stdout, "wrote %d students, %d schools, %d classes, %d files, %d bytes in %s: %.0f students/s\n",
		res.Students, res.Schools, res.Classes, len(res.Files), total, res.Elapsed.Round(1e6), res.Rate())
	return exitOK
}
