// Package proctree measures a command and its descendants, the way the
// bench commands report them: wall time, CPU time, the largest process's
// peak RSS and the peak of the summed PSS of the whole process tree (the
// engine and its plugin processes). Linux only for the PSS; elsewhere it is 0.
package proctree

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Usage is what one measured run took.
type Usage struct {
	Wall    time.Duration
	CPU     time.Duration // user + system, the process and every child it waited for
	MaxRSS  int64         // bytes: the largest peak of one process (wait4's ru_maxrss)
	TreePSS int64         // bytes: the largest sum of the PSS of the process tree, sampled
}

// Run runs cmd to completion and returns its wall time, CPU time and
// memory. The tree's PSS is sampled every interval from /proc, so a peak
// shorter than that may be missed; ru_maxrss is exact per process. The
// error of a failed run carries its standard error.
func Run(cmd *exec.Cmd, every time.Duration) (Usage, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Usage{}, err
	}
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var max int64
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n := TreePSS(cmd.Process.Pid); n > max {
				max = n
			}
			select {
			case <-done:
				peak <- max
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	u := Usage{Wall: wall, TreePSS: <-peak}
	if err != nil {
		return u, fmt.Errorf("%w\n%s", err, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.MaxRSS = ru.Maxrss * 1024
	}
	return u, nil
}

// TreePSS returns the summed proportional set size (PSS: a page shared by
// n processes counts 1/n in each, so the vigie binary mapped by the engine
// and its plugins counts once) of pid and its descendants, 0 where /proc
// cannot tell.
func TreePSS(root int) int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces: split after ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		parent[pid], _ = strconv.Atoi(f[1])
	}
	var sum int64
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				sum += pss(pid)
				break
			}
		}
	}
	return sum
}

// pss returns the PSS of pid in bytes, 0 if it is gone.
func pss(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
