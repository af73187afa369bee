package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
)

// The routed cluster's autonomous systems: the router's, and the one the
// hbd nodes share (so the router compares their MEDs).
const (
	RouterAS = 65000
	HostAS   = 65001
)

// BGP makes a cluster announce lab.BGPVIP4 and lab.BGPVIP6 over eBGP to an
// FRR router (StartRouted), and no L2 VIPs.
type BGP struct {
	Router          string        // the router host; default "router"
	StandbyAnnounce bool          // bgp.standby_announce
	HoldTime        time.Duration // the sessions' hold time; default 9s (hbd's and the router's)
}

// bgpPassword is the sessions' TCP MD5 key.
const bgpPassword = "hbd-lab-md5-key"

// BGPURL is the web app's URL through the IPv4 BGP VIP.
func BGPURL(path string) string { return fmt.Sprintf("http://%s:%d%s", lab.BGPVIP4.Addr(), Port, path) }

// BGPURL6 is the web app's URL through the IPv6 BGP VIP.
func BGPURL6(path string) string {
	return fmt.Sprintf("http://[%s]:%d%s", lab.BGPVIP6.Addr(), Port, path)
}

// StartRouted routes the lab (lab.Route: the client on a segment of its
// own behind the router host), starts FRR on the router with a neighbour
// for every node, and starts the cluster with o.BGP (default: &BGP{}).
func StartRouted(ctx context.Context, l *lab.Lab, o Options) (*Cluster, *lab.FRR, error) {
	if o.BGP == nil {
		o.BGP = &BGP{}
	}
	if o.BGP.Router == "" {
		o.BGP.Router = "router"
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"pc01", "pc02"}
	}
	if err := l.Route(ctx, o.BGP.Router, "client"); err != nil {
		return nil, nil, err
	}
	frr, err := l.StartFRR(ctx, o.BGP.Router, FRRConfig(l, o.BGP.Router, o.Nodes, o.BGP.HoldTime))
	if err != nil {
		return nil, nil, err
	}
	c, err := Start(ctx, l, o)
	if err != nil {
		return nil, frr, err
	}
	return c, frr, nil
}

// FRRConfig is the router's bgpd.conf: eBGP to every node with the TCP MD5
// key, accepting from them only host routes inside the VIP ranges, for
// IPv4 and IPv6 (the IPv6 routes come over the IPv4 sessions with the
// nodes' IPv6 next hops). docs/bgp.md shows the same configuration.
func FRRConfig(l *lab.Lab, router string, nodes []string, hold time.Duration) string {
	if hold == 0 {
		hold = 9 * time.Second
	}
	secs := int(hold / time.Second)
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\n!\nrouter bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n", router, RouterAS, l.Host(router).IPv4)
	fmt.Fprintf(&b, " neighbor hbd peer-group\n neighbor hbd remote-as %d\n neighbor hbd password %s\n neighbor hbd timers %d %d\n",
		HostAS, bgpPassword, max(1, secs/3), secs)
	for _, n := range nodes {
		fmt.Fprintf(&b, " neighbor %s peer-group hbd\n", l.Host(n).IPv4)
	}
	b.WriteString(" address-family ipv4 unicast\n  neighbor hbd route-map hbd-vips in\n exit-address-family\n")
	b.WriteString(" address-family ipv6 unicast\n  neighbor hbd activate\n  neighbor hbd route-map hbd-vips6 in\n exit-address-family\n!\n")
	b.WriteString("ip prefix-list hbd-vips seq 10 permit 198.51.100.192/26 ge 32\n")
	b.WriteString("ipv6 prefix-list hbd-vips6 seq 10 permit 2001:db8:200::/48 ge 128\n!\n")
	b.WriteString("route-map hbd-vips permit 10\n match ip address prefix-list hbd-vips\n!\n")
	b.WriteString("route-map hbd-vips6 permit 10\n match ipv6 address prefix-list hbd-vips6\n!\n")
	return b.String()
}

// bgpSection is a node's bgp section, with the TCP MD5 key file written.
func (c *Cluster) bgpSection(n *Node) (string, error) {
	o := c.Opts.BGP
	pw := filepath.Join(c.Lab.Dir(), "bgp-md5")
	if err := os.WriteFile(pw, []byte(bgpPassword+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cluster: writing the TCP MD5 key: %w", err)
	}
	h, r := c.Lab.Host(n.Name), c.Lab.Host(o.Router)
	var b strings.Builder
	fmt.Fprintf(&b, "bgp:\n  local_as: %d\n  next_hop6: %q\n  standby_announce: %v\n", HostAS, h.IPv6, o.StandbyAnnounce)
	fmt.Fprintf(&b, "  vips:\n    - address: %s\n      communities: [\"%d:100\"]\n    - address: %q\n", lab.BGPVIP4, HostAS, lab.BGPVIP6.String())
	fmt.Fprintf(&b, "  neighbours:\n    - address: %s\n      as: %d\n      password_file: %s\n", r.IPv4, RouterAS, pw)
	if o.HoldTime > 0 {
		fmt.Fprintf(&b, "      hold_time: %s\n", o.HoldTime)
	}
	return b.String(), nil
}
