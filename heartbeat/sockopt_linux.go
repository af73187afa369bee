//go:build linux

package heartbeat

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tosCS6 is DSCP class selector 6, "network control" (RFC 4594), in the
// old TOS byte: the class routing and VRRP traffic use, so that a congested
// queue drops web traffic before heartbeats.
const tosCS6 = 0xc0

// setTOS marks the socket's packets as network control, best effort: a
// network that ignores or rewrites DSCP loses nothing. Both options are set
// because a dual-stack IPv6 socket sends IPv4 with IP_TOS.
func setTOS(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tosCS6)
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tosCS6)
	})
}

// setUserTimeout sets TCP_USER_TIMEOUT (tcp(7)): the connection is dropped
// when sent data stays unacknowledged, or keepalive probes unanswered, for
// longer than d, instead of after the default ~15 minutes of retransmits.
func setUserTimeout(rc syscall.RawConn, d time.Duration) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	})
	if err != nil {
		return err
	}
	return serr
}

// userTimeout reads TCP_USER_TIMEOUT back (tests).
func userTimeout(rc syscall.RawConn) (time.Duration, error) {
	var v int
	var serr error
	err := rc.Control(func(fd uintptr) {
		v, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	})
	if err != nil {
		return 0, err
	}
	return time.Duration(v) * time.Millisecond, serr
}

// smoothedRTT reads the kernel's smoothed RTT estimate of a TCP socket.
func smoothedRTT(rc syscall.RawConn) (time.Duration, bool) {
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil || info == nil || info.Rtt == 0 {
		return 0, false
	}
	return time.Duration(info.Rtt) * time.Microsecond, true
}
