package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// allowed reports whether the lab may send to a: the documentation ranges it
// uses, or loopback (which stays inside the namespace).
func allowed(a netip.Addr) bool {
	a = a.Unmap()
	return Subnet4.Contains(a) || netip.MustParsePrefix("2001:db8::/32").Contains(a) || a.IsLoopback()
}

// inNetns runs fn on a fresh OS thread switched into the host's namespace
// (host "" is the LAN namespace). Sockets fn creates belong to that namespace
// for their whole life. If the thread cannot be switched back, it is left
// locked so the runtime discards it.
func (l *Lab) inNetns(host string, fn func() error) error {
	c := l.nsc[host]
	if c == nil {
		return fmt.Errorf("%w: %q", ErrUnknownHost, host)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: reading current namespace: %w", err)
			return
		}
		defer orig.Close()
		c.mu.RLock()
		if c.done {
			err = ErrClosed
		} else {
			err = netns.Set(c.fd)
		}
		c.mu.RUnlock()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: entering namespace %s: %w", c.name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the goroutine exits and the thread dies with it.
			errc <- errors.Join(ferr, fmt.Errorf("lab: leaving namespace %s: %w", c.name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DialContext opens a connection from inside the host's namespace, so code in
// the test process can be a client "in" that host. addr must be an IP literal
// and port inside the lab's ranges (or loopback); network is tcp, tcp4, tcp6,
// udp, udp4 or udp6.
func (l *Lab) DialContext(ctx context.Context, host, network, addr string) (net.Conn, error) {
	if _, err := l.host(host); err != nil {
		return nil, err
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("lab: dialing %s from %s: unsupported network %q", addr, host, network)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("lab: dialing %s from %s: want IP:port: %w", addr, host, err)
	}
	if !allowed(ap.Addr()) {
		return nil, fmt.Errorf("lab: dialing %s from %s: %w", addr, host, ErrForbidden)
	}
	var conn net.Conn
	err = l.inNetns(host, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: dialing %s from %s: %w", addr, host, err)
	}
	return conn, nil
}

// HTTPClient returns a client whose connections start in the host's
// namespace. Without keepAlive every request opens a new connection. timeout
// bounds each whole request (0: none). No proxy is used.
func (l *Lab) HTTPClient(host string, keepAlive bool, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return l.DialContext(ctx, host, network, addr)
			},
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// Ping sends one ICMP echo request from the host to dst and waits for the
// reply until ctx is done (default: 1s). It needs no ping binary.
func (l *Lab) Ping(ctx context.Context, from string, dst netip.Addr) error {
	if !allowed(dst) {
		return fmt.Errorf("lab: ping %s from %s: %w", dst, from, ErrForbidden)
	}
	if _, err := l.host(from); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
	}
	network, reqType, replyType := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() && !dst.Is4In6() {
		network, reqType, replyType = "ip6:ipv6-icmp", 128, 129
	}
	var conn *net.IPConn
	err := l.inNetns(from, func() error {
		var err error
		conn, err = net.DialIP(network, nil, &net.IPAddr{IP: dst.Unmap().AsSlice()})
		return err
	})
	if err != nil {
		return fmt.Errorf("lab: ping %s from %s: %w", dst, from, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var id [4]byte
	_, _ = rand.Read(id[:])
	msg := make([]byte, 8, 24)
	msg[0] = reqType
	copy(msg[4:8], id[:]) // identifier and sequence number
	msg = append(msg, "hbd-lab-ping...."...)
	if reqType == 8 { // ICMPv6 checksums are filled in by the kernel
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("lab: ping %s from %s: %w", dst, from, err)
	}
	buf := make([]byte, 1500)
	for range 1000 { // the socket sees every ICMP message from dst
		n, _, err := conn.ReadFromIP(buf)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("lab: ping %s from %s: no reply: %w", dst, from, err)
		}
		if n >= 8 && buf[0] == replyType && [4]byte(buf[4:8]) == id {
			return nil
		}
	}
	return fmt.Errorf("lab: ping %s from %s: no matching reply", dst, from)
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// HasAddr reports whether the host has p's address on ifname ("" for any
// interface). Only p.Addr() is compared, not the prefix length. It uses the
// namespace's long-lived netlink handle: one address dump per call, cheap
// enough to sample every few milliseconds.
func (l *Lab) HasAddr(host, ifname string, p netip.Prefix) (bool, error) {
	if _, err := l.host(host); err != nil {
		return false, err
	}
	want := p.Addr().Unmap()
	family := unix.AF_INET6
	if want.Is4() {
		family = unix.AF_INET
	}
	var found bool
	err := l.nsc[host].netlink(func(h *netlink.Handle) error {
		var link netlink.Link
		if ifname != "" {
			var err error
			if link, err = h.LinkByName(ifname); err != nil {
				return err
			}
		}
		addrs, err := h.AddrList(link, family)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == want {
				found = true
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("lab: listing addresses of %s on %s: %w", ifname, host, err)
	}
	return found, nil
}

// Neigh returns the hardware address in the host's neighbour (ARP/NDP) entry
// for ip on HostIf, or ErrNoNeighbor if there is no entry with an address
// (absent, incomplete or failed).
func (l *Lab) Neigh(host string, ip netip.Addr) (net.HardwareAddr, error) {
	if _, err := l.host(host); err != nil {
		return nil, err
	}
	ip = ip.Unmap()
	family := unix.AF_INET6
	if ip.Is4() {
		family = unix.AF_INET
	}
	var mac net.HardwareAddr
	err := l.nsc[host].netlink(func(h *netlink.Handle) error {
		link, err := h.LinkByName(HostIf)
		if err != nil {
			return err
		}
		ns, err := h.NeighList(link.Attrs().Index, family)
		if err != nil {
			return err
		}
		for _, n := range ns {
			got, ok := netip.AddrFromSlice(n.IP)
			if !ok || got.Unmap() != ip || len(n.HardwareAddr) == 0 ||
				n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) != 0 {
				continue
			}
			mac = append(net.HardwareAddr(nil), n.HardwareAddr...)
			return nil
		}
		return ErrNoNeighbor
	})
	if err != nil {
		return nil, fmt.Errorf("lab: neighbour %s on %s: %w", ip, host, err)
	}
	return mac, nil
}
