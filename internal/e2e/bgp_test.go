package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
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
	c, frr := startRouted(t, cluster.Options{Metrics: true})
	ctx := context.Background()
	routes, err := frr.Routes(ctx, false)
	must(t, err)
	paths := routes[lab.BGPVIP4]
	if len(paths) != 1 || paths[0].Path != "65001" || paths[0].Metric == 0 || paths[0].Nexthops[0].IP != c.Lab.Host("pc01").IPv4.String() {
		t.Errorf("FRR's paths to %s: %+v; want one from pc01 with AS path 65001 and the epoch's MED", lab.BGPVIP4, paths)
	}
	// pc01 alone has the VIP on its loopback (cluster.Holds looks there).
	if _, err := c.WaitOnlyHolder("pc01", 10*time.Second); err != nil {
		t.Error(err)
	}
	// The client has no route to the hosts' segment but through the router.
	if got := c.Lab.Host("client").IPv4; got != lab.Client4 {
		t.Fatalf("client address %s, want %s", got, lab.Client4)
	}
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc01", 10*time.Second)
	waitServedBy(t, c, cluster.BGPURL6("/api/whoami"), "pc01", 10*time.Second)
	// hbd status says the same.
	st, err := c.Status(ctx, "pc01")
	must(t, err)
	if b := st.BGP; b == nil || b.Announced != "primary" || len(b.Neighbours) != 1 || b.Neighbours[0].State != "SESSION_STATE_ESTABLISHED" {
		t.Errorf("pc01's status bgp: %+v; want primary, one established neighbour", b)
	}
	// The daemon's log: the speaker started, nothing went wrong.
	b, err := os.ReadFile(c.Nodes["pc01"].Hbd.LogPath())
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "level=ERROR"):
			t.Errorf("pc01's log: %s", line)
		case strings.Contains(line, "BGP") || strings.Contains(line, "daisy") || strings.Contains(line, "Peer Up"):
			t.Logf("pc01's log: %s", line)
		}
	}
	// The metrics say the same: one session each, pc01 announces the
	// master's route, pc02 nothing.
	for node, want := range map[string]string{"pc01": "hbd_bgp_announced 3", "pc02": "hbd_bgp_announced 0"} {
		resp, err := c.Lab.HTTPClient(node, false, 2*time.Second).Get("http://127.0.0.1:9707/metrics")
		must(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		must(t, err)
		for _, w := range []string{want + "\n", "hbd_bgp_sessions_established 1\n"} {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s's metrics lack %q", node, strings.TrimSpace(w))
			}
		}
	}
	// The route goes through FRR: it is in the router's kernel table.
	out, err := c.Lab.Run(ctx, "router", "ip", "route", "show", lab.BGPVIP4.String())
	must(t, err)
	if want := "via " + c.Lab.Host("pc01").IPv4.String(); !strings.Contains(string(out), want) || !strings.Contains(string(out), "proto bgp") {
		t.Errorf("router's kernel route to %s: %q, want one %s, proto bgp", lab.BGPVIP4, out, want)
	}
}

// startProbing starts a routed cluster served by pc01, probes the BGP VIP
// from the client and returns the moment the fault may begin.
func startProbing(t *testing.T) (*cluster.Cluster, *lab.FRR, *lab.Prober, time.Time) {
	t.Helper()
	c, frr := startRouted(t, cluster.Options{})
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc01", 10*time.Second)
	p := probeBGP(c, false)
	time.Sleep(300 * time.Millisecond)
	return c, frr, p, time.Now()
}

// probeBGP sends a request to the IPv4 BGP VIP every 10ms from the client.
func probeBGP(c *cluster.Cluster, keepAlive bool) *lab.Prober {
	return c.Lab.ProbeWith(context.Background(), lab.ProbeConfig{From: "client", URL: cluster.BGPURL("/api/whoami"),
		Every: 10 * time.Millisecond, KeepAlive: keepAlive, Timeout: probeTimeout})
}

