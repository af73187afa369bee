package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// udpWriteTimeout bounds one Send. A UDP send only waits when the socket
// buffer is full, which a few hundred bytes per interval never fills; the
// deadline is a guard so that Send can never stall the election loop.
const udpWriteTimeout = 100 * time.Millisecond

// UDPTransport sends every frame as one datagram, unicast to each peer, and
// receives datagrams from the peers' IPs (any source port). Datagrams from
// other IPs are dropped and counted as UnknownPeer, datagrams longer than
// MaxFrameSize as Malformed.
//
// Send, Stats and Close are safe for concurrent use, also with Run. Run is
// called once and calls deliver from its own goroutine.
type UDPTransport struct {
	conn  net.PacketConn
	udp   *net.UDPConn // conn, when it is a *net.UDPConn
	peers []netip.AddrPort
	dsts  []net.Addr
	ips   map[netip.Addr]int
	raw   *rawUDP    // Linux and a *net.UDPConn: raw sendto/recvfrom; nil: the net package
	sas   []sockaddr // with raw: peers' socket addresses, by index of peers

	c         counters
	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// ListenUDP binds laddr and returns a transport to peers. With an IPv4
// laddr the socket is IPv4 only; with the IPv6 unspecified address it is
// dual-stack.
func ListenUDP(laddr netip.AddrPort, peers []netip.AddrPort) (*UDPTransport, error) {
	laddr = unmap(laddr)
	network := "udp6"
	switch {
	case laddr.Addr().Is4():
		network = "udp4"
	case laddr.Addr().IsUnspecified():
		network = "udp"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return nil, fmt.Errorf("heartbeat: listening on UDP %v: %w", laddr, err)
	}
	if rc, err := conn.SyscallConn(); err == nil {
		setTOS(rc)
	}
	t, err := NewUDPTransport(conn, peers)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

// NewUDPTransport returns a transport over conn, which the caller has bound
// as it wishes (tests pass their own). The transport owns conn from then
// on: Close closes it.
func NewUDPTransport(conn net.PacketConn, peers []netip.AddrPort) (*UDPTransport, error) {
	ps, ips, err := checkPeers(peers)
	if err != nil {
		return nil, err
	}
	t := &UDPTransport{conn: conn, peers: ps, ips: ips}
	t.udp, _ = conn.(*net.UDPConn)
	for _, p := range ps {
		t.dsts = append(t.dsts, net.UDPAddrFromAddrPort(p))
	}
	if t.udp != nil {
		if r := newRawUDP(t.udp); r != nil {
			t.raw = r
			for _, p := range ps {
				sa, ok := r.sockaddrFor(p)
				if !ok {
					t.raw, t.sas = nil, nil // a peer of the other family: let the net package say so
					break
				}
				t.sas = append(t.sas, sa)
			}
		}
	}
	return t, nil
}

// LocalAddr returns the address the transport is bound to.
func (t *UDPTransport) LocalAddr() netip.AddrPort {
	if ua, ok := t.conn.LocalAddr().(*net.UDPAddr); ok {
		return unmap(ua.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(t.conn.LocalAddr().String())
	return ap
}

// Send writes frame to every peer, one datagram each. It tries every peer
// and returns the joined errors of those that failed. On Linux a send never
// waits (a full socket buffer drops the frame); elsewhere it waits at most
// udpWriteTimeout, in practice not at all.
func (t *UDPTransport) Send(frame []byte) error {
	if len(frame) == 0 || len(frame) > MaxFrameSize {
		return fmt.Errorf("heartbeat: sending %d-byte frame: %w", len(frame), ErrMalformed)
	}
	if t.raw == nil {
		// Concurrent Sends each move the shared deadline forward: harmless.
		_ = t.conn.SetWriteDeadline(time.Now().Add(udpWriteTimeout))
	}
	var errs []error
	for i, p := range t.peers {
		var err error
		switch {
		case t.raw != nil:
			err = t.raw.sendto(frame, &t.sas[i])
		case t.udp != nil:
			_, err = t.udp.WriteToUDPAddrPort(frame, p)
		default:
			_, err = t.conn.WriteTo(frame, t.dsts[i])
		}
		if err != nil {
			t.c.sendErrors.Add(1)
			errs = append(errs, fmt.Errorf("heartbeat: sending to %v over UDP: %w", p, err))
			continue
		}
		t.c.sent.Add(1)
	}
	return errors.Join(errs...)
}

// Run reads datagrams and delivers those from peers until ctx is done or
// Close is called, then returns nil; it returns an error only if reading
// fails otherwise. Each Inbound's Data is a fresh slice.
func (t *UDPTransport) Run(ctx context.Context, deliver func(Inbound) bool) error {
	if !t.running.CompareAndSwap(false, true) {
		return errRunTwice
	}
	// Unblock the read when ctx is done; the goroutine is waited for, so
	// none outlives Run.
	var wg sync.WaitGroup
	returned := make(chan struct{})
	wg.Go(func() {
		select {
		case <-ctx.Done():
			_ = t.conn.SetReadDeadline(time.Unix(1, 0))
		case <-returned:
		}
	})
	defer func() {
		close(returned)
		wg.Wait()
	}()

	buf := make([]byte, MaxFrameSize+1) // one more, to see oversized datagrams
	for {
		n, from, err := t.read(buf)
		at := time.Now()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				continue // a deadline set by someone else; only ctx ends Run
			}
			return fmt.Errorf("heartbeat: reading UDP: %w", err)
		}
		if !from.IsValid() || t.ips[ipKey(from.Addr())] == 0 {
			t.c.unknownPeer.Add(1)
			continue
		}
		if n > MaxFrameSize {
			t.c.malformed.Add(1)
			continue
		}
		t.c.received.Add(1)
		deliver(Inbound{Data: append([]byte(nil), buf[:n]...), From: from, Path: PathUDP, At: at})
	}
}

func (t *UDPTransport) read(buf []byte) (int, netip.AddrPort, error) {
	if t.raw != nil {
		return t.raw.recvfrom(buf)
	}
	if t.udp != nil {
		n, from, err := t.udp.ReadFromUDPAddrPort(buf)
		return n, unmap(from), err
	}
	n, addr, err := t.conn.ReadFrom(buf)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	if ua, ok := addr.(*net.UDPAddr); ok {
		return n, unmap(ua.AddrPort()), nil
	}
	ap, _ := netip.ParseAddrPort(addr.String()) // invalid: counted as unknown peer
	return n, unmap(ap), nil
}

// Stats returns the transport's counters.
func (t *UDPTransport) Stats() TransportStats { return t.c.snapshot() }

// Close closes the socket, which ends Run. Later calls return the first
// call's result.
func (t *UDPTransport) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.conn.Close() })
	return t.closeErr
}
