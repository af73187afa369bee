package e2e

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// startRouted builds the routed lab (client behind an FRR router, the
// hosts peering with it over eBGP) and waits until pc01 is master and
// FRR's best path to both BGP VIPs is pc01's.
func startRouted(t *testing.T, o cluster.Options) (*cluster.Cluster, *lab.FRR) {
	t.Helper()
	l := lab.NewForTest(t, lab.Options{Hosts: []string{"pc01", "pc02", "redis", "router", "client"}})
	o.Bin = hbdBin
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, frr, err := cluster.StartRouted(ctx, l, o)
	if frr != nil {
		t.Cleanup(func() { _ = frr.Stop() })
	}
	must(t, err)
	if _, err := c.WaitOnlyHolder("pc01", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, vip := range []netip.Prefix{lab.BGPVIP4, lab.BGPVIP6} {
		if _, err := frr.WaitBest(ctx, vip, c.Lab.Host("pc01").IPv4.String(), 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return c, frr
}

// peer is the router's name for a node's session.
func peer(c *cluster.Cluster, node string) string { return c.Lab.Host(node).IPv4.String() }

// holdsBGP reports whether node has the IPv4 BGP VIP on its loopback.
func holdsBGP(t *testing.T, c *cluster.Cluster, node string) bool {
	t.Helper()
	ok, err := c.Lab.HasAddr(node, "lo", lab.BGPVIP4)
	must(t, err)
	return ok
}

// The master's routes appear on FRR with the master's attributes, and the
// client, on a segment of its own, reaches the VIPs through FRR.
func TestBGPRouteAndReach(t *testing.T) {
	c, frr := startRouted(t, cluster.Options{})
	ctx := context.Background()
	routes, err := frr.Routes(ctx, false)
	must(t, err)
	paths := routes[lab.BGPVIP4]
	if len(paths) != 1 || paths[0].Path != "65001" || paths[0].Metric == 0 || paths[0].Nexthops[0].IP != c.Lab.Host("pc01").IPv4.String() {
		t.Errorf("FRR's paths to %s: %+v; want one from pc01 with AS path 65001 and the epoch's MED", lab.BGPVIP4, paths)
	}
	if !holdsBGP(t, c, "pc01") || holdsBGP(t, c, "pc02") {
		t.Errorf("the loopbacks: pc01 holds %v, pc02 holds %v", holdsBGP(t, c, "pc01"), holdsBGP(t, c, "pc02"))
	}
	// The client has no route to the hosts' segment but through the router.
	if got := c.Lab.Host("client").IPv4; got != lab.Client4 {
		t.Fatalf("client address %s, want %s", got, lab.Client4)
	}
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc01", 10*time.Second)
	waitServedBy(t, c, cluster.BGPURL6("/api/whoami"), "pc01", 10*time.Second)
	// The route goes through FRR: it is in the router's kernel table.
	out, err := c.Lab.Run(ctx, "router", "ip", "route", "show", lab.BGPVIP4.String())
	must(t, err)
	if want := "via " + c.Lab.Host("pc01").IPv4.String(); !strings.Contains(string(out), want) || !strings.Contains(string(out), "proto bgp") {
		t.Errorf("router's kernel route to %s: %q, want one %s, proto bgp", lab.BGPVIP4, out, want)
	}
}
