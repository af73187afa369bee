//go:build !linux

package heartbeat

import (
	"net"
	"net/netip"
)

// rawUDP is Linux only; elsewhere the transport uses the net package.
type rawUDP struct{}

type sockaddr struct{}

func newRawUDP(*net.UDPConn) *rawUDP { return nil }

func (*rawUDP) sockaddrFor(netip.AddrPort) (sockaddr, bool) { return sockaddr{}, false }

func (*rawUDP) sendto([]byte, *sockaddr) error { panic("unreachable") }

func (*rawUDP) recvfrom([]byte) (int, netip.AddrPort, error) { panic("unreachable") }
