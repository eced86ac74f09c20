package metrics

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// TokenEnv is the environment variable holding the bearer token that
// protects /metrics (ServeOptions.Token); TokenFileEnv names a file holding
// it instead.
const (
	TokenEnv     = "VIGIE_METRICS_TOKEN"
	TokenFileEnv = "VIGIE_METRICS_TOKEN_FILE"
)

// ErrNotLoopback is returned by CheckAddr for an address that is not on
// the loopback interface, unless remote listening is allowed.
var ErrNotLoopback = errors.New("not a loopback address")

// CheckAddr checks a host:port to listen on: the host must be a loopback
// address (127.0.0.0/8, ::1, localhost) unless allowRemote. An empty host
// ("":9464) listens on every interface, so it is remote too.
func CheckAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q: %w (the metrics and console expose pipeline data: listen on 127.0.0.1, or allow remote listening explicitly)", addr, ErrNotLoopback)
}

// LoadToken returns the bearer token from file if given, else from the
// file named by VIGIE_METRICS_TOKEN_FILE, else from VIGIE_METRICS_TOKEN;
// "" when none is set.
func LoadToken(file string) (string, error) {
	if file == "" {
		file = os.Getenv(TokenFileEnv)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("metrics token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("metrics token: %s is empty", file)
		}
		return tok, nil
	}
	return os.Getenv(TokenEnv), nil
}

// requireBearer answers 401 to a request without the token.
func requireBearer(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigie metrics"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Server is an HTTP server started by Serve.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Serve checks addr (CheckAddr), listens on it and serves h until Close.
// It returns once listening, so that the address is known (an addr with
// port 0 gets a free port: see Addr).
func Serve(addr string, allowRemote bool, h http.Handler, log *slog.Logger) (*Server, error) {
	if err := CheckAddr(addr, allowRemote); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, letting requests in progress finish within ctx.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	return err
}
