package heartbeat

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// TCPOptions tunes a TCPTransport. A zero field takes its default.
type TCPOptions struct {
	// DialTimeout bounds one connection attempt. Default 500ms: a peer on
	// the LAN answers a SYN within a millisecond, and the retry comes from
	// the backoff, not from the kernel's 1 s SYN retransmit.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one frame to a peer's connection; on
	// timeout the connection is dropped and redialled. Default 500ms.
	WriteTimeout time.Duration
	// UserTimeout is TCP_USER_TIMEOUT: how long sent data, or keepalive
	// probes, may stay unanswered before the kernel drops the connection.
	// Default 1s. Peer liveness is judged from frame arrival, not from the
	// connection; this only makes a dead connection get replaced quickly.
	UserTimeout time.Duration
	// KeepAlive is the idle time before the first TCP keepalive probe and
	// the interval between probes. It detects a dead peer on connections
	// we only read from. Default 1s.
	KeepAlive time.Duration
	// QueueLen is how many frames may wait per peer while its connection
	// is slow or down; when full the oldest is dropped. Default 4: older
	// heartbeats are worthless once a newer one is queued.
	QueueLen int
	// BackoffMin and BackoffMax bound the wait between connection attempts
	// to a peer; it doubles per failure and each wait is jittered to
	// between half and all of it. Defaults 50ms and 1s: a restarted peer is
	// reached within about a second, a dead one costs one SYN a second.
	BackoffMin, BackoffMax time.Duration
	// AuthTimeout is how long an incoming connection may stay without an
	// authentic frame before it is closed. Default 1s; a sender that
	// writes a regular beat over TCP only every so often needs at least
	// twice that gap.
	AuthTimeout time.Duration
	// Logger receives connection events (key "peer"). Default: discarded.
	Logger *slog.Logger
}

