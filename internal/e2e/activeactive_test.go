package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// TestActiveActiveTwoGroups is the active-active pair of issue 16: group
// web1 (cluster.VIP4) prefers pc01, group web2 (cluster.Web2VIP4) prefers
// pc02, one daemon per host carries both. Under load on both VIPs, pc01's
// cable is pulled: web1 moves to pc02, web2 stays on pc02. The cable comes
// back: web1 returns to pc01 by a handover (preemption), web2 still stays.
// Then web2 is handed to pc01 and back with `hbd handover --group`, and
// web1 stays. No request to web2 fails, and none to either VIP outside the
// cable pull; requests to web1 running while the cable is out may fail
// (they are counted). Two hosts never hold one VIP at once.
func TestActiveActiveTwoGroups(t *testing.T) {
	c := start(t, cluster.Options{ActiveActive: true, AppTrack: true})
	ctx := context.Background()
	web1, web2 := cluster.VIP4, cluster.Web2VIP4
	url1, url2 := cluster.URL("/api/whoami"), cluster.Web2URL("/api/whoami")
	for _, g := range []struct {
		name            string
		vip             netip.Prefix
		master, standby string
	}{{cluster.GroupWeb1, web1, "pc01", "pc02"}, {cluster.GroupWeb2, web2, "pc02", "pc01"}} {
		_, err := c.WaitOnlyHolderOf(g.vip, g.master, 10*time.Second)
		must(t, err)
		must(t, c.WaitReadyStandbyIn(ctx, g.name, g.master, g.standby, 15*time.Second))
	}
	waitServedBy(t, c, url1, "pc01", 5*time.Second)
	waitServedBy(t, c, url2, "pc02", 5*time.Second)

	w1, w2 := watchVIP(t, c, web1), watchVIP(t, c, web2)
	ld1, ld2 := c.StartLoadOn(ctx, web1), c.StartLoadOn(ctx, web2)
	// The time to the first answer: a new connection every 5 ms whatever
	// the earlier ones do, so that one held up by the outage (its SYN
	// retransmitted after 1 s) does not hold up the next.
	open1 := c.Lab.ProbeWith(ctx, lab.ProbeConfig{From: "client", URL: url1, Every: 5 * time.Millisecond, Timeout: probeTimeout, Open: true})
	time.Sleep(500 * time.Millisecond)

	// The cable: web1 moves to pc02, web2 stays there.
	pulled := time.Now()
	must(t, c.Lab.CablePull("pc01"))
	waitServedBy(t, c, url1, "pc02", 5*time.Second)
	_, err := c.WaitOnlyHolderOf(web1, "pc02", 5*time.Second)
	must(t, err)
	for end := pulled.Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		onlyHolder(t, c, web2, "pc02", "while pc01's cable is out")
	}
	st, err := c.Status(ctx, "pc02")
	must(t, err)
	if s1, s2 := groupState(st, cluster.GroupWeb1), groupState(st, cluster.GroupWeb2); s1 != "MASTER" || s2 != "MASTER" {
		t.Errorf("pc02 with pc01's cable out: web1 %s, web2 %s; want MASTER of both", s1, s2)
	}
	out, err := c.Lab.Run(ctx, "pc02", hbdBin, "status", "-s", c.Nodes["pc02"].Socket)
	if err != nil || !strings.Contains(string(out), "\nGROUP ") {
		t.Errorf("hbd status on pc02: %v, no group table:\n%s", err, out)
	}
	t.Logf("hbd status on pc02 with pc01's cable out:\n%s", out)

	// Back: web1 returns to pc01 by a handover once pc01 is ready again
	// and the preempt_delay (1s) has passed; web2 stays on pc02.
	plugged := time.Now()
	must(t, c.Lab.CablePlug("pc01"))
	for deadline := plugged.Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		onlyHolder(t, c, web2, "pc02", "after pc01's cable came back")
		// The watch too must have read pc01's claim (it reads the events
		// a moment after the kernel sends them), so that it comes before
		// the handovers' mark.
		if h := c.HoldersOf(web1); len(h) == 1 && h[0] == "pc01" && !firstEvent(w1, "pc01", true, plugged).IsZero() {
			break
		}
		if time.Now().After(deadline) {
			logs(t, c, bothNodes...)
			t.Fatalf("web1 not back on pc01 alone 15s after the cable came back (holders %v)", c.HoldersOf(web1))
		}
	}
	returned := time.Now()
	waitServedBy(t, c, url1, "pc01", 5*time.Second)

	// The planned handovers of web2: to pc01 and back, web1 untouched.
	must(t, c.WaitReadyStandbyIn(ctx, cluster.GroupWeb2, "pc02", "pc01", 15*time.Second))
	planned := time.Now()
	handoverGroup(t, c, cluster.GroupWeb2, "pc02", "pc01")
	_, err = c.WaitOnlyHolderOf(web2, "pc01", 5*time.Second)
	must(t, err)
	waitServedBy(t, c, url2, "pc01", 5*time.Second)
	must(t, c.WaitReadyStandbyIn(ctx, cluster.GroupWeb2, "pc01", "pc02", 15*time.Second))
	handoverGroup(t, c, cluster.GroupWeb2, "pc01", "pc02")
	_, err = c.WaitOnlyHolderOf(web2, "pc02", 5*time.Second)
	must(t, err)
	waitServedBy(t, c, url2, "pc02", 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	ld1.Stop()
	ld2.Stop()
	open1.Stop()
	end := time.Now()
	h1, h2 := stopped(t, w1), stopped(t, w2)

	rs1, ro, rs2 := ld1.Results(), open1.Results(), ld2.Results()
	ms := func(from, to time.Time) time.Duration { return to.Sub(from).Round(time.Millisecond) }
	t.Logf("cable pull: pc02 claimed web1 %s after it; first answer through web1 from pc02 %s after it",
		ms(pulled, firstEvent(w1, "pc02", true, pulled)), ms(pulled, firstAnswer(ro, "pc02", pulled)))
	t.Logf("cable back: pc02 released web1 %s after it, pc01 claimed it %s after it; first answer from pc01 %s after it; web2's handover began %s after web1's return",
		ms(plugged, firstEvent(w1, "pc02", false, plugged)), ms(plugged, firstEvent(w1, "pc01", true, plugged)),
		ms(plugged, firstAnswer(ro, "pc01", plugged)), ms(returned, planned))

	// Holders, from the address events.
	neverTwo(t, h1)
	neverTwo(t, h2)
	if ch := h2.Window(h2[0].At, planned).Changes(); len(ch) != 1 || !slices.Equal(ch[0].Holders, []string{"pc02"}) {
		t.Errorf("web2 moved during the cable pull and return; changes:\n%s", describeChanges(h2))
	}
	if ch := h1.Window(planned, end).Changes(); len(ch) != 1 || !slices.Equal(ch[0].Holders, []string{"pc01"}) {
		t.Errorf("web1 moved during web2's handovers; changes:\n%s", describeChanges(h1))
	}
	var seq []string
	for _, ch := range h1.Window(h1[0].At, planned).Changes() {
		if len(ch.Holders) > 0 {
			seq = append(seq, strings.Join(ch.Holders, "+"))
		}
	}
	if !slices.Equal(seq, []string{"pc01", "pc02", "pc01"}) {
		t.Errorf("web1's holders during the cable pull and return: %v, want pc01, pc02, pc01; changes:\n%s", seq, describeChanges(h1))
	}

	// Requests. Those to web1 that were running while the cable was out
	// may fail; no other may.
	outage := func(r lab.ProbeResult) bool { return r.Start.Before(plugged) && !r.End().Before(pulled) }
	var lost, bad1 []lab.ProbeResult
	all1 := slices.Concat(rs1, ro)
	for _, r := range all1 {
		switch {
		case r.OK():
		case outage(r):
			lost = append(lost, r)
		default:
			bad1 = append(bad1, r)
		}
	}
	t.Logf("web1: %d requests, %d failed while pc01's cable was out, %d at other times", len(all1), len(lost), len(bad1))
	t.Logf("web2: %d requests, %d failed", len(rs2), rs2.Failures())
	t.Logf("web1 timeline:\n%s", rs1.Timeline(pulled.Add(-100*time.Millisecond), 50*time.Millisecond, lab.DefaultNodeSymbol))
	var bad2 []lab.ProbeResult
	for _, r := range rs2 {
		if !r.OK() {
			bad2 = append(bad2, r)
		}
	}
	if len(bad1)+len(bad2) > 0 {
		marks := fmt.Sprintf("pulled %s, plugged %s, web1 back %s, web2 handovers from %s",
			stamp(pulled), stamp(plugged), stamp(returned), stamp(planned))
		t.Errorf("failed requests outside the cable pull: web1 %d, web2 %d (%s):\n%s%s", len(bad1), len(bad2), marks,
			describeFailures("web1", bad1), describeFailures("web2", bad2))
		logs(t, c, bothNodes...)
	}
}

