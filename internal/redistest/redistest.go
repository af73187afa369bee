// Package redistest runs real redis-server processes (standalone, replica,
// sentinel, single-node cluster) for tests, each in its own t.TempDir() on a
// free loopback port, and stops them by the PID it started in t.Cleanup.
//
// It needs /usr/bin/redis-server (Debian package redis-server). When that is
// missing the test fails (skips with HBD_SKIP_ROOT=1, never under CI=true)
// (see internal/testenv).
//
// A Server is safe for use by one test goroutine at a time.
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/resp"
	"github.com/hbdproject/hbd/internal/testenv"
)

// startTimeout bounds how long a redis-server may take to answer PING after
// it was started; generous because CI machines are small and noisy.
const startTimeout = 15 * time.Second

// Server is one redis-server process started by a test.
type Server struct {
	// Addr is host:port of the server on 127.0.0.1.
	Addr string
	// Dir is the server's working directory (config, AOF, logs).
	Dir string

	t    testing.TB
	bin  string
	args []string // arguments after the binary, without --port/--dir

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed when cmd has been waited for
}

// Option adjusts the command line of a server before it starts.
type Option func(*options)

type options struct {
	args     []string
	sentinel string // config file body for sentinel mode; "" otherwise
}

// WithArgs appends redis-server command-line options, e.g.
// WithArgs("--replicaof", "127.0.0.1", "6380").
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// Start starts a standalone redis-server on a free 127.0.0.1 port with
// append-only persistence (so Restart keeps the data) and registers its stop
// with t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	return start(t, o)
}

// StartReplica starts a redis-server that replicates master.
func StartReplica(t testing.TB, master *Server) *Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	return Start(t, WithArgs("--replicaof", host, port))
}

// StartSentinel starts a redis-server in sentinel mode that monitors master
// under masterName with quorum 1. downAfter is sentinel's
// down-after-milliseconds; keep it small in tests.
func StartSentinel(t testing.TB, masterName string, master *Server, downAfter time.Duration) *Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	conf := fmt.Sprintf(
		"sentinel monitor %s %s %s 1\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s %d\n"+
			"sentinel parallel-syncs %s 1\n",
		masterName, host, port,
		masterName, downAfter.Milliseconds(),
		masterName, (10 * downAfter).Milliseconds(),
		masterName)
	return start(t, options{sentinel: conf})
}

// StartCluster starts one redis-server in cluster mode and assigns it all
// 16384 hash slots, which makes a working one-node Redis Cluster.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	s := Start(t, WithArgs("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"))
	if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		t.Fatalf("redistest: assigning cluster slots: %v", err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		info, err := s.Do("CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: cluster not ok after %v: %q %v", startTimeout, info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func start(t testing.TB, o options) *Server {
	t.Helper()
	bin := testenv.RequireCommand(t, "redis-server", "redis-server")
	s := &Server{t: t, bin: bin, Dir: t.TempDir()}
	if o.sentinel != "" {
		// Sentinel rewrites its config file, so it lives in the temp dir.
		conf := filepath.Join(s.Dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(o.sentinel), 0o600); err != nil {
			t.Fatalf("redistest: writing sentinel config: %v", err)
		}
		s.args = []string{conf, "--sentinel"}
	} else {
		s.args = []string{
			"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		}
		s.args = append(s.args, o.args...)
	}
	// A free port can be taken between probing and binding; try a few.
	var err error
	for range 5 {
		var port int
		port, err = freePort()
		if err != nil {
			continue
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.launch(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: starting redis-server: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// URL returns redis://Addr/0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Port returns the TCP port of the server.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.Addr)
	return p
}

// PID returns the process ID of the running server, or 0 when it is stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) launch() error {
	args := append([]string{}, s.args...)
	args = append(args, "--port", s.Port(), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--daemonize", "no", "--protected-mode", "no")
	lf, err := os.OpenFile(filepath.Join(s.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.log, s.exited = cmd, lf, exited
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := s.Do("PING"); err == nil {
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd, s.log, s.exited = nil, nil, nil
			s.mu.Unlock()
			lf.Close()
			return fmt.Errorf("redis-server exited early (log: %s): %s", lf.Name(), tail(lf.Name()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s did not answer PING within %v", s.Addr, startTimeout)
		}
	}
}

// Kill stops the server with SIGKILL (as a crash would) and waits for it to
// exit. It is a no-op when the server is already stopped.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, lf, exited := s.cmd, s.log, s.exited
	s.cmd, s.log, s.exited = nil, nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // by the PID this package started
	deadline := time.Now().Add(startTimeout)
	select {
	case <-exited:
	case <-time.After(startTimeout):
		s.t.Errorf("redistest: redis-server pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
	// Also wait until the port refuses connections, so a test that kills and
	// then expects failures sees them.
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if lf != nil {
		lf.Close()
	}
}

// Restart starts the server again on the same port and directory after Kill
// (or kills it first if it is running). Data written with appendfsync always
// survives.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range 20 { // the port may linger for a moment
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restarting redis-server on %s: %v", s.Addr, err)
}

// Do sends one command over a fresh connection and returns the reply as text
// (bulk strings and status replies as is, integers in decimal, arrays as
// their elements joined by newlines). An error reply is returned as an error.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return resp.Do(c, args...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