func (o TCPOptions) withDefaults() TCPOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, 500*time.Millisecond)
	def(&o.WriteTimeout, 500*time.Millisecond)
	def(&o.UserTimeout, time.Second)
	def(&o.KeepAlive, time.Second)
	def(&o.BackoffMin, 50*time.Millisecond)
	def(&o.BackoffMax, time.Second)
	def(&o.AuthTimeout, time.Second)
	o.BackoffMax = max(o.BackoffMax, o.BackoffMin)
	if o.QueueLen <= 0 {
		o.QueueLen = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// keepAliveCount is how many unanswered keepalive probes drop a
// connection; TCP_USER_TIMEOUT, when set, overrides it on Linux.
const keepAliveCount = 3

// maxConnsPerPeer caps authenticated incoming connections per configured
// peer (an IP may host several peers, in tests); beyond it the oldest
// authenticated one from that IP is closed. A restarted peer opens a new
// connection before its old one is found dead, so allow two.
const maxConnsPerPeer = 2

// maxPendingPerPeer caps incoming connections per configured peer that
// have not yet delivered an authentic frame: a pool of their own, as
// OpenSSH's MaxStartups, so that anyone who can open connections from a
// peer's address (a local user on the peer host) never displaces the
// genuine one. Beyond it the oldest pending one from that IP is closed.
const maxPendingPerPeer = 4

// acceptRetry is the pause after a failed Accept (e.g. EMFILE), so the
// accept loop does not spin.
const acceptRetry = 50 * time.Millisecond

// TCPTransport carries frames over persistent TCP connections, the second
// path next to UDP. It keeps one outgoing connection to each peer, used
// only for writing, and reads frames from the connections that peers open
// to it. Each frame on a stream is prefixed with its length (2 bytes,
// big-endian). Connections from IPs that are not peers are closed at once
// and counted as UnknownPeer.
//
// Send enqueues into a small per-peer queue and never blocks; a per-peer
// goroutine started by Run dials, reconnects with capped, jittered
// exponential backoff, and writes with a deadline. Frames sent before Run
// wait in the queue.
//
// An incoming connection counts against its peer's cap (maxConnsPerPeer)
// only once deliver has reported one of its frames authentic. Until then it
// sits in a small pool of its own (maxPendingPerPeer) and must deliver an
// authentic frame within AuthTimeout, or it is closed; a pending
// connection never evicts an authenticated one.
//
// Send, Stats and Close are safe for concurrent use, also with Run. Run is
// called once; it calls deliver from one goroutine per incoming connection,
// one call at a time.
type TCPTransport struct {
	ln    net.Listener
	local netip.Addr // IP outgoing connections are bound to; invalid: any
	peers []*tcpPeer
	ips   map[netip.Addr]int
	opts  TCPOptions
	log   *slog.Logger

	c         counters
	running   atomic.Bool
	closed    atomic.Bool
	deliverMu sync.Mutex

	mu     sync.Mutex
	cancel context.CancelFunc // Run's; nil before Run
	stop   bool               // set once Close or Run's ctx ended it
	in     []inConn           // incoming connections, oldest first
}

type tcpPeer struct {
	addr  netip.AddrPort
	queue chan []byte

	mu  sync.Mutex
	out net.Conn // the current outgoing connection, nil while down
}

type inConn struct {
	conn   net.Conn
	ip     netip.Addr
	authed bool // has delivered an authentic frame
}

// ListenTCP listens on laddr and returns a transport to peers. Outgoing
// connections are made from laddr's IP (unless it is unspecified).
func ListenTCP(laddr netip.AddrPort, peers []netip.AddrPort, opts TCPOptions) (*TCPTransport, error) {
	laddr = unmap(laddr)
	opts = opts.withDefaults()
	network := "tcp6"
	switch {
	case laddr.Addr().Is4():
		network = "tcp4"
	case laddr.Addr().IsUnspecified():
		network = "tcp"
	}
	lc := net.ListenConfig{
		KeepAliveConfig: keepAliveConfig(opts),
		Control:         controlFunc(opts),
	}
	ln, err := lc.Listen(context.Background(), network, laddr.String())
	if err != nil {
		return nil, fmt.Errorf("heartbeat: listening on TCP %v: %w", laddr, err)
	}
	t, err := NewTCPTransport(ln, peers, opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return t, nil
}

// NewTCPTransport returns a transport accepting peers' connections on ln,
// which the caller has opened as it wishes. The transport owns ln from then
// on: Close closes it.
func NewTCPTransport(ln net.Listener, peers []netip.AddrPort, opts TCPOptions) (*TCPTransport, error) {
	ps, ips, err := checkPeers(peers)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	t := &TCPTransport{ln: ln, ips: ips, opts: opts, log: opts.Logger}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		if a := unmap(ta.AddrPort()).Addr(); !a.IsUnspecified() {
			t.local = a
		}
	}
	for _, p := range ps {
		t.peers = append(t.peers, &tcpPeer{addr: p, queue: make(chan []byte, opts.QueueLen)})
	}
	return t, nil
}

func keepAliveConfig(o TCPOptions) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: o.KeepAlive, Interval: o.KeepAlive, Count: keepAliveCount}
}

// controlFunc sets the socket options of listening and dialling sockets
// before bind/connect. Accepted sockets inherit them from the listener;
// tune sets them again on each connection anyway.
func controlFunc(o TCPOptions) func(network, address string, rc syscall.RawConn) error {
	return func(network, address string, rc syscall.RawConn) error {
		setTOS(rc)
		if err := setUserTimeout(rc, o.UserTimeout); err != nil {
			return fmt.Errorf("heartbeat: setting TCP_USER_TIMEOUT: %w", err)
		}
		return nil
	}
}

