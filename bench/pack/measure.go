package main

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/vigie-edu/vigie/bench/internal/proctree"
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
// memory, the process tree's PSS sampled every 50 ms (proctree): these
// runs last a minute.
func measure(_ context.Context, name string, cmd *exec.Cmd) (result, error) {
	u, err := proctree.Run(cmd, 50*time.Millisecond)
	r := result{name: name, wall: u.Wall, cpu: u.CPU, maxRSS: u.MaxRSS, treeRSS: u.TreePSS}
	if err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}