// firstGood waits until p has a good answer from node to a request sent
// after mark, then stops p and returns when that answer arrived, as a
// delay from mark. (A request in flight at the fault may hang for the
// prober's timeout and hold back the next one, so the answer can come
// after other clients already see node.)
func firstGood(t *testing.T, p *lab.Prober, node string, mark time.Time) time.Duration {
	t.Helper()
	defer p.Stop()
	for deadline := time.Now().Add(2 * probeTimeout); ; time.Sleep(20 * time.Millisecond) {
		for _, r := range p.Results() {
			if r.OK() && r.ServedBy == node && !r.Start.Before(mark) {
				return r.End().Sub(mark)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no good answer from %s after %s", node, mark.Format("15:04:05.000"))
		}
	}
}

// paths lists FRR's paths to the IPv4 BGP VIP as "peer:best".
func paths(t *testing.T, frr *lab.FRR) []string {
	t.Helper()
	routes, err := frr.Routes(context.Background(), false)
	must(t, err)
	var out []string
	for _, p := range routes[lab.BGPVIP4] {
		s := p.PeerID
		if p.Best {
			s += "*"
		}
		out = append(out, s)
	}
	return out
}

// A pulled cable on the master: the standby claims and announces, and its
// route wins at once over the dead master's, which the router keeps until
// its hold timer (9s) runs out: the new master's MED is lower (it falls
// with every claim's epoch).
func TestBGPCablePull(t *testing.T) {
	c, frr, p, mark := startProbing(t)
	ctx := context.Background()
	must(t, c.Lab.CablePull("pc01"))
	switched, err := frr.WaitBest(ctx, lab.BGPVIP4, peer(c, "pc02"), 5*time.Second)
	must(t, err)
	during := paths(t, frr) // a moment later: pc02's best, pc01's still there
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc02", 5*time.Second)
	first := firstGood(t, p, "pc02", mark)
	t.Logf("cable pull → FRR's best path pc02: %s; → first good response from pc02: %s; FRR's paths then: %v",
		switched.Round(time.Millisecond), first.Round(time.Millisecond), during)
	if len(during) != 2 {
		t.Errorf("FRR had paths %v when it switched; want the dead master's still there (its hold timer had not run out) beside pc02's best", during)
	}
	// The backstop: the end of the session (the hold timer at the latest)
	// takes the dead master's path away.
	gone := time.Now()
	for deadline := gone.Add(15 * time.Second); len(paths(t, frr)) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the dead master's path is still on FRR 15s after the pull: %v", paths(t, frr))
		}
	}
	why := "?"
	if out, err := frr.Vtysh(ctx, "show bgp neighbors "+peer(c, "pc01")+" json"); err == nil {
		var nb map[string]struct {
			LastReset string `json:"lastResetDueTo"`
		}
		if json.Unmarshal(out, &nb) == nil {
			why = nb[peer(c, "pc01")].LastReset
		}
	}
	t.Logf("pc01's path gone from FRR %s after the pull; its session ended: %q", time.Since(mark).Round(100*time.Millisecond), why)
}

// Planned handovers both ways: no request fails, and the router always has
// a path (the new master announces before the old one withdraws).
func TestBGPHandoverZeroFailedRequests(t *testing.T) {
	c, frr := startRouted(t, cluster.Options{AppTrack: true})
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc01", 10*time.Second)
	waitNodeReady(t, c, "pc02")
	// Watch FRR's best path through the handovers.
	type sighting struct {
		at   time.Time
		best string
	}
	show := func(ss []sighting) string {
		var b strings.Builder
		for _, s := range ss {
			fmt.Fprintf(&b, " %s %q", s.at.Format("05.000"), s.best)
		}
		return b.String()
	}
	stop := make(chan struct{})
	watched := make(chan []sighting, 1)
	go func() {
		var seen []sighting
		for {
			select {
			case <-stop:
				watched <- seen
				return
			default:
			}
			best, err := frr.Best(context.Background(), lab.BGPVIP4)
			if err != nil {
				best = "error: " + err.Error()
			}
			if len(seen) == 0 || seen[len(seen)-1].best != best {
				seen = append(seen, sighting{time.Now(), best})
			}
			time.Sleep(20 * time.Millisecond) // each look starts a vtysh: keep the CPU for the daemons
		}
	}()
	fresh, kept := probeBGP(c, false), probeBGP(c, true)
	time.Sleep(300 * time.Millisecond)
	mark1 := time.Now()
	handover(t, c, "pc01", "pc02")
	_, err := frr.WaitBest(context.Background(), lab.BGPVIP4, peer(c, "pc02"), 5*time.Second)
	must(t, err)
	time.Sleep(1500 * time.Millisecond) // past the old master's hand-off window: its route is withdrawn
	if ps := paths(t, frr); len(ps) != 1 {
		t.Errorf("after the hand-off window FRR has paths %v, want pc02's alone", ps)
	}
	waitNodeReady(t, c, "pc01")
	mark2 := time.Now()
	handover(t, c, "pc02", "pc01")
	_, err = frr.WaitBest(context.Background(), lab.BGPVIP4, peer(c, "pc01"), 5*time.Second)
	must(t, err)
	time.Sleep(1500 * time.Millisecond)
	fresh.Stop()
	kept.Stop()
	close(stop)
	seen := <-watched
	// After each handover's start, FRR's best path becomes the new
	// master's: the first sighting of it, and how long after.
	var moved []string
	for i, m := range []struct {
		at time.Time
		to string
	}{{mark1, peer(c, "pc02")}, {mark2, peer(c, "pc01")}} {
		for _, s := range seen {
			if s.at.After(m.at) && s.best == m.to {
				moved = append(moved, fmt.Sprintf("%s after %s", s.best, s.at.Sub(m.at).Round(time.Millisecond)))
				break
			}
		}
		if len(moved) != i+1 {
			t.Errorf("FRR's best path never became %s after handover %d:%s", m.to, i+1, show(seen))
			moved = append(moved, "never")
		}
	}
	for _, s := range seen {
		if s.best == "" || strings.HasPrefix(s.best, "error") {
			t.Errorf("FRR had no best path to the VIP during a handover:%s", show(seen))
			break
		}
	}
	t.Logf("handover (drain included) → FRR's best path (seen every 20ms): %v", moved)
	noFailedRequests(t, "new connections", fresh, mark1, mark2)
	noFailedRequests(t, "keep-alive", kept, mark1, mark2)
}

