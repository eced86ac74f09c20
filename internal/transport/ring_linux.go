//go:build linux

package transport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// ringDir is where rings are created: /dev/shm when it is a usable
// directory, else os.TempDir().
var ringDir = sync.OnceValue(func() string {
	const shm = "/dev/shm"
	if fi, err := os.Stat(shm); err == nil && fi.IsDir() && syscall.Access(shm, 2|1) == nil {
		return shm
	}
	return os.TempDir()
})

var sweepOnce sync.Once

// sweepRings removes the ring files of processes that no longer exist (a
// host killed between creating a ring and its peer opening it).
func sweepRings(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, ringPrefix+"*"))
	for _, p := range names {
		rest := strings.TrimPrefix(filepath.Base(p), ringPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.Remove(p)
		}
	}
}

// createRing creates a ring of capacity data bytes in dir ("" for
// ringDir()).
func createRing(dir string, capacity int) (*ring, error) {
	if capacity <= 0 || capacity%ringAlign != 0 || capacity > maxRingBytes {
		return nil, fmt.Errorf("ring capacity %d", capacity)
	}
	if dir == "" {
		dir = ringDir()
		sweepOnce.Do(func() { sweepRings(dir) })
	}
	f, err := os.CreateTemp(dir, ringPrefix+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	path := f.Name()
	size := ringHeaderBytes + capacity
	if err := f.Truncate(int64(size)); err != nil {
		os.Remove(path)
		return nil, err
	}
	b, err := mmapFile(f, size)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	r := &ring{mem: b, data: b[ringHeaderBytes:], cap: uint64(capacity), name: path, path: path}
	*r.word(hdrCap) = uint64(capacity)
	atomic.StoreUint64(r.word(hdrMagic), ringMagic)
	return r, nil
}

// openRing maps the ring file at path, created by the peer, and unlinks
// it: from then on only the two mappings hold it.
func openRing(path string) (*ring, error) {
	if !strings.HasPrefix(filepath.Base(path), ringPrefix) || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("ring path %q", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	os.Remove(path)
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() || size <= ringHeaderBytes || size > ringHeaderBytes+maxRingBytes {
		return nil, fmt.Errorf("ring file %s: not a ring (%s, %d bytes)", path, fi.Mode(), size)
	}
	b, err := mmapFile(f, int(size))
	if err != nil {
		return nil, err
	}
	r := &ring{mem: b, data: b[ringHeaderBytes:], cap: uint64(size - ringHeaderBytes), name: path}
	var magic, capacity uint64
	if err := guard(func() { magic, capacity = atomic.LoadUint64(r.word(hdrMagic)), *r.word(hdrCap) }); err != nil {
		r.close()
		return nil, err
	}
	if magic != ringMagic || capacity != r.cap || capacity%ringAlign != 0 {
		r.close()
		return nil, fmt.Errorf("ring file %s: bad header", path)
	}
	return r, nil
}

func mmapFile(f *os.File, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func munmap(b []byte) { syscall.Munmap(b) }

// dropPages frees the memory behind b, a part of a ring's shared mapping,
// in every process that maps it (the file's pages: MADV_REMOVE punches a
// hole in it); the range reads as zeros after. Best effort.
func dropPages(b []byte) {
	if len(b) > 0 {
		syscall.Madvise(b, syscall.MADV_REMOVE)
	}
}
