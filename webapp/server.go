package webapp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/redis/go-redis/v9"
)

// Server is the web app of one node. Make it with New; it is safe for
// concurrent use.
type Server struct {
	cfg      Config
	store    Store
	rdb      redis.UniversalClient
	ownedRDB bool // New built rdb, so Close closes it
	log      *slog.Logger

	draining atomic.Bool
	inflight atomic.Int64

	handler      http.Handler
	adminHandler http.Handler
}

// New returns a Server for cfg that keeps sessions in rdb. When rdb is nil,
// New builds a client from cfg.Redis with NewRedisClient, and Close (or the
// end of Run) closes it. A nil log discards log lines.
func New(cfg Config, rdb redis.UniversalClient, log *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, rdb: rdb, log: log.With("node", cfg.Node)}
	if s.rdb == nil {
		c, err := redisconn.New(cfg.Redis)
		if err != nil {
			return nil, err
		}
		s.rdb, s.ownedRDB = c, true
	}
	s.store = NewRedisStore(s.rdb, cfg.KeyPrefix, cfg.SessionTTL)
	s.handler = s.instrument(s.sameOriginOnly(s.routes()))
	s.adminHandler = s.adminOnly(s.adminRoutes())
	return s, nil
}

// Handler returns the handler of the main listener: page, API, /healthz.
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler returns the handler of the admin listener. It refuses
// requests from non-loopback addresses with 403.
func (s *Server) AdminHandler() http.Handler { return s.adminHandler }

// Drain enters drain mode: /healthz answers 503 "draining" and every response
// carries Connection: close, so clients move to another node on their next
// request while requests in flight finish. Idempotent.
func (s *Server) Drain() {
	if !s.draining.Swap(true) {
		s.log.Info("drain mode on", "inflight", s.Inflight())
	}
}

// Undrain leaves drain mode. Idempotent.
func (s *Server) Undrain() {
	if s.draining.Swap(false) {
		s.log.Info("drain mode off")
	}
}

// Draining reports whether the server is in drain mode.
func (s *Server) Draining() bool { return s.draining.Load() }

// Inflight returns the number of requests on the main handler that have
// started and not yet finished.
func (s *Server) Inflight() int { return int(s.inflight.Load()) }

// Close releases the Redis client if New built it.
func (s *Server) Close() error {
	if s.ownedRDB {
		return s.rdb.Close()
	}
	return nil
}

// Run listens on cfg.Listen and cfg.Admin and serves until ctx ends; then it
// drains, waits up to cfg.DrainTimeout for requests in flight, and shuts
// down. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("webapp: listening on %s: %w", s.cfg.Listen, err)
	}
	aln, err := s.listenAdmin()
	if err != nil {
		ln.Close()
		return err
	}
	return s.Serve(ctx, ln, aln)
}

// Serve is Run on listeners the caller opened (tests pass 127.0.0.1:0). It
// closes both listeners before it returns.
func (s *Server) Serve(ctx context.Context, ln, adminLn net.Listener) error {
	defer s.Close()
	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	main := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          errorLog,
	}
	admin := &http.Server{
		Handler:           s.adminHandler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		ErrorLog:          errorLog,
	}
	errc := make(chan error, 2)
	go func() { errc <- main.Serve(ln) }()
	go func() { errc <- admin.Serve(adminLn) }()
	s.log.Info("web app serving", "listen", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"version", s.cfg.Version)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc: // a listener failed: stop the other one too
		s.log.Error("web app listener failed", "err", serveErr)
	}

	s.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	// The main listener first: the admin one stays up meanwhile so that
	// hbd can watch /admin/inflight fall to 0.
	shutErr := main.Shutdown(sctx)
	if shutErr != nil {
		s.log.Error("graceful shutdown timed out; closing connections",
			"timeout", s.cfg.DrainTimeout, "inflight", s.Inflight(), "err", shutErr)
		main.Close()
		shutErr = fmt.Errorf("webapp: shutting down: %d request(s) still in flight after %v: %w",
			s.Inflight(), s.cfg.DrainTimeout, shutErr)
	}
	actx, acancel := context.WithTimeout(context.Background(), time.Second)
	defer acancel()
	if err := admin.Shutdown(actx); err != nil {
		admin.Close()
	}
	// Collect the Serve goroutines.
	for range cap(errc) {
		if serveErr != nil {
			break // one has already reported
		}
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	s.log.Info("web app stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("webapp: serving: %w", serveErr)
	}
	return shutErr
}

// instrument wraps the main handler: it counts requests in flight, sets the
// identity headers, adds Connection: close while draining, turns a panic
// into a 500 and logs one line per request at debug level.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		start := time.Now()
		rw := &responseWriter{ResponseWriter: w, s: s}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				if !rw.wroteHeader {
					s.writeError(rw, http.StatusInternalServerError, "internal", "internal error")
				}
			}
			// Path only: no query, cookie or body, so no session contents.
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path,
				"status", rw.status, "dur", time.Since(start), "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(rw, r)
	})
}

// responseWriter records the status and stamps the headers the moment the
// response starts, so a request in flight when drain begins still gets
// Connection: close.
type responseWriter struct {
	http.ResponseWriter
	s           *Server
	status      int
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
	h := w.Header()
	h.Set("X-Served-By", w.s.cfg.Node)
	h.Set("X-App-Version", w.s.cfg.Version)
	if w.s.draining.Load() {
		h.Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// listenAdmin opens the admin listener: a unix socket of mode 0660 in
// AdminGroup (a stale socket file is replaced), or loopback TCP.
func (s *Server) listenAdmin() (net.Listener, error) {
	path, ok := AdminSocket(s.cfg.Admin)
	if !ok {
		ln, err := net.Listen("tcp", s.cfg.Admin)
		if err != nil {
			return nil, fmt.Errorf("webapp: listening on admin %s: %w", s.cfg.Admin, err)
		}
		return ln, nil
	}
	// Made under a temporary name and renamed once its mode and group are
	// set, so that nobody can connect while it is still open to all.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("webapp: admin socket %s: %w (run as root, or pass --admin unix:PATH somewhere you may write)", path, err)
	}
	tmp := path + ".new"
	_ = os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("webapp: listening on admin socket %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("webapp: admin socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o660); err != nil {
		return fail(err)
	}
	if g, err := user.LookupGroup(s.cfg.AdminGroup); err != nil {
		s.log.Warn("admin socket keeps this process's group", "group", s.cfg.AdminGroup, "err", err)
	} else if gid, err := strconv.Atoi(g.Gid); err != nil {
		return fail(err)
	} else if err := os.Chown(tmp, -1, gid); err != nil {
		return fail(err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		return fail(fmt.Errorf("exists and is not a socket"))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &unlinkListener{Listener: ln, path: path}, nil
}

// unlinkListener removes its socket file when closed.
type unlinkListener struct {
	net.Listener
	path string
	once sync.Once
}

func (l *unlinkListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}

// adminOnly guards the admin endpoints: with AdminToken every request must
// carry it; a TCP peer must be loopback in any case, in case the listener
// was bound wider than intended. A unix socket's own mode guards it.
func (s *Server) adminOnly(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && !ap.Addr().Unmap().IsLoopback() {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "forbidden", Message: "admin endpoints answer local clients only"})
			return
		}
		if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized", Message: "admin endpoints need the admin token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
