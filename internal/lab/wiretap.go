package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A wiretap plays the attacker of a security test: it records the UDP
// datagrams a host receives, as they were on the wire, and sends datagrams
// from another namespace with a forged source address. IPv4 only.

// Datagram is one captured UDP datagram.
type Datagram struct {
	From, To netip.AddrPort
	Payload  []byte
	At       time.Time
}

// Capture records the IPv4 UDP datagrams that arrive at a host for one port.
type Capture struct {
	fd   int
	port uint16

	mu      sync.Mutex
	got     []Datagram
	stopped atomic.Bool
	done    chan struct{}
}

// CaptureUDP starts recording, inside the host's namespace, every IPv4 UDP
// datagram to port that the host's interfaces receive (an AF_PACKET socket,
// as tcpdump uses). Stop ends it.
func (l *Lab) CaptureUDP(host string, port uint16) (*Capture, error) {
	fd := -1
	err := l.inNetns(host, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: capturing UDP on %s: %w", host, err)
	}
	// A read timeout, so the reader notices Stop.
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: capturing UDP on %s: %w", host, err)
	}
	c := &Capture{fd: fd, port: port, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for !c.stopped.Load() {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return // closed by Stop
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if d, ok := parseUDP4(buf[:n]); ok && d.To.Port() == c.port {
			d.At = time.Now()
			c.mu.Lock()
			c.got = append(c.got, d)
			c.mu.Unlock()
		}
	}
}

// parseUDP4 decodes an IPv4 packet carrying a whole UDP datagram.
func parseUDP4(b []byte) (Datagram, bool) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != unix.IPPROTO_UDP {
		return Datagram{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 || len(b) < ihl+8 { // fragments are not ours
		return Datagram{}, false
	}
	src, _ := netip.AddrFromSlice(b[12:16])
	dst, _ := netip.AddrFromSlice(b[16:20])
	u := b[ihl:]
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < 8 || ulen > len(u) {
		return Datagram{}, false
	}
	return Datagram{
		From:    netip.AddrPortFrom(src, binary.BigEndian.Uint16(u[0:])),
		To:      netip.AddrPortFrom(dst, binary.BigEndian.Uint16(u[2:])),
		Payload: append([]byte(nil), u[8:ulen]...),
	}, true
}

// Snapshot returns what has been captured so far.
func (c *Capture) Snapshot() []Datagram {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Datagram(nil), c.got...)
}

// Stop ends the capture and returns everything captured.
func (c *Capture) Stop() []Datagram {
	c.stopped.Store(true) // the reader sees it within its read timeout
	<-c.done
	unix.Close(c.fd)
	return c.Snapshot()
}

// Spoofer sends IPv4 UDP datagrams with any source address from a host's
// namespace, through a raw socket that writes its own IP header.
type Spoofer struct {
	fd int
}

// NewSpoofer opens a raw socket in the host's namespace.
func (l *Lab) NewSpoofer(host string) (*Spoofer, error) {
	fd := -1
	err := l.inNetns(host, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: raw socket on %s: %w", host, err)
	}
	return &Spoofer{fd: fd}, nil
}

// Send sends payload from src to dst. Both must be lab addresses.
func (s *Spoofer) Send(src, dst netip.AddrPort, payload []byte) error {
	if !src.Addr().Is4() || !dst.Addr().Is4() || !allowed(src.Addr()) || !allowed(dst.Addr()) {
		return fmt.Errorf("lab: spoofing %v → %v: %w", src, dst, ErrForbidden)
	}
	total := 20 + 8 + len(payload)
	pkt := make([]byte, total)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(total))
	pkt[8] = 64 // TTL
	pkt[9] = unix.IPPROTO_UDP
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:16], s4[:])
	copy(pkt[16:20], d4[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:20]))
	u := pkt[20:]
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload) // checksum 0: none (allowed for UDP over IPv4)
	sa := &unix.SockaddrInet4{Addr: d4}
	if err := unix.Sendto(s.fd, pkt, 0, sa); err != nil {
		return fmt.Errorf("lab: spoofing %v → %v: %w", src, dst, os.NewSyscallError("sendto", err))
	}
	return nil
}

// Close closes the raw socket.
func (s *Spoofer) Close() error { return unix.Close(s.fd) }
