package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Path names the transport a frame arrived on.
type Path uint8

// The paths.
const (
	PathUDP Path = iota + 1 // a datagram from UDPTransport
	PathTCP                 // a frame read from a TCPTransport stream
)

func (p Path) String() string {
	switch p {
	case PathUDP:
		return "udp"
	case PathTCP:
		return "tcp"
	}
	return fmt.Sprintf("path(%d)", uint8(p))
}

// Inbound is one received, not yet verified, frame.
type Inbound struct {
	Data []byte         // the frame; owned by the receiver of the Inbound
	From netip.AddrPort // source address (IPv4 unmapped)
	Path Path
	At   time.Time // local time of arrival, taken as the read returned
}

// Transport sends encoded frames to every configured peer and delivers what
// it receives from them. Frames from sources that are not configured peers
// are dropped and counted by the transport itself; everything else is
// delivered unverified, for Receiver.Accept.
//
// Send and Close are safe for concurrent use with each other and with Run.
// Run is called once.
type Transport interface {
	// Send sends frame to every peer. It never blocks the caller for
	// long and does not retain frame.
	Send(frame []byte) error
	// Run receives until ctx is done or Close is called, calling deliver
	// for each frame; it returns only after every goroutine it started has
	// returned. deliver is not called concurrently by one transport, but
	// two transports call their deliver functions concurrently. deliver
	// should not block for long: reading waits for it. deliver reports
	// whether the frame was authentic (Receiver.Accept returned it, as
	// accepted, duplicate or stale): TCPTransport trusts a connection only
	// from its first authentic frame.
	Run(ctx context.Context, deliver func(Inbound) bool) error
	// Close stops Run and releases the sockets. It does not wait for Run
	// to return.
	Close() error
}

var (
	_ Transport = (*UDPTransport)(nil)
	_ Transport = (*TCPTransport)(nil)
)

// TransportStats counts one transport's traffic since it was created.
type TransportStats struct {
	Sent        uint64 // frames handed to the kernel, counted once per peer
	SendErrors  uint64 // failed sends (UDP) or stream writes (TCP)
	Received    uint64 // frames delivered
	UnknownPeer uint64 // datagrams or connections from a source that is not a peer
	Malformed   uint64 // oversized datagrams, bad stream length prefixes
	QueueDrops  uint64 // TCP: frames dropped, oldest first, because a peer's queue was full
	Dials       uint64 // TCP: outgoing connection attempts
	DialErrors  uint64 // TCP: failed connection attempts
	Accepted    uint64 // TCP: incoming peer connections accepted
}

type counters struct {
	sent, sendErrors, received, unknownPeer, malformed atomic.Uint64
	queueDrops, dials, dialErrors, accepted            atomic.Uint64
}

func (c *counters) snapshot() TransportStats {
	return TransportStats{
		Sent:        c.sent.Load(),
		SendErrors:  c.sendErrors.Load(),
		Received:    c.received.Load(),
		UnknownPeer: c.unknownPeer.Load(),
		Malformed:   c.malformed.Load(),
		QueueDrops:  c.queueDrops.Load(),
		Dials:       c.dials.Load(),
		DialErrors:  c.dialErrors.Load(),
		Accepted:    c.accepted.Load(),
	}
}

// errRunTwice is returned by a second call of Run.
var errRunTwice = errors.New("heartbeat: Run called twice")

// checkPeers validates peers and returns them with IPv4 addresses unmapped
// and duplicates removed, and the set of their IPs.
func checkPeers(peers []netip.AddrPort) ([]netip.AddrPort, map[netip.Addr]int, error) {
	out := make([]netip.AddrPort, 0, len(peers))
	ips := make(map[netip.Addr]int, len(peers))
	for _, p := range peers {
		if !p.IsValid() || p.Port() == 0 || p.Addr().IsUnspecified() {
			return nil, nil, fmt.Errorf("heartbeat: invalid peer address %v", p)
		}
		p = unmap(p)
		if slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
		ips[ipKey(p.Addr())]++
	}
	return out, ips, nil
}

// ipKey is the form in which peer IPs are compared: the source port of a
// peer may differ from its configured port, and a link-local address may
// arrive with a zone the configuration spelled differently.
func ipKey(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
