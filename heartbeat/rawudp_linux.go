//go:build linux

package heartbeat

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP sends and receives datagrams on a UDP socket with raw system calls
// (sendto, recvfrom with MSG_DONTWAIT), still waiting for readability in
// Go's network poller. A plain syscall enters the scheduler's syscall path,
// which wakes the runtime's monitor thread whenever the process was idle:
// at a heartbeat every few milliseconds that doubled the daemon's context
// switches. Neither call can block: a full send buffer is an error (the
// frame is dropped, as a lost datagram would be), not a wait.
type rawUDP struct {
	rc     syscall.RawConn
	family int // AF_INET or AF_INET6

	mu    sync.Mutex
	zones map[uint32]string // interface index → name, for link-local sources
}

func newRawUDP(c *net.UDPConn) *rawUDP {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	family := -1
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil {
			family = v
		}
	})
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return nil
	}
	return &rawUDP{rc: rc, family: family, zones: map[uint32]string{}}
}

// sockaddr is a destination in the socket's own family.
type sockaddr struct {
	buf [unix.SizeofSockaddrInet6]byte
	len uintptr
}

// sockaddrFor encodes p for the socket; ok is false if the socket cannot
// reach it (an IPv6 peer on an IPv4 socket).
func (r *rawUDP) sockaddrFor(p netip.AddrPort) (sockaddr, bool) {
	var sa sockaddr
	a := p.Addr()
	if r.family == unix.AF_INET {
		if !a.Unmap().Is4() {
			return sa, false
		}
		rs := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.buf[0]))
		rs.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&rs.Port))[:], p.Port())
		rs.Addr = a.Unmap().As4()
		sa.len = unix.SizeofSockaddrInet4
		return sa, true
	}
	rs := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.buf[0]))
	rs.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&rs.Port))[:], p.Port())
	rs.Addr = a.As16()
	if z := a.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			rs.Scope_id = uint32(ifi.Index)
		}
	}
	sa.len = unix.SizeofSockaddrInet6
	return sa, true
}

// sendto sends b to sa without blocking.
func (r *rawUDP) sendto(b []byte, sa *sockaddr) error {
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		_, _, errno = syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa.buf[0])), sa.len)
		return true // never wait: EAGAIN is reported, the frame dropped
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// recvfrom reads one datagram into buf, waiting in the poller until one
// is there.
func (r *rawUDP) recvfrom(buf []byte) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	var n uintptr
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		salen := uint32(unix.SizeofSockaddrAny)
		n, _, errno = syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&salen)))
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	})
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if errno != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: errno}
	}
	return int(n), r.source(&rsa), nil
}

// source decodes a received datagram's source address (IPv4 unmapped).
func (r *rawUDP) source(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), port)
	case unix.AF_INET6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s.Port))[:])
		a := netip.AddrFrom16(s.Addr).Unmap()
		if s.Scope_id != 0 && a.Is6() {
			a = a.WithZone(r.zone(s.Scope_id))
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

func (r *rawUDP) zone(index uint32) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	z, ok := r.zones[index]
	if !ok {
		if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
			z = ifi.Name
		} else {
			z = strconv.FormatUint(uint64(index), 10)
		}
		r.zones[index] = z
	}
	return z
}
