// Command pack measures `vigie run` of one pipeline (the early-warning
// pack over 100,000 students, docs/performance.md) with several vigie
// binaries, in turn, in one run: wall time, CPU time of the engine and its
// plugin processes, the largest process's peak RSS, the peak of the summed
// PSS of all processes (sampled), the load average around each run, and
// the md5 of an output file against the one expected.
//
//	go run ./bench/pack -pipeline /dev/shm/g/term.toml -out /dev/shm/g/out_term_alerts.csv \
//	    -want f6a527c1e60c8fce798bba1180be6112 -runs 2 main=/work/base/vigie-main new=/tmp/vigie
package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
)

func main() {
	pipeline := flag.String("pipeline", "", "pipeline.toml to run")
	out := flag.String("out", "", "output file whose md5 is checked after each run (removed before it)")
	want := flag.String("want", "", "expected md5 of -out")
	runs := flag.Int("runs", 1, "runs of each binary, in turn")
	flag.Parse()
	if *pipeline == "" || flag.NArg() == 0 {
		log.Fatal("usage: pack -pipeline FILE [-out FILE -want MD5] [-runs N] name=/path/to/vigie ...")
	}
	ctx := context.Background()
	fmt.Println("| run | wall | CPU | peak RSS (largest process) | peak PSS (all processes) | load average (start → end) | output |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for i := range *runs {
		for _, arg := range flag.Args() {
			name, bin, ok := strings.Cut(arg, "=")
			if !ok {
				log.Fatalf("%q: want name=/path/to/vigie", arg)
			}
			if *out != "" {
				os.Remove(*out)
			}
			l0 := loadAvg()
			r, err := measure(ctx, name, exec.Command(bin, "run", *pipeline, "--progress", "none"))
			if err != nil {
				log.Fatal(err)
			}
			l1 := loadAvg()
			sum := ""
			if *out != "" {
				sum = md5File(*out)
				if *want != "" {
					if sum == *want {
						sum = "identical (" + sum[:8] + "…)"
					} else {
						sum = "DIFFERENT (" + sum + ")"
					}
				}
			}
			fmt.Printf("| %s #%d | %.1f s | %.1f s | %d MB | %d MB | %s → %s | %s |\n", name, i+1,
				r.wall.Seconds(), r.cpu.Seconds(), r.maxRSS>>20, r.treeRSS>>20, l0, l1, sum)
		}
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func md5File(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "missing"
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable"
	}
	return hex.EncodeToString(h.Sum(nil))
}
