package main

// A copy of bench/attendance/measure.go (both are commands, package main),
// sampling every 50 ms instead of 10: these runs last a minute.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is what one measured run took.
type result struct {
	name    string
	wall    time.Duration
	cpu     time.Duration // user + system, the process and every child it waited for
	maxRSS  int64         // bytes: the largest peak of one process (wait4's ru_maxrss)
	treeRSS int64         // bytes: the largest sum of the PSS of the process tree, sampled

}

// measure runs cmd to completion and returns its wall time, CPU time and
// memory. The tree's RSS is sampled every 50 ms from /proc (Linux), so a
// peak shorter than that may be missed; ru_maxrss is exact per process.
func measure(ctx context.Context, name string, cmd *exec.Cmd) (result, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var max int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if n := treeRSS(cmd.Process.Pid); n > max {
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
	r := result{name: name, wall: wall, treeRSS: <-peak}
	if err != nil {
		return r, fmt.Errorf("%s: %w\n%s", name, err, stderr.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.maxRSS = ru.Maxrss * 1024
	}
	return r, nil
}

// treeRSS returns the summed proportional set size (PSS: a page shared by
// n processes counts 1/n in each, so the vigie binary mapped by the engine
// and its plugins counts once) of pid and its descendants, 0 where /proc
// cannot tell.
func treeRSS(root int) int64 {
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
