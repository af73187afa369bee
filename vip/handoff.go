package vip

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// handoffProto marks the local routes Handoff adds (rtnetlink protocol
// numbers above 4 are free for routing daemons; 0xbd: "hbd").
const handoffProto netlink.RouteProtocol = 0xbd

// handoffMetric is the hand-off routes' metric (the kernel's are 0).
const handoffMetric = 1

// Handoff releases the VIPs for a planned handover without dropping the
// packets already on their way here. It deletes the addresses — so this
// host no longer holds the VIPs and announces nothing — but adds a local
// route for each VIP in the local table, so that packets clients sent
// before the new master's gratuitous ARP reached them are still delivered
// to this host's sockets: a SYN or a request in flight is answered instead
// of being dropped (a 1 s SYN retransmission) or reset by the new master.
// EndHandoff removes the routes; the daemon calls it a few hundred
// milliseconds later, once every client has followed the announcement, and
// before any claim of its own.
//
// A caveat for IPv4: with the default arp_ignore=0 the kernel answers ARP
// requests for any address it routes locally, so a neighbour that asks in
// that window may hear this host as well as the new master. Neighbours that
// already have an entry (every client that talked to the VIP) do not ask;
// one that does is corrected by the new master's later announcements (the
// burst runs for 4 s). IPv6 neighbour discovery answers only for
// configured addresses, so it is not affected.
func (m *Manager) Handoff() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claimed = false
	// Routes first, addresses second: no packet finds neither.
	link, err := m.link()
	if err == nil {
		for _, p := range m.vips {
			if rerr := m.nl.RouteReplace(localRoute(link, p.Addr())); rerr != nil {
				err = fmt.Errorf("vip: adding the hand-off route for %s on %s: %w", p.Addr(), m.ifname, rerr)
				break
			}
		}
	}
	removed, rerr := RemoveStale(m.ifname, m.vips)
	if len(removed) > 0 {
		m.log.Info("released VIPs for a handover; accepting late packets for a moment", "vip", removed)
	}
	return errors.Join(rerr, err)
}

// EndHandoff removes the local routes Handoff added. Absent routes are not
// an error, so it is safe to call at any time (Claim calls it too).
func (m *Manager) EndHandoff() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.endHandoff()
}

func (m *Manager) endHandoff() error {
	link, err := m.link()
	if err != nil {
		if isLinkNotFound(err) {
			return nil
		}
		return fmt.Errorf("vip: ending the hand-off on %s: %w", m.ifname, err)
	}
	var errs []error
	for _, p := range m.vips {
		err := m.nl.RouteDel(localRoute(link, p.Addr()))
		if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("vip: removing the hand-off route for %s on %s: %w", p.Addr(), m.ifname, err))
		}
	}
	return errors.Join(errs...)
}

func localRoute(link netlink.Link, ip netip.Addr) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       prefixNet(netip.PrefixFrom(ip, ip.BitLen())),
		Type:      unix.RTN_LOCAL,
		Table:     unix.RT_TABLE_LOCAL,
		Scope:     netlink.SCOPE_HOST,
		Protocol:  handoffProto,
		// A metric of its own keeps it apart from the kernel's local
		// route for the address (metric 0), which the address's deletion
		// removes.
		Priority: handoffMetric,
	}
	if ip.Is4() {
		r.Family = netlink.FAMILY_V4
	} else {
		r.Family = netlink.FAMILY_V6
	}
	return r
}
