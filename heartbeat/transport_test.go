package heartbeat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/testenv"
)

// Generous bounds: the test machine is small and noisy.
const (
	waitFor     = 15 * time.Second
	resendEvery = 50 * time.Millisecond
)

// checkGoroutines fails the test if, once every other cleanup has run, the
// number of goroutines has not come back to what it was at the start.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() { // registered first: runs last
		deadline := time.Now().Add(waitFor)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("goroutines: %d before, %d after:\n%s",
					before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// sink collects what a transport delivers. It calls every frame authentic
// unless forged says otherwise.
type sink struct {
	ch     chan Inbound
	forged func([]byte) bool
}

func newSink() *sink { return &sink{ch: make(chan Inbound, 4096)} }

func (s *sink) deliver(m Inbound) bool {
	select {
	case s.ch <- m:
	default:
	}
	return s.forged == nil || !s.forged(m.Data)
}

// wait returns the first delivered Inbound that matches, or fails.
func (s *sink) wait(t *testing.T, what string, match func(Inbound) bool) Inbound {
	t.Helper()
	tm := time.NewTimer(waitFor)
	defer tm.Stop()
	for {
		select {
		case m := <-s.ch:
			if match(m) {
				return m
			}
		case <-tm.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// run starts tr.Run and registers a cleanup that closes tr and waits for Run
// to return. The returned channel yields Run's result.
func run(t *testing.T, tr Transport, s *sink) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- tr.Run(context.Background(), s.deliver)
		close(done) // a second waitRun returns at once
	}()
	t.Cleanup(func() {
		tr.Close()
		waitRun(t, done)
	})
	return done
}

func waitRun(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err, ok := <-done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(waitFor):
		buf := make([]byte, 1<<20)
		t.Fatalf("Run did not return:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

// eventually polls cond until it holds, or fails after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitFor); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var frameSeq atomic.Uint64

// newFrame returns a unique signed frame from node.
func newFrame(t *testing.T, node string) []byte {
	f := testFrame()
	f.Node = node
	f.Seq = frameSeq.Add(1)
	f.SentAt = time.Now()
	return mustSign(t, f, testKey)
}

// sendUntil sends fresh frames from node over tr until s receives one of
// them on path, and returns it.
func sendUntil(t *testing.T, tr Transport, node string, s *sink, path Path) Inbound {
	t.Helper()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			_ = tr.Send(newFrame(t, node))
			select {
			case <-stop:
				return
			case <-time.After(resendEvery):
			}
		}
	}()
	defer func() {
		close(stop)
		<-stopped // the Send in flight has returned (and counted)
	}()
	return s.wait(t, node+" frame over "+path.String(), func(m Inbound) bool {
		if m.Path != path {
			return false
		}
		f, err := Unmarshal(m.Data, testKey)
		return err == nil && f.Node == node
	})
}

// loopbacks returns the loopback addresses to test on: 127.0.0.1, and ::1
// unless the host has no IPv6 (then the test fails unless HBD_SKIP_ROOT=1).
func loopbacks(t *testing.T) []string {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		if testenv.Strict() {
			t.Fatalf("no IPv6 loopback (HBD_SKIP_ROOT=1 tests IPv4 only): %v", err)
		}
		t.Logf("no IPv6 loopback, testing IPv4 only: %v", err)
		return []string{"127.0.0.1"}
	}
	c.Close()
	return []string{"127.0.0.1", "::1"}
}

func udpConn(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addrOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return unmap(a.AddrPort())
	case *net.TCPAddr:
		return unmap(a.AddrPort())
	}
	panic("unexpected address type")
}

