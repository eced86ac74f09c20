// Package pgtest starts a real PostgreSQL server for tests: Debian's
// binaries (/usr/lib/postgresql/*/bin, else initdb and pg_ctl on PATH), a
// cluster made by initdb in a fresh temporary folder, listening on a free
// loopback port and on a unix socket in that folder, started with
// `pg_ctl start -w` and stopped and removed when the test (or the test
// binary, see Main and Shared) ends. No mock: the tests talk to the server
// the connectors will meet.
//
// A test binary that dies without cleaning up (killed, timed out) leaves
// its cluster running, since pg_ctl detaches the server: the next Start
// stops and removes the clusters whose test process is gone.
//
// initdb and postgres refuse to run as root. When the tests run as root
// (a CI container), the cluster is created and run as the unprivileged
// user `nobody` (SysProcAttr.Credential), and its folder is handed to that
// user; otherwise as the current user.
//
// Without PostgreSQL the tests skip, saying how to install it; with
// VIGIE_REQUIRE_POSTGRES=1 (set by .ci/run) they fail instead.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv is the environment variable that turns a missing PostgreSQL
// into a test failure instead of a skip.
const RequireEnv = "VIGIE_REQUIRE_POSTGRES"

// User is the superuser of the test clusters (trust authentication on
// loopback and the socket: a test cluster holds nothing worth a password).
const User = "vigie"

// Server is a running test cluster.
type Server struct {
	// Dir holds the data directory, the socket and the server log.
	Dir string
	// Host and Port are where the server listens on loopback.
	Host string
	Port int
	// Bin is the folder of the PostgreSQL binaries (psql is there too).
	Bin string
	// CAFile is the PEM certificate authority of a StartTLS server.
	CAFile string

	data  string
	cred  *syscall.Credential // run the server as this user (root only)
	dbSeq atomic.Int64
	mu    sync.Mutex
	down  bool
}

// Bin returns the folder of PostgreSQL's binaries: the newest
// /usr/lib/postgresql/N/bin, else the folder of initdb on PATH.
func Bin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin nor on PATH (install them: apt-get install postgresql)")
	}
	return filepath.Dir(p), nil
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// skipOrFail skips t without PostgreSQL, or fails it when RequireEnv is 1.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%v (%s=1)", err, RequireEnv)
	}
	t.Skipf("%v; set %s=1 to fail instead of skipping", err, RequireEnv)
}

// Start starts a cluster for t and stops and removes it when t ends.
// settings are extra server settings ("fsync=off"), passed as -c.
func Start(t testing.TB, settings ...string) *Server {
	t.Helper()
	bin, err := Bin()
	if err != nil {
		skipOrFail(t, err)
	}
	s, err := start(bin, settings, false)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// StartTLS is Start with TLS on: the server presents a certificate for
// 127.0.0.1 and localhost signed by a certificate authority made for it,
// whose PEM file is CAFile (connect with sslmode=verify-full
// sslrootcert=CAFile).
func StartTLS(t testing.TB, settings ...string) *Server {
	t.Helper()
	bin, err := Bin()
	if err != nil {
		skipOrFail(t, err)
	}
	s, err := start(bin, settings, true)
	if err != nil {
		t.Fatalf("start PostgreSQL with TLS: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

var shared struct {
	sync.Mutex
	s   *Server
	err error
}

// Shared returns the test binary's cluster, started at the first call and
// stopped by Main. A package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Tests that share it each take their own database (Server.Database).
func Shared(t testing.TB) *Server {
	t.Helper()
	bin, err := Bin()
	if err != nil {
		skipOrFail(t, err)
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = start(bin, []string{"fsync=off", "synchronous_commit=off", "full_page_writes=off"}, false)
	}
	if shared.err != nil {
		t.Fatalf("start PostgreSQL: %v", shared.err)
	}
	return shared.s
}

// Main runs the package's tests and then stops the cluster Shared started,
// if any. It does not return.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.s != nil {
		shared.s.Close()
	}
	shared.Unlock()
	os.Exit(code)
}

// ownerFile, in a cluster's folder, holds the pid of the test process that
// started it.
const ownerFile = "owner.pid"

// reap stops and removes the clusters of test processes that died without
// cleaning up (killed, or timed out): pg_ctl starts the server detached, so
// it outlives them.
func reap(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(baseDir(), "vigie-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // its owner lives
		}
		s := &Server{Dir: dir, Bin: bin, data: filepath.Join(dir, "data"), Port: -1}
		if fi, err := os.Stat(dir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != 0 {
				s.cred = &syscall.Credential{Uid: st.Uid, Gid: st.Gid}
			}
		}
		s.Close()
	}
}

func start(bin string, settings []string, withTLS bool) (s *Server, err error) {
	reap(bin)
	dir, err := os.MkdirTemp(baseDir(), "vigie-pg-")
	if err != nil {
		return nil, err
	}
	s = &Server{Dir: dir, Host: "127.0.0.1", Bin: bin, data: filepath.Join(dir, "data")}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if os.Geteuid() == 0 {
		// initdb and postgres refuse root: run them as nobody, who must
		// own the folder.
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root, the server must run as an unprivileged user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", User, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if withTLS {
		tls, err := s.makeCerts()
		if err != nil {
			return nil, fmt.Errorf("TLS certificates: %w", err)
		}
		settings = append(settings, tls...)
	}
	opts := []string{"-h", s.Host, "-k", dir}
	for _, kv := range settings {
		opts = append(opts, "-c", kv)
	}
	// A port found free may be taken before the server binds it: try a
	// few.
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		out, err := s.run("pg_ctl", "start", "-w", "-t", "60", "-D", s.data, "-l", filepath.Join(dir, "server.log"),
			"-o", strings.Join(append(opts, "-p", strconv.Itoa(s.Port)), " "))
		if err == nil {
			break
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return nil, fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
		}
	}
	return s, nil
}

// baseDir is where clusters' folders go: the temporary folder, or /tmp
// when running as root and the server's user could not reach it (a
// TMPDIR under /root).
func baseDir() string {
	dir := os.TempDir()
	if os.Geteuid() != 0 {
		return dir
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return dir
		}
	}
}

// run runs one of the server's binaries as the server's user.
func (s *Server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.Bin, name), args...)
	cmd.Dir = s.Dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN returns the connection string of database db on loopback: without
// TLS, or verifying the server's certificate for a StartTLS server.
func (s *Server) DSN(db string) string {
	tls := "sslmode=disable"
	if s.CAFile != "" {
		tls = "sslmode=verify-full sslrootcert=" + s.CAFile
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s %s", s.Host, s.Port, User, db, tls)
}

// Database creates a fresh database for t (dropped when t ends) and returns
// its connection string.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if s.isDown() {
			return
		}
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	return s.DSN(name)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Connect returns a connection to dsn, closed when t ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (s *Server) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// Stop stops the server at once (`pg_ctl stop -m immediate`), as a crash
// of the database would: clients see their connections closed. The folder
// stays until Close.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return nil
	}
	s.down = true
	if out, err := s.run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", s.data); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Close stops the server and removes its folder.
func (s *Server) Close() {
	if _, err := os.Stat(filepath.Join(s.data, "postmaster.pid")); err == nil {
		s.Stop()
	}
	os.RemoveAll(s.Dir)
}
