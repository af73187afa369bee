package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/testenv"
	"github.com/vishvananda/netlink"
)

// The daemon tests run the real daemon (real netlink, real sockets) with a
// scripted peer. So that nothing touches the machine's own interfaces, the
// test binary re-runs itself in a private network namespace (unshare
// --net) as root, where it makes a veth pair for the VIPs; the peer is a
// UDP socket on another loopback address. Without root the daemon tests
// fail, or skip with HBD_SKIP_ROOT=1; the pure tests run either way.

const inNetnsEnv = "HBD_DAEMON_TEST_NETNS"

const (
	testIf    = "hbd0"
	daemonHB  = "127.0.0.1:8707"
	peerHB    = "127.0.0.2:8707"
	testVIP4  = "198.51.100.10/24"
	testVIP6  = "2001:db8::10/64"
	peerName  = "pc02"
	selfName  = "pc01"
	clusterID = 7
)

func TestMain(m *testing.M) {
	if os.Getenv(inNetnsEnv) == "" && os.Geteuid() == 0 {
		cmd := exec.Command("unshare", append([]string{"--net", "--", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			fmt.Fprintln(os.Stderr, "running the daemon tests in a private network namespace:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(inNetnsEnv) != "" {
		for _, args := range [][]string{
			{"link", "set", "lo", "up"},
			{"link", "add", testIf, "type", "veth", "peer", "name", "hbd1"},
			{"link", "set", testIf, "up"},
			{"link", "set", "hbd1", "up"},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "ip %s: %v: %s\n", strings.Join(args, " "), err, out)
				os.Exit(1)
			}
		}
	}
	os.Exit(m.Run())
}

// requireNetns fails (skips with HBD_SKIP_ROOT=1) unless the test runs in
// the private namespace TestMain made.
func requireNetns(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	if os.Getenv(inNetnsEnv) == "" {
		t.Fatal("not in the test's private network namespace")
	}
}

// fixture is a running daemon and its scripted peer.
type fixture struct {
	t      *testing.T
	d      *Daemon
	dir    string
	cfg    string // config path
	key    []byte
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	peer   *fakePeer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseConfig is the daemon's config: pc01, priority 100, one peer.
func baseConfig(dir string) string {
	return fmt.Sprintf(`node: %s
priority: 100
cluster_id: %d
interface: %s
vips: [%s, %q]
listen: %s
peers: [%s]
interval: 50ms
dead_after: 1500ms
hold_down: 200ms
auth_key_file: %s
control_socket: %s
metrics: 127.0.0.1:9707
`, selfName, clusterID, testIf, testVIP4, testVIP6, daemonHB, peerHB, filepath.Join(dir, "key"), filepath.Join(dir, "hbd.sock"))
}

// start runs the daemon on config text; the peer listens but says nothing
// until told to.
func start(t *testing.T, cfgText string) *fixture {
	t.Helper()
	requireNetns(t)
	dir := t.TempDir()
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, cfg: filepath.Join(dir, "hbd.yaml"), key: key, done: make(chan error, 1), logs: &syncBuffer{}}
	f.writeConfig(strings.ReplaceAll(cfgText, "DIR", dir))
	res, err := config.Load(f.cfg, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.key = res.Key // the file's text is the key
	f.peer = newFakePeer(t, res.Key)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(f.logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelInfo}))
	f.d, err = newDaemon(res, Options{ConfigPath: f.cfg, Version: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- f.d.run(ctx) }()
	t.Cleanup(f.stop)
	f.waitStatus("the control socket", func(*control.Status) bool { return true })
	return f
}

func (f *fixture) writeConfig(text string) {
	f.t.Helper()
	if err := os.WriteFile(f.cfg, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// stop ends the daemon and waits for it; idempotent.
func (f *fixture) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		f.t.Error("the daemon did not stop within 10s")
	}
}

func (f *fixture) ctl(req control.Request) *control.Response {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := control.Call(ctx, filepath.Join(f.dir, "hbd.sock"), req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

func (f *fixture) status() *control.Status {
	f.t.Helper()
	r := f.ctl(control.Request{Cmd: control.CmdStatus})
	if !r.OK || r.Status == nil {
		f.t.Fatalf("status: %+v", r)
	}
	return r.Status
}

// waitStatus polls the status until cond holds (10 s at most).
func (f *fixture) waitStatus(what string, cond func(*control.Status) bool) *control.Status {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := control.Call(ctx, filepath.Join(f.dir, "hbd.sock"), control.Request{Cmd: control.CmdStatus})
		cancel()
		if err == nil && resp.Status != nil && cond(resp.Status) {
			return resp.Status
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 10s; last status %+v, err %v\nlogs:\n%s", what, resp, err, f.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLog waits until the daemon's log contains s.
func (f *fixture) waitLog(s string) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(f.logs.String(), s) {
		if time.Now().After(deadline) {
			f.t.Fatalf("no log line with %q within 10s:\n%s", s, f.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// held lists the VIPs on the test interface (from the kernel).
func held(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, a := range linkAddrs(t) {
		if a == testVIP4 || a == testVIP6 {
			out = append(out, a)
		}
	}
	return out
}

// linkAddrs lists the addresses on the test interface, in CIDR form.
func linkAddrs(t *testing.T) []string {
	t.Helper()
	link, err := netlink.LinkByName(testIf)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.IPNet.String()
	}
	return out
}

// handoffRoutes counts the hand-off routes (vip/handoff.go) on the host.
func handoffRoutes(t *testing.T) int {
	t.Helper()
	n := 0
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: 255}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Protocol == 0xbd {
				n++
			}
		}
	}
	return n
}

// fakePeer is pc02: it sends the frames a test scripts and records the
// daemon's.
type fakePeer struct {
	t    *testing.T
	conn *net.UDPConn
	key  []byte
	to   *net.UDPAddr
	boot uint64
	seq  uint64
	rx   *heartbeat.Receiver

	mu     sync.Mutex
	frames []heartbeat.Frame
	stop   chan struct{}
}

func newFakePeer(t *testing.T, key []byte) *fakePeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(peerHB)))
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePeer{t: t, conn: conn, key: key, boot: 42, to: net.UDPAddrFromAddrPort(netip.MustParseAddrPort(daemonHB)),
		rx: heartbeat.NewReceiver(key, clusterID, peerName, 42), stop: make(chan struct{})}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			f, err := p.rx.Accept(buf[:n], from)
			if errors.Is(err, heartbeat.ErrNoSession) {
				// A silent peer has no session; the frame is still the
				// daemon's, authentic, and worth recording.
				f, err = heartbeat.Unmarshal(buf[:n], p.key)
			}
			if err == nil {
				p.frames = append(p.frames, f)
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.quiet(); conn.Close() })
	return p
}

// frame is a frame from pc02 with the given state and priority.
func (p *fakePeer) frame(kind election.Kind, state election.State, prio int, flags election.Flags) heartbeat.Frame {
	return heartbeat.Frame{Kind: kind, Cluster: clusterID, State: state, Priority: uint8(prio), Flags: flags,
		Epoch: 1, Node: peerName, SentAt: time.Now()}
}

// send sends f now, with the next sequence number.
func (p *fakePeer) send(f heartbeat.Frame) {
	p.mu.Lock()
	p.seq++
	f.Boot, f.Seq = p.boot, p.seq
	f.Sessions = p.rx.Sessions(nil) // our challenge to the daemon, and the echo of its challenge
	p.mu.Unlock()
	b, err := f.Marshal(p.key)
	if err != nil {
		p.t.Error(err)
		return
	}
	if _, err := p.conn.WriteToUDP(b, p.to); err != nil && !errors.Is(err, net.ErrClosed) {
		p.t.Error(err)
	}
}

// beatEvery sends next() every interval until quiet; next runs on the
// beat goroutine.
func (p *fakePeer) beatEvery(interval time.Duration, next func() heartbeat.Frame) {
	p.quiet()
	p.mu.Lock()
	stop := make(chan struct{})
	p.stop = stop
	p.mu.Unlock()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			p.send(next())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// quiet stops beating.
func (p *fakePeer) quiet() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
}

// received returns the frames the daemon sent so far.
func (p *fakePeer) received() []heartbeat.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]heartbeat.Frame(nil), p.frames...)
}

// waitFrame waits for a frame from the daemon matching cond.
func (p *fakePeer) waitFrame(what string, cond func(heartbeat.Frame) bool) heartbeat.Frame {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, f := range p.received() {
			if cond(f) {
				return f
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no frame from the daemon: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
