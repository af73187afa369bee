package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// Three hosts, a majority quorum: pc01 (150) is master, pc02 (120) and
// pc03 (100) stand by.

var three = []string{"pc01", "pc02", "pc03"}

// startThree starts three nodes and waits for pc01 to hold the VIP alone.
func startThree(t *testing.T, o cluster.Options) *cluster.Cluster {
	t.Helper()
	l := lab.NewForTest(t, lab.Options{Hosts: []string{"pc01", "pc02", "pc03", "redis", "client"}})
	o.Bin, o.Nodes = hbdBin, three
	o.Priority = map[string]int{"pc01": 150, "pc02": 120, "pc03": 100}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, l, o)
	must(t, err)
	_, err = c.WaitOnlyHolder("pc01", 10*time.Second)
	must(t, err)
	waitAllInContact(t, c)
	return c
}

// waitAllInContact waits until every node counts all three in contact:
// pc01 claims as soon as it has a majority, which may be before pc03's
// sessions are up.
func waitAllInContact(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range three {
		for {
			st, err := c.Status(context.Background(), n)
			if err == nil && st.Quorum != nil && st.Quorum.Have == len(three) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not count all three nodes in contact within 10s: %+v, %v", n, st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func watchThree(t *testing.T, c *cluster.Cluster) *lab.HolderWatch {
	t.Helper()
	w, err := c.Lab.WatchHolders(context.Background(), three, lab.HostIf, cluster.VIP4)
	must(t, err)
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

func TestThreeNodesStatusShowsQuorumAndEveryPeer(t *testing.T) {
	c := startThree(t, cluster.Options{NoWebapp: true})
	st, err := c.Status(context.Background(), "pc02")
	must(t, err)
	if q := st.Quorum; q == nil || !q.Held || q.Size != 3 || q.Need != 2 || q.Have != 3 {
		t.Fatalf("pc02's quorum %+v, want 3 of 3 held, need 2", st.Quorum)
	}
	var names []string
	for _, p := range st.Peers {
		names = append(names, p.Node)
	}
	if strings.Join(names, ",") != "pc01,pc03" {
		t.Errorf("pc02's peers %v, want pc01,pc03", names)
	}
	out, err := c.Lab.Run(context.Background(), "pc02", hbdBin, "status", "-s", c.Nodes["pc02"].Socket)
	must(t, err)
	if !strings.Contains(string(out), "quorum held: 3 of 3 nodes in contact, a majority is 2") {
		t.Errorf("hbd status does not show the quorum:\n%s", out)
	}
}

// The master's cable is pulled: the best standby takes over, and the old
// master gets the VIP back by handover when the cable returns; never two
// holders.
func TestThreeNodesCablePullOfMaster(t *testing.T) {
	c := startThree(t, cluster.Options{})
	w := watchThree(t, c)
	must(t, c.Lab.CablePull("pc01"))
	took, err := c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	t.Logf("three nodes: pc02 holds the VIP %s after pc01's cable pull", took)
	waitServedBy(t, c, cluster.URL("/api/whoami"), "pc02", 5*time.Second)
	must(t, c.Lab.CablePlug("pc01"))
	_, err = c.WaitOnlyHolder("pc01", 10*time.Second)
	must(t, err)
	settleNeverTwo(t, w)
}

// settleNeverTwo lets the cluster run on a moment, stops the watch and
// fails the test if two hosts ever held the VIP at once.
func settleNeverTwo(t *testing.T, w *lab.HolderWatch) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	must(t, w.Stop())
	neverTwo(t, holders(t, w))
}

// A 2/1 partition with every host still reaching the client: the master
// alone on its side releases the VIP within dead_after, pc02 takes it on
// the majority side, and pc01 never claims again while cut off. Then the
// other way: the standby alone on its side never claims.
func TestThreeNodesTwoOnePartition(t *testing.T) {
	c := startThree(t, cluster.Options{})
	ctx := context.Background()
	w := watchThree(t, c)
	cut := time.Now()
	must(t, c.Lab.Partition([]string{"pc01"}, []string{"pc02", "pc03"}))
	took, err := c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	t.Logf("2/1 partition: pc02 alone holds the VIP %s after the cut", took)
	waitServedBy(t, c, cluster.URL("/api/whoami"), "pc02", 5*time.Second)
	time.Sleep(3 * time.Second) // the minority must stay out
	st, err := c.Status(ctx, "pc01")
	must(t, err)
	if st.Quorum == nil || st.Quorum.Held || st.State == "MASTER" {
		t.Errorf("pc01 cut off: state %s, quorum %+v", st.State, st.Quorum)
	}
	must(t, w.Stop())
	s := holders(t, w).Window(cut, time.Now())
	for _, ch := range s.Changes() {
		t.Logf("  +%s %v", ch.At.Sub(cut).Round(time.Millisecond), ch.Holders)
	}
	var released time.Duration
	for _, e := range w.Events() {
		if e.Host == "pc01" && !e.Added && e.At.After(cut) {
			released = e.At.Sub(cut)
			break
		}
	}
	t.Logf("2/1 partition: pc01 released %s after the cut (dead_after 300ms); two holders for %s", released, s.DoubleHolderDuration())
	if released == 0 || released > time.Second {
		t.Errorf("the minority master released %s after the cut, want within dead_after (300ms) plus slack", released)
	}
	// pc01 counts its peers for 225ms (dead_after less a quarter), pc02
	// and pc03 wait 300ms for pc01: 75ms apart.
	if d := s.DoubleHolderDuration(); d > 0 {
		t.Errorf("both sides of the partition held the VIP for %s", d)
	}
	if h := c.Holders(); len(h) != 1 || h[0] != "pc02" {
		t.Fatalf("holders %v after 3s of partition, want pc02 alone", h)
	}
	if n := len(s.Changes()); n != 3 {
		logs(t, c, three...)
		t.Errorf("holders changed %d times during the partition, want pc01, nobody, pc02:\n%s", n-1, s)
	}

	must(t, c.Lab.Heal())
	_, err = c.WaitOnlyHolder("pc01", 10*time.Second)
	must(t, err)

	// A standby alone: nothing moves, and it never claims.
	w2 := watchThree(t, c)
	must(t, c.Lab.Partition([]string{"pc03"}, []string{"pc01", "pc02"}))
	time.Sleep(2 * time.Second)
	must(t, w2.Stop())
	if s := holders(t, w2); len(s.Changes()) > 1 || !c.Holds("pc01") || c.Holds("pc03") {
		t.Errorf("a standby cut off changed the holders:\n%s", s)
	}
	must(t, c.Lab.Heal())
}

// A planned handover between the two standbys, with the CLI's --to: pc01
// hands to pc03 (not the best standby), pc03 hands to pc02. No request
// fails and there are never two holders.
func TestThreeNodesHandoverBetweenStandbys(t *testing.T) {
	c := startThree(t, cluster.Options{Preempt: ptr(false)})
	ctx := context.Background()
	w := watchThree(t, c)
	pr := c.Lab.Probe(ctx, "client", cluster.URL("/api/whoami"), 10*time.Millisecond, true)
	for _, hop := range [][2]string{{"pc01", "pc03"}, {"pc03", "pc02"}} {
		out, err := c.Lab.Run(ctx, hop[0], hbdBin, "handover", "--to", hop[1], "-s", c.Nodes[hop[0]].Socket)
		if err != nil {
			t.Fatalf("hbd handover --to %s on %s: %v\n%s", hop[1], hop[0], err, out)
		}
		_, err = c.WaitOnlyHolder(hop[1], 5*time.Second)
		must(t, err)
		waitServedBy(t, c, cluster.URL("/api/whoami"), hop[1], 5*time.Second)
	}
	settleNeverTwo(t, w)
	pr.Stop()
	if f := pr.Failures(); f != 0 {
		t.Errorf("%d requests failed during the handovers:\n%s", f, pr.Summary())
	}
}

// logs writes the daemons' logs into the test's output.
func logs(t *testing.T, c *cluster.Cluster, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		b, err := os.ReadFile(c.Nodes[n].Hbd.LogPath())
		t.Logf("%s's log (%v):\n%s", n, err, b)
	}
}