func TestUDPExchange(t *testing.T) {
	for _, ip := range loopbacks(t) {
		t.Run(ip, func(t *testing.T) {
			checkGoroutines(t)
			ca, cb := udpConn(t, ip), udpConn(t, ip)
			a, err := NewUDPTransport(ca, []netip.AddrPort{addrOf(cb.LocalAddr())})
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewUDPTransport(cb, []netip.AddrPort{addrOf(ca.LocalAddr())})
			if err != nil {
				t.Fatal(err)
			}
			sa, sb := newSink(), newSink()
			run(t, a, sa)
			run(t, b, sb)

			before := time.Now()
			m := sendUntil(t, a, "alpha", sb, PathUDP)
			if m.From != a.LocalAddr() {
				t.Errorf("From = %v, want %v", m.From, a.LocalAddr())
			}
			if m.At.Before(before) || m.At.After(time.Now()) {
				t.Errorf("At = %v, not between %v and now", m.At, before)
			}
			m = sendUntil(t, b, "bravo", sa, PathUDP)
			if m.From != b.LocalAddr() {
				t.Errorf("From = %v, want %v", m.From, b.LocalAddr())
			}
			if st := a.Stats(); st.Sent == 0 || st.Received == 0 || st.UnknownPeer != 0 {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

// TestUDPDualStack: a transport on the IPv6 unspecified address talks to an
// IPv4 peer, and sees its address unmapped.
func TestUDPDualStack(t *testing.T) {
	if len(loopbacks(t)) < 2 {
		t.Skip("no IPv6 loopback")
	}
	checkGoroutines(t)
	cb := udpConn(t, "127.0.0.1")
	a, err := ListenUDP(netip.MustParseAddrPort("[::]:0"), []netip.AddrPort{addrOf(cb.LocalAddr())})
	if err != nil {
		t.Fatal(err)
	}
	aAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), a.LocalAddr().Port())
	b, err := NewUDPTransport(cb, []netip.AddrPort{aAddr})
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := newSink(), newSink()
	run(t, a, sa)
	run(t, b, sb)
	if m := sendUntil(t, b, "bravo", sa, PathUDP); m.From != b.LocalAddr() {
		t.Errorf("From = %v, want %v", m.From, b.LocalAddr())
	}
	if m := sendUntil(t, a, "alpha", sb, PathUDP); m.From != aAddr {
		t.Errorf("From = %v, want %v", m.From, aAddr)
	}
}

func TestUDPDropsNonPeers(t *testing.T) {
	checkGoroutines(t)
	peer := netip.MustParseAddrPort("127.0.0.2:9") // the source port will differ: IPs are compared
	a, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{peer})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	run(t, a, s)
	dst := net.UDPAddrFromAddrPort(a.LocalAddr())

	stranger, friend := udpConn(t, "127.0.0.1"), udpConn(t, "127.0.0.2")
	defer stranger.Close()
	defer friend.Close()
	frame := newFrame(t, "bravo")
	mustWrite := func(c *net.UDPConn, b []byte) {
		if _, err := c.WriteTo(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	// One socket reads in order: once the friend's datagram is delivered,
	// the stranger's, sent first, has been dropped.
	mustWrite(stranger, frame)
	mustWrite(friend, frame)
	m := s.wait(t, "the peer's datagram", func(Inbound) bool { return true })
	if m.From.Addr() != peer.Addr() || !bytes.Equal(m.Data, frame) {
		t.Fatalf("delivered %+v", m)
	}
	if st := a.Stats(); st.UnknownPeer != 1 || st.Received != 1 {
		t.Fatalf("Stats = %+v, want UnknownPeer 1, Received 1", st)
	}

	mustWrite(friend, make([]byte, MaxFrameSize+1))
	mustWrite(friend, frame)
	s.wait(t, "the peer's second datagram", func(Inbound) bool { return true })
	if st := a.Stats(); st.Malformed != 1 || st.Received != 2 {
		t.Fatalf("Stats = %+v, want Malformed 1, Received 2", st)
	}
}

func TestUDPSendDoesNotBlock(t *testing.T) {
	checkGoroutines(t)
	gone := udpConn(t, "127.0.0.1")
	peer := addrOf(gone.LocalAddr())
	gone.Close() // nobody listens there any more
	a, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{peer})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a, newSink())
	frame := newFrame(t, "alpha")
	start := time.Now()
	for range 2000 {
		_ = a.Send(frame)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("2000 Sends took %v", d)
	}
	if err := a.Send(make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized Send: %v", err)
	}
}

func TestUDPRunLifecycle(t *testing.T) {
	checkGoroutines(t)
	a, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, func(Inbound) bool { return true }) }()
	time.Sleep(20 * time.Millisecond)
	if err := a.Run(ctx, func(Inbound) bool { return true }); !errors.Is(err, errRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	waitRun(t, done)

	b, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")})
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- b.Run(context.Background(), func(Inbound) bool { return true }) }()
	time.Sleep(20 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitRun(t, done)
	if err := b.Send(newFrame(t, "alpha")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestPeerValidation(t *testing.T) {
	for _, p := range []netip.AddrPort{{}, netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("0.0.0.0:5")} {
		if _, err := ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{p}); err == nil {
			t.Errorf("ListenUDP accepted peer %v", p)
		}
		if _, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{p}, TCPOptions{}); err == nil {
			t.Errorf("ListenTCP accepted peer %v", p)
		}
	}
	ps, ips, err := checkPeers([]netip.AddrPort{
		netip.MustParseAddrPort("[::ffff:127.0.0.1]:5"),
		netip.MustParseAddrPort("127.0.0.1:5"),
		netip.MustParseAddrPort("127.0.0.1:6"),
	})
	if err != nil || len(ps) != 2 || ips[netip.MustParseAddr("127.0.0.1")] != 2 {
		t.Fatalf("checkPeers: %v %v %v", ps, ips, err)
	}
}

func tcpListener(t *testing.T, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestTCPExchange(t *testing.T) {
	for _, ip := range loopbacks(t) {
		t.Run(ip, func(t *testing.T) {
			checkGoroutines(t)
			la, lb := tcpListener(t, ip), tcpListener(t, ip)
			a, err := NewTCPTransport(la, []netip.AddrPort{addrOf(lb.Addr())}, TCPOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewTCPTransport(lb, []netip.AddrPort{addrOf(la.Addr())}, TCPOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// Queued before Run: delivered once connected.
			early := newFrame(t, "alpha")
			if err := a.Send(early); err != nil {
				t.Fatal(err)
			}
			sa, sb := newSink(), newSink()
			run(t, a, sa)
			run(t, b, sb)

			m := sb.wait(t, "the frame sent before Run", func(Inbound) bool { return true })
			if !bytes.Equal(m.Data, early) || m.Path != PathTCP || m.From.Addr() != addrOf(la.Addr()).Addr() {
				t.Fatalf("delivered %+v", m)
			}
			sendUntil(t, b, "bravo", sa, PathTCP)

			// The sockets carry the options.
			a.mu.Lock()
			in := append([]inConn(nil), a.in...)
			a.mu.Unlock()
			if len(in) == 0 {
				t.Fatal("no incoming connection tracked")
			}
			checkUserTimeout(t, in[0].conn, time.Second)
			// The writer counts a frame after its Write returns, which
			// may be after the peer has read it.
			eventually(t, "counters", func() bool {
				st := a.Stats()
				return st.Accepted == 1 && st.Sent > 0 && st.Received > 0 && st.UnknownPeer == 0
			})
		})
	}
}

func checkUserTimeout(t *testing.T, c net.Conn, want time.Duration) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got, err := userTimeout(rc)
	if errors.Is(err, errors.ErrUnsupported) {
		return
	}
	if err != nil || got != want {
		t.Errorf("TCP_USER_TIMEOUT = %v, %v; want %v", got, err, want)
	}
}

func TestTCPDialOptions(t *testing.T) {
	checkGoroutines(t)
	ln := tcpListener(t, "127.0.0.1")
	defer ln.Close()
	a, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{addrOf(ln.Addr())},
		TCPOptions{UserTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, err := a.dial(context.Background(), addrOf(ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkUserTimeout(t, c, 1500*time.Millisecond)
	if got, want := addrOf(c.LocalAddr()).Addr(), a.LocalAddr().Addr(); got != want {
		t.Errorf("dialled from %v, want the listen IP %v", got, want)
	}
}

func TestTCPReconnect(t *testing.T) {
	checkGoroutines(t)
	la := tcpListener(t, "127.0.0.1")
	aAddr := addrOf(la.Addr())
	opts := TCPOptions{BackoffMax: 300 * time.Millisecond}
	b, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"), []netip.AddrPort{aAddr}, opts)
	if err != nil {
		t.Fatal(err)
	}
	bAddr := b.LocalAddr()
	a, err := NewTCPTransport(la, []netip.AddrPort{bAddr}, opts)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := newSink(), newSink()
	run(t, a, sa)
	doneB := run(t, b, sb)
	sendUntil(t, a, "alpha", sb, PathTCP)
	sendUntil(t, b, "bravo", sa, PathTCP)

	// B goes away; A keeps sending without blocking and keeps redialling.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitRun(t, doneB)
	dialErrors := a.Stats().DialErrors
	eventually(t, "a failed redial while the peer is down", func() bool {
		start := time.Now()
		if err := a.Send(newFrame(t, "alpha")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Send took %v", d)
		}
		return a.Stats().DialErrors > dialErrors
	})

	// B comes back on the same port: both directions recover.
	var b2 *TCPTransport
	for deadline := time.Now().Add(waitFor); ; {
		b2, err = ListenTCP(bAddr, []netip.AddrPort{aAddr}, opts)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-listening on %v: %v", bAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sb2 := newSink()
	run(t, b2, sb2)
	sendUntil(t, a, "alpha", sb2, PathTCP)
	for len(sa.ch) > 0 { // frames B sent before it closed
		<-sa.ch
	}
	sendUntil(t, b2, "bravo", sa, PathTCP)
}

func TestTCPSendDoesNotBlock(t *testing.T) {
	checkGoroutines(t)
	// One peer that refuses connections, one that accepts into its backlog
	// but never reads.
	gone := tcpListener(t, "127.0.0.1")
	goneAddr := addrOf(gone.Addr())
	gone.Close()
	stuck := tcpListener(t, "127.0.0.1")
	defer stuck.Close()
	a, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"),
		[]netip.AddrPort{goneAddr, addrOf(stuck.Addr())}, TCPOptions{WriteTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a, newSink())
	frame := newFrame(t, "alpha")
	const n = 20000
	start := time.Now()
	for range n {
		if err := a.Send(frame); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("%d Sends took %v", n, d)
	}
	if st := a.Stats(); st.QueueDrops == 0 {
		t.Errorf("Stats = %+v: expected the queues to overflow", st)
	}
}

func TestTCPRejectsNonPeersAndBadStreams(t *testing.T) {
	checkGoroutines(t)
	peerIP := netip.MustParseAddr("127.0.0.2")
	a, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"),
		[]netip.AddrPort{netip.AddrPortFrom(peerIP, 1)}, TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	run(t, a, s)
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: waitFor}
		c, err := d.Dial("tcp", a.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	expectClosed := func(c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(waitFor))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection not closed by the transport: %v", err)
		}
	}
	writeFrame := func(c net.Conn, b []byte) {
		t.Helper()
		msg := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
		if _, err := c.Write(append(msg, b...)); err != nil {
			t.Fatal(err)
		}
	}

	// A stranger is hung up on.
	expectClosed(dial("127.0.0.1"))
	if st := a.Stats(); st.UnknownPeer != 1 || st.Accepted != 0 {
		t.Fatalf("Stats = %+v", st)
	}

	// The peer, from any port, is heard.
	c := dial(peerIP.String())
	frame := newFrame(t, "bravo")
	writeFrame(c, frame)
	m := s.wait(t, "the peer's frame", func(Inbound) bool { return true })
	if !bytes.Equal(m.Data, frame) || m.Path != PathTCP || m.From.Addr() != peerIP {
		t.Fatalf("delivered %+v", m)
	}
	// A bad length ends the stream: it cannot be resynchronised.
	c.Write([]byte{0xff, 0xff})
	expectClosed(c)
	c = dial(peerIP.String())
	c.Write([]byte{0, 0})
	expectClosed(c)
	if st := a.Stats(); st.Malformed != 2 || st.Accepted != 2 || st.Received != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// dialFrom opens a connection to tr from ip, closed with the test.
func dialFrom(t *testing.T, tr *TCPTransport, ip netip.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}, Timeout: waitFor}
	c, err := d.Dial("tcp", tr.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeStream(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
}

// closedWithin reports whether the transport closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestTCPConnCap(t *testing.T) {
	checkGoroutines(t)
	peerIP := netip.MustParseAddr("127.0.0.2")
	a, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"),
		[]netip.AddrPort{netip.AddrPortFrom(peerIP, 1)}, TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	run(t, a, s)
	var conns []net.Conn
	for i := range maxConnsPerPeer + 1 {
		c := dialFrom(t, a, peerIP)
		writeStream(t, c, []byte{byte(i)})
		s.wait(t, "a frame", func(m Inbound) bool { return m.Data[0] == byte(i) })
		conns = append(conns, c)
	}
	// The oldest authenticated one is closed once the third authenticates.
	if !closedWithin(conns[0], waitFor) {
		t.Fatal("oldest authenticated connection still open")
	}
}

// TestTCPPendingNeverEvictsAuthenticated is finding 2 of the security
// review: anyone who can open connections from a peer's address (a local
// user on the peer host) used to push the genuine connection out of the
// per-peer cap. Connections count only from their first authentic frame.
func TestTCPPendingNeverEvictsAuthenticated(t *testing.T) {
	checkGoroutines(t)
	peerIP := netip.MustParseAddr("127.0.0.2")
	a, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"),
		[]netip.AddrPort{netip.AddrPortFrom(peerIP, 1)}, TCPOptions{AuthTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := newSink()
	s.forged = func(b []byte) bool { return string(b) == "forged" }
	run(t, a, s)
	genuine := dialFrom(t, a, peerIP)
	writeStream(t, genuine, []byte("genuine 1"))
	s.wait(t, "the genuine frame", func(m Inbound) bool { return string(m.Data) == "genuine 1" })

	// A flood of connections from the peer's address: silent ones and ones
	// that send a forged frame.
	var flood []net.Conn
	for i := range 5 * maxPendingPerPeer {
		c := dialFrom(t, a, peerIP)
		if i%2 == 0 {
			writeStream(t, c, []byte("forged"))
		}
		flood = append(flood, c)
	}
	writeStream(t, genuine, []byte("genuine 2"))
	s.wait(t, "the genuine frame after the flood", func(m Inbound) bool { return string(m.Data) == "genuine 2" })
	if closedWithin(genuine, 50*time.Millisecond) {
		t.Fatal("the genuine connection was closed by the flood")
	}
	// The pending pool is small, and each must authenticate in time.
	for _, c := range flood[:len(flood)-maxPendingPerPeer] {
		if !closedWithin(c, waitFor) {
			t.Fatal("a pending connection beyond the pool was not closed")
		}
	}
	for _, c := range flood[len(flood)-maxPendingPerPeer:] {
		if !closedWithin(c, 2*time.Second) {
			t.Fatal("a pending connection outlived AuthTimeout")
		}
	}
	if closedWithin(genuine, 50*time.Millisecond) {
		t.Fatal("the genuine connection was closed")
	}
}

func TestTCPRunLifecycle(t *testing.T) {
	checkGoroutines(t)
	peers := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	a, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"), peers, TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Close before Run: Run returns at once.
	a.Close()
	if err := a.Run(context.Background(), func(Inbound) bool { return true }); err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := a.Send(newFrame(t, "alpha")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}

	b, err := ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"), peers, TCPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, func(Inbound) bool { return true }) }()
	time.Sleep(50 * time.Millisecond)
	if err := b.Run(ctx, func(Inbound) bool { return true }); !errors.Is(err, errRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	waitRun(t, done)
	// The port is free again.
	ln, err := net.Listen("tcp", b.LocalAddr().String())
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	ln.Close()
}

func TestJitter(t *testing.T) {
	for range 1000 {
		d := 100 * time.Millisecond
		if j := jitter(d); j < d/2 || j > d {
			t.Fatalf("jitter(%v) = %v", d, j)
		}
	}
	if jitter(0) != 0 || jitter(1) != 1 {
		t.Fatal("jitter of tiny durations")
	}
}

// A peer that never reads fills the socket buffers; the write that cannot
// complete within the timeout fails (the deadline is set only when a
// write has to wait, so this is its test), and writes that fit need none.
func TestWriteFrameTimesOutOnStuckPeer(t *testing.T) {
	small := func(opt int) net.ListenConfig {
		return net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 4096) })
		}}
	}
	lc := small(syscall.SO_RCVBUF) // inherited by the accepted connection
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: small(syscall.SO_SNDBUF).Control}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := ln.Accept() // never read
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	w := streamIO(conn)
	b := make([]byte, 200)
	const timeout = 100 * time.Millisecond
	start := time.Now()
	failed := make(chan error, 1)
	go func() {
		for {
			if err := writeFrame(conn, w, b, timeout); err != nil {
				failed <- err
				return
			}
		}
	}()
	select {
	case err := <-failed:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write failed with %v, want a deadline", err)
		}
	case <-time.After(10 * time.Second):
		conn.Close() // ends the writer
		<-failed
		t.Fatal("no write timed out against a peer that never reads")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the stuck write failed after %s, timeout %s", took, timeout)
	}
}
