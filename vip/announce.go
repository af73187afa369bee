package vip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// BurstSchedule returns when to announce the VIPs, as offsets from the
// claim: Claim itself sends the round at offset 0, and the caller calls
// Announce at each later offset (while it is still master).
//
// Why these offsets:
//   - 0: neighbours should repoint at once; a failover is an outage until
//     they do.
//   - 100 ms: repairs a single lost announcement quickly (a switch that had
//     the old port in its table, a receiver's full backlog, a link that just
//     came up) while being far enough from the first that one short burst
//     of loss does not take both.
//   - 500 ms: a third copy before anyone's retransmission timer notices.
//   - 2 s: RFC 5227 §2.3 spaces ARP Announcements ANNOUNCE_INTERVAL (2 s)
//     apart.
//   - 4 s: an old master that froze rather than died still has the VIP in
//     its kernel, which answers ARP and NDP solicitations for it, until the
//     VIP's valid lifetime runs out: up to DefaultLifetime (2 s) plus about
//     1 s of kernel timer rounding after its last refresh. A neighbour that
//     asked in that window may have learnt the old MAC; this last round,
//     sent after the old VIP expired, repoints it.
//
// Five rounds is about what keepalived (garp_master_repeat 5) and MetalLB
// (repeats for 5 s) send.
// For IPv6 it is more than RFC 4861 §7.2.6's MAX_NEIGHBOR_ADVERTISEMENT (3);
// we accept that, as keepalived does, because a lost advertisement during a
// failover costs an outage and five small multicasts per claim cost nothing.
func BurstSchedule() []time.Duration {
	return []time.Duration{
		0,
		100 * time.Millisecond,
		500 * time.Millisecond,
		2 * time.Second,
		4 * time.Second,
	}
}

// writeTimeout bounds one announcement round, so a stuck transmit queue
// cannot block Claim.
const writeTimeout = 100 * time.Millisecond

// announcer owns the send-only ARP and NDP sockets of a Manager, opened on
// first use and kept. It is not safe for concurrent use; Manager.mu guards it.
type announcer struct {
	ifi *net.Interface // the interface the sockets are bound to
	arp *arp.Client
	ndp *ndp.Conn
}

// announce sends one round for vips on link.
func (a *announcer) announce(link netlink.Link, vips []netip.Prefix) error {
	if len(vips) == 0 {
		return nil
	}
	attrs := link.Attrs()
	if attrs.RawFlags&(unix.IFF_NOARP|unix.IFF_LOOPBACK) != 0 || len(attrs.HardwareAddr) != 6 {
		// No neighbour caches to update (a tunnel, WireGuard, a NOARP
		// link such as a dummy, the loopback): nothing to announce.
		return nil
	}
	ifi := &net.Interface{
		Index:        attrs.Index,
		MTU:          attrs.MTU,
		Name:         attrs.Name,
		HardwareAddr: attrs.HardwareAddr,
		Flags:        attrs.Flags,
	}
	if a.ifi != nil && (a.ifi.Index != ifi.Index || a.ifi.Name != ifi.Name || !bytes.Equal(a.ifi.HardwareAddr, ifi.HardwareAddr)) {
		// The interface was recreated or changed its MAC: reopen.
		if err := a.close(); err != nil {
			return err
		}
	}
	a.ifi = ifi

	deadline := time.Now().Add(writeTimeout)
	var errs []error
	for _, p := range vips {
		var err error
		if p.Addr().Is4() {
			err = a.sendARP(p.Addr(), deadline)
		} else {
			err = a.sendNA(p.Addr(), deadline)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func (a *announcer) sendARP(ip netip.Addr, deadline time.Time) error {
	if a.arp == nil {
		c, err := dialARP(a.ifi)
		if err != nil {
			return err
		}
		a.arp = c
	}
	if err := a.arp.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("setting ARP write deadline: %w", err)
	}
	pkts, err := gratuitousARP(a.ifi.HardwareAddr, ip)
	if err != nil {
		return err
	}
	for _, p := range pkts {
		if err := a.arp.WriteTo(p, ethernet.Broadcast); err != nil {
			return fmt.Errorf("sending gratuitous ARP %v: %w", p.Operation, err)
		}
	}
	return nil
}

// dialARP opens a send-only ARP socket: it is bound to the ARP EtherType
// (so frames leave with the right skb protocol) with a BPF program that
// drops every received frame, so no ARP traffic queues up unread.
func dialARP(ifi *net.Interface) (*arp.Client, error) {
	dropAll, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return nil, fmt.Errorf("assembling BPF filter: %w", err)
	}
	pc, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, fmt.Errorf("opening ARP socket: %w", err)
	}
	c, err := arp.New(ifi, pc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("opening ARP client: %w", err)
	}
	return c, nil
}

