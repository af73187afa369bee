package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// The routed test bed (Lab.Route): the client moves off the hosts' segment
// onto a client segment of its own, and a router host routes between the
// two. Addresses stay inside the documentation ranges: the client segment
// is the /26 at 198.51.100.128 (the hosts' /24 keeps its lower addresses;
// every host gets a more specific route to the client segment through the
// router) and 2001:db8:1::/64. VIPs announced over BGP are host routes
// outside both segments.
var (
	ClientSegment4 = netip.MustParsePrefix("198.51.100.128/26")
	ClientSegment6 = netip.MustParsePrefix("2001:db8:1::/64")
	RouterClient4  = netip.MustParseAddr("198.51.100.129") // the router on the client segment
	RouterClient6  = netip.MustParseAddr("2001:db8:1::1")
	Client4        = netip.MustParseAddr("198.51.100.130") // the client, after Route
	Client6        = netip.MustParseAddr("2001:db8:1::130")

	// BGPVIP4 and BGPVIP6 are the VIPs the BGP tests announce.
	BGPVIP4 = netip.MustParsePrefix("198.51.100.200/32")
	BGPVIP6 = netip.MustParsePrefix("2001:db8:200::1/128")
)

// clientBridge is the client segment's bridge in the LAN namespace.
const clientBridge = "br1"

// Route turns the flat lab into a routed one: the host router gets a
// second interface (RouterIf) on a new client bridge, the host client
// moves onto that bridge with the client segment's addresses and a
// default route through the router, the router forwards, and every other
// host routes the client segment through the router. Call it right after
// New, before anything uses the client's address.
func (l *Lab) Route(ctx context.Context, router, client string) error {
	r, err := l.host(router)
	if err != nil {
		return err
	}
	c, err := l.host(client)
	if err != nil {
		return err
	}
	port := "p-" + router + "-c"
	if len(port) > 15 {
		return fmt.Errorf("lab: router name %q too long for its client port", router)
	}
	lan := fmt.Sprintf("link add %[1]s type bridge mcast_snooping 0\nlink set %[1]s up\n"+
		"link add %[2]s type veth peer name %[3]s netns %[4]s\nlink set %[2]s master %[1]s\nlink set %[2]s up\n"+
		"link set %[5]s nomaster\nlink set %[5]s master %[1]s\n",
		clientBridge, port, RouterIf, r.Netns, c.Port)
	if _, err := runCommand(ctx, lan, "ip", "-n", l.lanNS, "-batch", "-"); err != nil {
		return err
	}
	rs := fmt.Sprintf("link set %[1]s up\naddr add %[2]s/%[3]d dev %[1]s\naddr add %[4]s/%[5]d dev %[1]s\n",
		RouterIf, RouterClient4, ClientSegment4.Bits(), RouterClient6, ClientSegment6.Bits())
	if _, err := runCommand(ctx, rs, "ip", "-n", r.Netns, "-batch", "-"); err != nil {
		return err
	}
	if err := l.sysctl(router, map[string]string{
		"net/ipv4/ip_forward":              "1",
		"net/ipv6/conf/all/forwarding":     "1",
		"net/ipv6/conf/default/forwarding": "1",
	}); err != nil {
		return err
	}
	cs := fmt.Sprintf("addr flush dev %[1]s scope global\naddr add %[2]s/%[3]d dev %[1]s\naddr add %[4]s/%[5]d dev %[1]s\n"+
		"route add default via %[6]s\nroute add default via %[7]s\n",
		HostIf, Client4, ClientSegment4.Bits(), Client6, ClientSegment6.Bits(), RouterClient4, RouterClient6)
	if _, err := runCommand(ctx, cs, "ip", "-n", c.Netns, "-batch", "-"); err != nil {
		return err
	}
	c.IPv4, c.IPv6 = Client4, Client6
	for _, name := range l.order {
		if name == router || name == client {
			continue
		}
		h := l.hosts[name]
		hs := fmt.Sprintf("route add %s via %s\nroute add %s via %s\n", ClientSegment4, r.IPv4, ClientSegment6, r.IPv6)
		if _, err := runCommand(ctx, hs, "ip", "-n", h.Netns, "-batch", "-"); err != nil {
			return err
		}
	}
	if err := l.waitAddressesUsable(ctx); err != nil {
		return err
	}
	l.log.Info("lab: routed", "router", router, "client", client, "segment", strings.Join([]string{ClientSegment4.String(), ClientSegment6.String()}, ","))
	return nil
}

// RouterIf is the router's interface on the client segment.
const RouterIf = "eth1"