// onlyHolder fails the test unless node alone holds vip now.
func onlyHolder(t *testing.T, c *cluster.Cluster, vip netip.Prefix, node, when string) {
	t.Helper()
	if h := c.HoldersOf(vip); len(h) != 1 || h[0] != node {
		t.Fatalf("%s: holders of %s %v, want %s alone", when, vip.Addr(), h, node)
	}
}

// firstEvent is when host first added (or removed) the watched address
// after since; zero if it did not.
func firstEvent(w *lab.HolderWatch, host string, added bool, since time.Time) time.Time {
	for _, e := range w.Events() {
		if e.Host == host && e.Added == added && e.At.After(since) {
			return e.At
		}
	}
	return time.Time{}
}

// firstAnswer is when the first answer from node came to a request that
// started after since; zero if none did.
func firstAnswer(rs lab.ProbeResults, node string, since time.Time) time.Time {
	var first time.Time
	for _, r := range rs {
		if r.OK() && r.ServedBy == node && !r.Start.Before(since) && (first.IsZero() || r.End().Before(first)) {
			first = r.End()
		}
	}
	return first
}

// groupState is the state of the named group in a node's status.
func groupState(st *control.Status, group string) string {
	for _, g := range st.Groups {
		if g.Name == group {
			return g.State
		}
	}
	return ""
}

// handoverGroup runs `hbd handover --group group --to to` on from.
func handoverGroup(t *testing.T, c *cluster.Cluster, group, from, to string) {
	t.Helper()
	began := time.Now()
	out, err := c.Lab.Run(context.Background(), from, hbdBin, "handover", "--group", group, "--to", to, "-s", c.Nodes[from].Socket)
	if err != nil {
		logs(t, c, bothNodes...)
		t.Fatalf("hbd handover --group %s --to %s on %s: %v\n%s", group, to, from, err, out)
	}
	t.Logf("hbd handover --group %s --to %s on %s at %s:\n%s", group, to, from, stamp(began), out)
}

func stamp(at time.Time) string { return at.Format("15:04:05.000") }

func describeFailures(name string, rs []lab.ProbeResult) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s: start %s took %s status %d err %s\n", name, r.Start.Format("15:04:05.000000"),
			r.Duration.Round(time.Millisecond), r.Status, r.Err)
	}
	return b.String()
}