// zeroMAC is the target hardware address of an ARP Announcement
// (RFC 5227 §2.3: "SHOULD be set to all zeroes").
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// gratuitousARP returns the two forms of a gratuitous ARP for ip at hw, both
// to be broadcast: the ARP Announcement of RFC 5227 §2.3 (a request whose
// sender and target IP are both ip) and the older reply form (RFC 5227 §3
// discusses both), with the broadcast address as target hardware address,
// which is what makes Linux treat a reply as gratuitous. Sending both covers
// receivers that heed only one form.
func gratuitousARP(hw net.HardwareAddr, ip netip.Addr) ([]*arp.Packet, error) {
	req, err := arp.NewPacket(arp.OperationRequest, hw, ip, zeroMAC, ip)
	if err != nil {
		return nil, fmt.Errorf("building ARP announcement: %w", err)
	}
	rep, err := arp.NewPacket(arp.OperationReply, hw, ip, ethernet.Broadcast, ip)
	if err != nil {
		return nil, fmt.Errorf("building gratuitous ARP reply: %w", err)
	}
	return []*arp.Packet{req, rep}, nil
}

func (a *announcer) sendNA(ip netip.Addr, deadline time.Time) error {
	if a.ndp == nil {
		c, err := listenNDP(a.ifi)
		if err != nil {
			return err
		}
		a.ndp = c
	}
	if err := a.ndp.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("setting NDP write deadline: %w", err)
	}
	na := unsolicitedNA(a.ifi.HardwareAddr, ip)
	dst := netip.IPv6LinkLocalAllNodes()
	// The source is the VIP itself, as in the kernel's own unsolicited
	// advertisements. With IFA_F_NODAD it is usable as soon as it is added.
	cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: ip.AsSlice(), IfIndex: a.ifi.Index}
	err := a.ndp.WriteTo(na, cm, dst)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EADDRNOTAVAIL) {
		// The kernel does not consider the VIP a usable source (yet):
		// it is tentative or not installed. Let it pick one (the
		// link-local address); a receiver only needs hop limit 255.
		cm.Src = nil
		err = a.ndp.WriteTo(na, cm, dst)
	}
	if err != nil {
		return fmt.Errorf("sending unsolicited neighbour advertisement: %w", err)
	}
	return nil
}

// listenNDP opens a send-only ICMPv6 socket on ifi: bound to the unspecified
// address (so it does not depend on any address of the interface), with an
// ICMPv6 filter that blocks every received message.
func listenNDP(ifi *net.Interface) (*ndp.Conn, error) {
	c, _, err := ndp.Listen(ifi, ndp.Unspecified)
	if err != nil {
		return nil, fmt.Errorf("opening NDP socket: %w", err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("setting ICMPv6 filter: %w", err)
	}
	return c, nil
}

// unsolicitedNA is the advertisement of RFC 4861 §7.2.6 for ip at hw: not
// solicited (it goes to all-nodes), Override set so receivers replace the
// link-layer address they have, with the target link-layer address option.
func unsolicitedNA(hw net.HardwareAddr, ip netip.Addr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{
		Solicited:     false,
		Override:      true,
		TargetAddress: ip,
		Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: hw},
		},
	}
}

// close closes the sockets; the next announcement reopens them.
func (a *announcer) close() error {
	var errs []error
	if a.arp != nil {
		errs = append(errs, a.arp.Close())
		a.arp = nil
	}
	if a.ndp != nil {
		errs = append(errs, a.ndp.Close())
		a.ndp = nil
	}
	a.ifi = nil
	return errors.Join(errs...)
}