// tune applies the per-connection options. Errors are logged, not fatal:
// the connection still carries frames, only dead-peer detection is slower.
func (t *TCPTransport) tune(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.SetNoDelay(true) // Go's default; one heartbeat must not wait for the next
	if err := tc.SetKeepAliveConfig(keepAliveConfig(t.opts)); err != nil {
		t.log.Warn("setting TCP keepalive", "peer", conn.RemoteAddr().String(), "err", err)
	}
	if rc, err := tc.SyscallConn(); err == nil {
		setTOS(rc)
		if err := setUserTimeout(rc, t.opts.UserTimeout); err != nil {
			t.log.Warn("setting TCP_USER_TIMEOUT", "peer", conn.RemoteAddr().String(), "err", err)
		}
	}
}

// LocalAddr returns the address the transport listens on.
func (t *TCPTransport) LocalAddr() netip.AddrPort {
	if ta, ok := t.ln.Addr().(*net.TCPAddr); ok {
		return unmap(ta.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(t.ln.Addr().String())
	return ap
}

// Send queues a copy of frame for every peer and returns at once. A peer
// whose queue is full loses its oldest queued frame (counted in
// QueueDrops). It fails only for an oversized frame or after Close.
func (t *TCPTransport) Send(frame []byte) error {
	if len(frame) == 0 || len(frame) > MaxFrameSize {
		return fmt.Errorf("heartbeat: sending %d-byte frame: %w", len(frame), ErrMalformed)
	}
	if t.closed.Load() {
		return fmt.Errorf("heartbeat: sending over TCP: %w", net.ErrClosed)
	}
	b := append([]byte(nil), frame...) // shared by the peers' writers, read-only
	for _, p := range t.peers {
		t.enqueue(p, b)
	}
	return nil
}

func (t *TCPTransport) enqueue(p *tcpPeer, b []byte) {
	// Bounded: between dropping the oldest and queueing, a concurrent Send
	// may take the freed slot.
	for range 3 {
		select {
		case p.queue <- b:
			return
		default:
		}
		select {
		case <-p.queue:
			t.c.queueDrops.Add(1)
		default:
		}
	}
	t.c.queueDrops.Add(1) // b itself
}

// Run accepts the peers' connections and delivers the frames read from
// them, and keeps a connection to each peer to write queued frames, until
// ctx is done or Close is called. It returns nil then, after all its
// goroutines have returned and all connections are closed.
func (t *TCPTransport) Run(ctx context.Context, deliver func(Inbound) bool) error {
	if !t.running.CompareAndSwap(false, true) {
		return errRunTwice
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.mu.Lock()
	if t.stop {
		t.mu.Unlock()
		return nil
	}
	t.cancel = cancel
	t.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() {
		<-ctx.Done()
		t.shutdown()
	})
	for _, p := range t.peers {
		wg.Go(func() { t.runPeer(ctx, p) })
	}
	err := t.acceptLoop(ctx, &wg, deliver)
	cancel()
	wg.Wait()
	return err
}

// shutdown closes the listener and the incoming connections, which ends
// the accept loop and the readers; the writers watch ctx.
func (t *TCPTransport) shutdown() {
	t.mu.Lock()
	t.stop = true
	in := t.in
	t.in = nil
	t.mu.Unlock()
	_ = t.ln.Close()
	for _, c := range in {
		_ = c.conn.Close()
	}
}

func (t *TCPTransport) acceptLoop(ctx context.Context, wg *sync.WaitGroup, deliver func(Inbound) bool) error {
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			t.log.Warn("accepting TCP connection", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(acceptRetry):
			}
			continue
		}
		from := remoteAddrPort(conn)
		if !from.IsValid() || t.ips[ipKey(from.Addr())] == 0 {
			t.c.unknownPeer.Add(1)
			t.log.Debug("rejected TCP connection from unknown peer", "peer", from.String())
			conn.Close()
			continue
		}
		if !t.track(conn, ipKey(from.Addr())) {
			continue // shutting down; track closed it
		}
		t.c.accepted.Add(1)
		t.tune(conn)
		wg.Go(func() {
			defer t.untrack(conn)
			t.readConn(conn, from, deliver)
		})
	}
}