// kill -9 of the master's daemon: the kernel closes its BGP session (the
// router drops the route at once), the VIP leaves the loopback when its
// lifetime runs out, and the standby claims after dead_after. The test
// measures which of the first two comes first: the session drop.
func TestBGPKillMaster(t *testing.T) {
	c, frr, p, mark := startProbing(t)
	ctx := context.Background()
	must(t, c.KillHbd("pc01"))
	var withdrawn, expired time.Duration
	for deadline := mark.Add(10 * time.Second); withdrawn == 0 || expired == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("10s after kill -9: FRR paths %v, VIP on pc01's lo: %v", paths(t, frr), holdsBGP(t, c, "pc01"))
		}
		if ps := paths(t, frr); withdrawn == 0 && !slices.Contains(ps, peer(c, "pc01")) && !slices.Contains(ps, peer(c, "pc01")+"*") {
			withdrawn = time.Since(mark)
		}
		if expired == 0 && !holdsBGP(t, c, "pc01") {
			expired = time.Since(mark)
		}
	}
	_, err := frr.WaitBest(ctx, lab.BGPVIP4, peer(c, "pc02"), 5*time.Second)
	must(t, err)
	switched := time.Since(mark) // an upper bound: the loop above came first
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc02", 5*time.Second)
	first := firstGood(t, p, "pc02", mark)
	t.Logf("kill -9: pc01's route gone from FRR after %s (session drop), VIP gone from pc01's lo after %s (lifetime); FRR's best path pc02 by %s; first good response from pc02 %s",
		withdrawn.Round(time.Millisecond), expired.Round(time.Millisecond), switched.Round(time.Millisecond), first.Round(time.Millisecond))
	if withdrawn >= expired {
		t.Errorf("the route went with the VIP's lifetime (%s), not with the session (%s)", expired, withdrawn)
	}
	if withdrawn > time.Second {
		t.Errorf("the route took %s to go: the kernel closes a killed daemon's session at once", withdrawn)
	}
}

// The router restarts: its sessions come back and the master announces
// its routes again without being told.
func TestBGPRouterRestart(t *testing.T) {
	c, frr := startRouted(t, cluster.Options{})
	ctx := context.Background()
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc01", 10*time.Second)
	mark := time.Now()
	must(t, frr.Restart(ctx))
	restarted := time.Since(mark)
	back, err := frr.WaitBest(ctx, lab.BGPVIP4, peer(c, "pc01"), 30*time.Second)
	must(t, err)
	_, err = frr.WaitBest(ctx, lab.BGPVIP6, peer(c, "pc01"), 10*time.Second)
	must(t, err)
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc01", 10*time.Second)
	t.Logf("FRR restarted in %s; pc01's routes back on it %s later", restarted.Round(time.Millisecond), back.Round(time.Millisecond))
	if ps := paths(t, frr); len(ps) != 1 {
		t.Errorf("after the restart FRR has paths %v, want the master's only", ps)
	}
}

// With standby_announce the backup's route is on the router too, worse
// (a longer AS path, the worst MED), and the master's is best; when the
// master's daemon is killed, its route goes and the backup's, then its
// own primary one, takes over.
func TestBGPStandbyAnnounce(t *testing.T) {
	c, frr := startRouted(t, cluster.Options{BGP: &cluster.BGP{StandbyAnnounce: true}})
	ctx := context.Background()
	var standby lab.BGPPath
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		routes, err := frr.Routes(ctx, false)
		must(t, err)
		found := false
		for _, p := range routes[lab.BGPVIP4] {
			if p.PeerID == peer(c, "pc02") {
				standby, found = p, true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no standby route from pc02 on FRR: %+v", routes[lab.BGPVIP4])
		}
	}
	if standby.Best || standby.Path != "65001 65001 65001 65001" || standby.Metric != 4294967295 {
		t.Errorf("pc02's standby route: %+v; want not best, AS path 65001 ×4, MED 4294967295", standby)
	}
	if best, err := frr.Best(ctx, lab.BGPVIP4); err != nil || best != peer(c, "pc01") {
		t.Errorf("best path from %q (%v), want pc01's", best, err)
	}
	must(t, c.KillHbd("pc01"))
	_, err := frr.WaitBest(ctx, lab.BGPVIP4, peer(c, "pc02"), 5*time.Second)
	must(t, err)
	waitServedBy(t, c, cluster.BGPURL("/api/whoami"), "pc02", 5*time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		routes, err := frr.Routes(ctx, false)
		must(t, err)
		if ps := routes[lab.BGPVIP4]; len(ps) == 1 && ps[0].Path == "65001" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pc02 did not replace its standby route by its primary one: %+v", routes[lab.BGPVIP4])
		}
	}
}