func remoteAddrPort(conn net.Conn) netip.AddrPort {
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return unmap(ta.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	return unmap(ap)
}

// track registers an incoming connection as pending, closing the oldest
// pending one from the same IP beyond the pool's size. It returns false,
// having closed conn, when the transport is shutting down.
func (t *TCPTransport) track(conn net.Conn, ip netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stop {
		conn.Close()
		return false
	}
	t.in = append(t.in, inConn{conn: conn, ip: ip})
	t.capLocked(ip, false, maxPendingPerPeer*t.ips[ip])
	return true
}

// promote moves conn from the pending pool to the authenticated ones,
// closing the oldest authenticated connection from its IP beyond the cap.
// It reports whether conn was pending.
func (t *TCPTransport) promote(conn net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := slices.IndexFunc(t.in, func(c inConn) bool { return c.conn == conn })
	if i < 0 || t.in[i].authed {
		return false
	}
	t.in[i].authed = true
	t.capLocked(t.in[i].ip, true, maxConnsPerPeer*t.ips[t.in[i].ip])
	return true
}

// capLocked closes the oldest connections from ip in one pool (pending or
// authenticated) until at most limit remain. t.mu must be held.
func (t *TCPTransport) capLocked(ip netip.Addr, authed bool, limit int) {
	same := func(c inConn) bool { return c.ip == ip && c.authed == authed }
	n := 0
	for _, c := range t.in {
		if same(c) {
			n++
		}
	}
	kind := "pending"
	if authed {
		kind = "authenticated"
	}
	for ; n > limit; n-- {
		i := slices.IndexFunc(t.in, same)
		t.log.Debug("closing oldest "+kind+" TCP connection from peer", "peer", t.in[i].conn.RemoteAddr().String())
		t.in[i].conn.Close() // its reader untracks it
		t.in = slices.Delete(t.in, i, i+1)
	}
}

func (t *TCPTransport) untrack(conn net.Conn) {
	conn.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.in = slices.DeleteFunc(t.in, func(c inConn) bool { return c.conn == conn })
}

// readConn reads length-prefixed frames from an incoming connection until
// it fails or carries a bad length (the stream cannot be resynchronised).
// Until a frame proves authentic the connection has AuthTimeout to send
// one.
func (t *TCPTransport) readConn(conn net.Conn, from netip.AddrPort, deliver func(Inbound) bool) {
	br := bufio.NewReaderSize(streamIO(conn), 2*(2+MaxFrameSize))
	var hdr [2]byte
	authed := false
	if err := conn.SetReadDeadline(time.Now().Add(t.opts.AuthTimeout)); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Debug("reading TCP stream", "peer", from.String(), "err", err)
			}
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 || n > MaxFrameSize {
			t.c.malformed.Add(1)
			t.log.Warn("closing TCP stream with bad frame length", "peer", from.String(), "len", n)
			return
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			return
		}
		at := time.Now()
		t.c.received.Add(1)
		t.deliverMu.Lock()
		ok := deliver(Inbound{Data: data, From: from, Path: PathTCP, At: at})
		t.deliverMu.Unlock()
		if ok && !authed {
			authed = true
			t.promote(conn)
			_ = conn.SetReadDeadline(time.Time{}) // on a closed connection the next read fails anyway
		}
	}
}

// runPeer keeps a connection to p and writes p's queued frames to it.
func (t *TCPTransport) runPeer(ctx context.Context, p *tcpPeer) {
	log := t.log.With("peer", p.addr.String())
	backoff := t.opts.BackoffMin
	for {
		t.c.dials.Add(1)
		conn, err := t.dial(ctx, p.addr)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.c.dialErrors.Add(1)
			log.Debug("connecting to peer over TCP", "err", err, "retry_in", backoff)
		} else {
			up := time.Now()
			log.Info("connected to peer over TCP")
			p.setOut(conn)
			err := t.writeLoop(ctx, conn, p)
			p.setOut(nil)
			if ctx.Err() != nil {
				return
			}
			log.Info("lost TCP connection to peer", "err", err)
			if time.Since(up) >= t.opts.BackoffMax {
				backoff = t.opts.BackoffMin // it was up a while: not flapping
			}
		}
		if !sleepCtx(ctx, jitter(backoff)) {
			return
		}
		backoff = min(2*backoff, t.opts.BackoffMax)
	}
}

func (p *tcpPeer) setOut(c net.Conn) {
	p.mu.Lock()
	p.out = c
	p.mu.Unlock()
}

// RTTs returns, for each peer with an established outgoing connection, the
// kernel's smoothed round-trip time of that connection (TCP_INFO). The
// heartbeat frames it carries are the samples. Safe for concurrent use.
func (t *TCPTransport) RTTs() map[netip.Addr]time.Duration {
	out := make(map[netip.Addr]time.Duration, len(t.peers))
	for _, p := range t.peers {
		p.mu.Lock()
		c := p.out
		p.mu.Unlock()
		tc, ok := c.(*net.TCPConn)
		if !ok {
			continue
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			continue
		}
		if rtt, ok := smoothedRTT(rc); ok {
			out[p.addr.Addr()] = rtt
		}
	}
	return out
}

func (t *TCPTransport) dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{
		Timeout:         t.opts.DialTimeout,
		KeepAliveConfig: keepAliveConfig(t.opts),
		Control:         controlFunc(t.opts),
	}
	if t.local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: t.local.AsSlice(), Zone: t.local.Zone()}
	}
	conn, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	t.tune(conn)
	return conn, nil
}

var errPeerClosed = errors.New("heartbeat: peer closed the connection")

// writeLoop writes queued frames to conn until a write fails, the peer
// closes the connection or ctx is done; it closes conn before returning.
// Nothing is read from conn but end of stream: reading it notices at once
// that a restarted peer has gone, rather than at the next write.
func (t *TCPTransport) writeLoop(ctx context.Context, conn net.Conn, p *tcpPeer) error {
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		_, _ = io.Copy(io.Discard, conn)
	}()
	defer func() {
		conn.Close()
		<-dead
	}()
	buf := make([]byte, 0, 2+MaxFrameSize)
	w := streamIO(conn)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-dead:
			return errPeerClosed
		case b := <-p.queue:
			buf = binary.BigEndian.AppendUint16(buf[:0], uint16(len(b)))
			buf = append(buf, b...)
			if err := writeFrame(conn, w, buf, t.opts.WriteTimeout); err != nil {
				t.c.sendErrors.Add(1)
				return err
			}
			t.c.sent.Add(1)
		}
	}
}

// writeFrame writes b to conn (through w) within timeout. Where w can write
// without waiting, the deadline is set only when the socket buffer is
// full: re-arming a timer for every frame woke the runtime at every beat.
func writeFrame(conn net.Conn, w io.Writer, b []byte, timeout time.Duration) error {
	nw, ok := w.(interface{ writeNow([]byte) (int, error) })
	if ok {
		n, err := nw.writeNow(b)
		if err != nil || n == len(b) {
			return err
		}
		b = b[n:]
	}
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	if ok {
		return conn.SetWriteDeadline(time.Time{})
	}
	return nil
}

// jitter returns a duration between d/2 and d ("equal jitter"), so that
// two nodes that lost each other at the same moment do not redial in step.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// Stats returns the transport's counters.
func (t *TCPTransport) Stats() TransportStats { return t.c.snapshot() }

// Close stops Run, closes the listener and every connection. It does not
// wait for Run to return. Later calls return nil.
func (t *TCPTransport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	t.mu.Lock()
	t.stop = true
	cancel := t.cancel
	t.mu.Unlock()
	if cancel != nil {
		cancel() // Run's shutdown closes the rest
	}
	if err := t.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("heartbeat: closing TCP listener: %w", err)
	}
	return nil
}
