package election

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The majority rule (three or more nodes): a node claims, and keeps, the
// VIP only while it is in contact with a majority of the cluster, itself
// included.

func cluster(t *testing.T, prios ...int) *network {
	var cfgs []Config
	for i, p := range prios {
		cfgs = append(cfgs, cfgFor(fmt.Sprintf("n%d", i), p, len(prios)-1))
	}
	return newNetwork(t, cfgs...)
}

// split cuts every path between nodes on different sides; side maps a
// node to its side (absent: side 0).
func (n *network) split(side map[string]int) {
	n.recover()
	for _, a := range n.names {
		for _, b := range n.names {
			if side[a] != side[b] {
				n.cut[[2]string{a, b}] = true
			}
		}
	}
}

// contacts counts the nodes name has heard within the last d, itself
// included.
func (n *network) contacts(name string, d time.Duration) int {
	c := 1
	for _, o := range n.names {
		if o == name {
			continue
		}
		k := [2]string{min(name, o), max(name, o)}
		if _, ok := n.hearing[k]; ok {
			c++
		} else if at, ok := n.lost[k]; ok && n.now.Sub(at) <= d {
			c++
		}
	}
	return c
}

// quorumSafety checks the majority rule at this instant: no running node
// holds the VIP once it has been out of contact with a majority for longer
// than grace. (A frozen or dead daemon's VIP runs out with its kernel
// lifetime; the pairwise rule, network.safety, covers those.)
func (n *network) quorumSafety(grace time.Duration) error {
	need := QuorumOf(len(n.names))
	for _, h := range n.holders() {
		if node := n.nodes[h]; !node.down {
			if c := n.contacts(h, grace); c < need {
				return fmt.Errorf("%s holds the VIP in contact with %d of %d nodes (a majority is %d); %s", h, c, len(n.names), need, n.states())
			}
		}
	}
	return nil
}

// majorities returns the groups of running nodes with their link up that
// hear each other (under a clean partition, made by split), keeping those
// of at least a majority.
func (n *network) majorities() [][]string {
	var groups [][]string
	done := map[string]bool{}
	for _, a := range n.names {
		na := n.nodes[a]
		if done[a] || na.down || !na.link {
			continue
		}
		g := []string{a}
		done[a] = true
		for _, b := range n.names {
			if !done[b] && n.canHear(na, n.nodes[b]) {
				g = append(g, b)
				done[b] = true
			}
		}
		if len(g) >= QuorumOf(len(n.names)) {
			groups = append(groups, g)
		}
	}
	return groups
}

// handoffGap is how long a handover may leave nobody holding the VIP: the
// old master releases, the target claims when the frame arrives.
const handoffGap = 10 * time.Millisecond

// quorumLiveness checks that every majority with an eligible member holds
// the VIP once nothing has changed for bound, but for the gap of a
// handover (a preemption). empty records since when each majority has had
// no holder.
func (n *network) quorumLiveness(changed time.Time, bound time.Duration, empty map[string]time.Time) error {
	for _, g := range n.majorities() {
		eligible, held := false, false
		for _, name := range g {
			node := n.nodes[name]
			eligible = eligible || node.m.eligible()
			held = held || (node.holds(n.now) && node.m.State() == Master)
		}
		key := fmt.Sprint(g)
		if held || !eligible {
			delete(empty, key)
			continue
		}
		if _, ok := empty[key]; !ok {
			empty[key] = n.now
		}
		if n.now.Sub(changed) > bound && n.now.Sub(empty[key]) > handoffGap {
			return fmt.Errorf("the majority %v has held no VIP for %s, %s since the last change; %s", g, n.now.Sub(empty[key]), n.now.Sub(changed), n.states())
		}
	}
	return nil
}

func TestThreeNodesCablePullOfMaster(t *testing.T) {
	n := cluster(t, 200, 150, 100)
	n.until(time.Second, "n0 master", n.onlyHolder("n0"))
	n.cable("n0", false)
	took := n.until(time.Second, "n1 takes over", n.onlyHolder("n1"))
	if took > simDeadAfter+simInterval {
		t.Errorf("failover took %s, want at most dead_after plus one interval", took)
	}
	n.cable("n0", true)
	n.until(3*time.Second, "n0 back by preemption", n.onlyHolder("n0"))
	if n.double != 0 {
		t.Errorf("two holders for %s", n.double)
	}
}

// In a 2/1 partition the master on the minority side releases within
// dead_after, and the majority side elects within dead_after plus one
// interval.
func TestTwoOnePartition(t *testing.T) {
	for _, tc := range []struct {
		name     string
		minority string
		master   string // after the split
	}{
		{"master alone", "n0", "n1"},
		{"standby alone", "n2", "n0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := cluster(t, 200, 150, 100)
			n.until(time.Second, "n0 master", n.onlyHolder("n0"))
			n.split(map[string]int{tc.minority: 1})
			took := n.until(time.Second, tc.master+" sole holder", n.onlyHolder(tc.master))
			if took > simDeadAfter+simInterval {
				t.Errorf("took %s, want at most dead_after plus one interval", took)
			}
			n.run(3 * time.Second)
			if !n.onlyHolder(tc.master)() {
				t.Fatalf("holders %v, want only %s; %s", n.holders(), tc.master, n.states())
			}
			if st := n.nodes[tc.minority].m.Status(n.now); st.Quorum.Held() || st.Quorum.Have != 1 || st.Quorum.Need != 2 {
				t.Errorf("minority's quorum %+v", st.Quorum)
			}
			n.recover()
			n.until(3*time.Second, "n0 back", n.onlyHolder("n0"))
		})
	}
}

func TestMinorityMasterReleasesWithinDeadAfter(t *testing.T) {
	n := cluster(t, 200, 150, 100)
	n.until(time.Second, "n0 master", n.onlyHolder("n0"))
	n.split(map[string]int{"n0": 1})
	took := n.until(time.Second, "n0 releases", func() bool { return !n.nodes["n0"].held })
	if took > simDeadAfter {
		t.Errorf("the minority master released after %s, want within dead_after", took)
	}
	n.until(time.Second, "n1 claims", n.onlyHolder("n1"))
	if n.double != 0 {
		t.Errorf("the two sides held the VIP at once for %s", n.double)
	}
	if c := n.nodes["n0"].notes[len(n.nodes["n0"].notes)-1].Cause; c != CauseQuorum {
		t.Errorf("cause %s, want %s", c, CauseQuorum)
	}
}

func TestLoneNodeOfThreeNeverClaims(t *testing.T) {
	n := cluster(t, 200, 150, 100)
	n.isolate("n0")
	n.isolate("n1")
	n.run(5 * time.Second)
	if h := n.holders(); len(h) != 0 {
		t.Fatalf("holders %v with every node alone", h)
	}
	n.recover()
	n.until(time.Second, "n0 master", n.onlyHolder("n0"))
}

// A planned handover between the two standbys of three: n0 hands to n2
// (not the best standby), then n2 to n1.
func TestHandoverBetweenStandbys(t *testing.T) {
	n := cluster(t, 200, 150, 100)
	for _, c := range n.nodes {
		c.m.cfg.Preempt = false
	}
	n.until(time.Second, "n0 master", n.onlyHolder("n0"))
	for _, hop := range [][2]string{{"n0", "n2"}, {"n2", "n1"}} {
		n.handOver(hop[0], hop[1])
		n.until(50*time.Millisecond, hop[1]+" takes over", n.onlyHolder(hop[1]))
		n.run(time.Second)
		if !n.onlyHolder(hop[1])() {
			t.Fatalf("holders %v after the handover to %s", n.holders(), hop[1])
		}
	}
	if n.double != 0 {
		t.Errorf("two holders for %s", n.double)
	}
}

// Five nodes split 3/2: only the three hold, whichever side the master
// was on.
func TestFiveNodesThreeTwo(t *testing.T) {
	n := cluster(t, 250, 200, 150, 100, 50)
	n.until(time.Second, "n0 master", n.onlyHolder("n0"))
	n.split(map[string]int{"n0": 1, "n1": 1})
	n.until(time.Second, "n2 sole holder", n.onlyHolder("n2"))
	n.split(map[string]int{"n0": 1, "n1": 1, "n2": 1})
	n.until(3*time.Second, "n0 sole holder (after its hold-down)", n.onlyHolder("n0"))
	n.run(2 * time.Second)
	if !n.onlyHolder("n0")() {
		t.Fatalf("holders %v", n.holders())
	}
}

// explain describes every node for a failure: what it did (periodic
// beats left out), its quorum and its view of its peers.
func (n *network) explain() string {
	var b strings.Builder
	for _, name := range n.names {
		node := n.nodes[name]
		st := node.m.Status(n.now)
		fmt.Fprintf(&b, "%s %s quorum %+v down=%v link=%v:", name, st.State, st.Quorum, node.down, node.link)
		for _, l := range node.log {
			if !strings.HasSuffix(l, " send(1)") {
				fmt.Fprintf(&b, " [%s]", l)
			}
		}
		for _, p := range st.Peers {
			fmt.Fprintf(&b, "\n    sees %s %s prio %d alive %v heard at %s", p.Node, p.State, p.Priority, p.Alive, p.LastHeard.Sub(t0))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestPropertyQuorum drives 3, 5 or 7 nodes through random clean
// partitions, cable pulls, crashes, freezes, maintenance, failing checks
// and handovers. All along: no two holders inside one majority (the
// pairwise rule), no running holder out of contact with a majority for
// longer than dead_after plus one interval, and every majority with an
// eligible node holds the VIP once nothing has changed for dead_after
// plus one interval. Then it heals everything and wants one master.
func TestPropertyQuorum(t *testing.T) {
	if !checksGiven {
		old := flag.Lookup("rapid.checks").Value.String()
		if err := flag.Set("rapid.checks", strconv.Itoa(quorumChecks)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = flag.Set("rapid.checks", old) })
	}
	rapid.Check(t, func(rt *rapid.T) { playQuorum(rt, breakage{}) })
}

// quorumChecks is how many scenarios TestPropertyQuorum plays (a scenario
// of seven nodes costs about ten of the pair's). Measured with
// TestPropertyQuorumCatchesBrokenRules over 15 seeds: each broken rule was
// caught within 5 scenarios (mean under 2); 200 is forty times that.
const quorumChecks = 200

func playQuorum(rt *rapid.T, br breakage) {
	size := rapid.SampledFrom([]int{3, 5, 7}).Draw(rt, "nodes")
	var cfgs []Config
	for i := 0; i < size; i++ {
		c := cfgFor(fmt.Sprintf("n%d", i), rapid.IntRange(1, 8).Draw(rt, fmt.Sprintf("prio%d", i)), size-1)
		c.Preempt = rapid.Bool().Draw(rt, fmt.Sprintf("preempt%d", i))
		cfgs = append(cfgs, c)
	}
	n := newNetwork(nil, cfgs...)
	n.broken = br
	grace := simDeadAfter + simInterval
	changed, empty := n.now, map[string]time.Time{}
	check := func() {
		for _, err := range []error{n.safety(false, grace), n.quorumSafety(grace), n.quorumLiveness(changed, grace, empty)} {
			if err != nil {
				rt.Logf("%s", n.explain())
				rt.Fatalf("at %s: %v", n.now.Sub(t0), err)
			}
		}
	}
	steps := rapid.IntRange(1, 12).Draw(rt, "steps")
	for i := 0; i < steps; i++ {
		name := n.names[rapid.IntRange(0, size-1).Draw(rt, "node")]
		node := n.nodes[name]
		changed = n.now
		rt.Logf("step %d at %s", i, n.now.Sub(t0))
		switch rapid.IntRange(0, 8).Draw(rt, "event") {
		case 0, 1: // a clean partition into two or three sides
			side := map[string]int{}
			sides := rapid.IntRange(2, 3).Draw(rt, "sides")
			for _, o := range n.names {
				side[o] = rapid.IntRange(0, sides-1).Draw(rt, "side "+o)
			}
			n.split(side)
		case 2:
			n.recover()
		case 3:
			if !node.down {
				n.cable(name, !node.link)
			}
		case 4: // crash, or restart a crashed node
			if node.down {
				node.m, node.down, node.held = New(cfgs[indexOf(n.names, name)], n.now), false, false
				n.apply(node, node.m.SetLink(n.now, node.link))
			} else {
				node.down = true
			}
		case 5: // freeze and thaw
			node.down = !node.down
		case 6:
			if !node.down {
				n.apply(node, node.m.SetMaintenance(n.now, rapid.Bool().Draw(rt, "maint")))
			}
		case 7:
			if !node.down {
				n.apply(node, node.m.SetCheck(n.now, "app", rapid.IntRange(0, 8).Draw(rt, "weight"), rapid.Bool().Draw(rt, "fault"), rapid.Bool().Draw(rt, "healthy")))
			}
		case 8: // a handover to a named node, if this one is master
			to := n.names[rapid.IntRange(0, size-1).Draw(rt, "to")]
			if !node.down {
				if acts, err := node.m.Release(n.now, to); err == nil {
					n.apply(node, acts)
				}
			}
		}
		wait := 800
		if rapid.IntRange(0, 4).Draw(rt, "long") == 0 {
			wait = 3000
		}
		for end := n.now.Add(time.Duration(rapid.IntRange(1, wait).Draw(rt, "wait")) * time.Millisecond); n.now.Before(end); {
			n.run(simStep)
			check()
		}
	}
	n.recover()
	changed = n.now
	for i, name := range n.names {
		node := n.nodes[name]
		if node.down {
			node.m, node.down, node.held = New(cfgs[i], n.now), false, false
		}
		if !node.link {
			n.cable(name, true)
		}
		n.apply(node, node.m.SetLink(n.now, true))
		n.apply(node, node.m.SetCheck(n.now, "app", 0, false, true))
		n.apply(node, node.m.SetMaintenance(n.now, false))
	}
	for end := n.now.Add(4 * time.Second); n.now.Before(end); {
		n.run(simStep)
		check()
	}
	var masters []string
	for _, name := range n.names {
		if n.nodes[name].m.State() == Master {
			masters = append(masters, name)
		}
	}
	if h := n.holders(); len(masters) != 1 || len(h) != 1 || h[0] != masters[0] {
		rt.Fatalf("after healing, masters %v, holders %v; %s", masters, h, n.states())
	}
}

// brokenQuorums are deliberately broken majority rules; the property must
// catch each (TestPropertyQuorumCatchesBrokenRules).
var brokenQuorums = []breakage{
	{
		name: "the core counts the cluster as a pair (no majority rule)",
		step: func(n *network, node *simNode) { node.m.cfg.Peers = 1 },
	},
	{
		name: "a master that lost the quorum claims again at once",
		step: func(n *network, node *simNode) {
			m := node.m
			if m.state == Backup && m.lastCause == CauseQuorum && m.lastTransition.Equal(n.now) {
				m.claim(n.now, CauseNoMaster, "broken: ignore the lost quorum")
				n.apply(node, m.flush(n.now))
			}
		},
	},
	{
		name: "a node never ends its listening period while a peer is silent",
		step: func(n *network, node *simNode) {
			if m := node.m; m.state == Backup && !m.heardAll() {
				m.listenUntil = n.now.Add(time.Hour)
			}
		},
	},
}

func TestPropertyQuorumCatchesBrokenRules(t *testing.T) {
	catchBroken(t, playQuorum, brokenQuorums)
}

// TestQuorumOf pins the majority sizes.
func TestQuorumOf(t *testing.T) {
	for size, want := range []int{0, 0, 0, 2, 3, 3, 4, 4} {
		if got := QuorumOf(size); got != want {
			t.Errorf("QuorumOf(%d) = %d, want %d", size, got, want)
		}
	}
}

// VIP groups: each group runs its own election in the core, over the same
// paths. Active-active: web1 prefers A, web2 prefers B. A pulled cable on
// A moves web1 to B; plugged back, web1 returns to A by a handover; web2
// never moves.
func TestGroupsActiveActive(t *testing.T) {
	web1 := newNetwork(t, cfgFor("A", 150, 1), cfgFor("B", 100, 1))
	web2 := newNetwork(t, cfgFor("A", 100, 1), cfgFor("B", 150, 1))
	groups := []*network{web1, web2}
	run := func(d time.Duration, check func()) {
		for end := web1.now.Add(d); web1.now.Before(end); {
			for _, g := range groups {
				g.run(simStep)
			}
			check()
		}
	}
	web2Stays := func() {
		if !web2.onlyHolder("B")() {
			t.Fatalf("web2 moved: holders %v; %s", web2.holders(), web2.states())
		}
	}
	run(time.Second, func() {})
	if !web1.onlyHolder("A")() || !web2.onlyHolder("B")() {
		t.Fatalf("web1 %v, web2 %v: want A and B", web1.holders(), web2.holders())
	}
	claims := web2.nodes["B"].claims
	for _, g := range groups {
		g.cable("A", false)
	}
	run(simDeadAfter+simInterval, web2Stays)
	if !web1.onlyHolder("B")() {
		t.Fatalf("web1 did not move to B: %v", web1.holders())
	}
	for _, g := range groups {
		g.cable("A", true)
	}
	run(3*time.Second, web2Stays)
	if !web1.onlyHolder("A")() {
		t.Fatalf("web1 did not return to A: %v; %s", web1.holders(), web1.states())
	}
	if n := web1.nodes["B"].notes; n[len(n)-1].Cause != CausePreempted {
		t.Errorf("web1 left B by %s, want a handover to the preempting A", n[len(n)-1].Cause)
	}
	if web1.double != 0 || web2.double != 0 {
		t.Errorf("two holders: web1 %s, web2 %s", web1.double, web2.double)
	}
	if web2.nodes["B"].claims != claims {
		t.Errorf("web2's B claimed %d more times", web2.nodes["B"].claims-claims)
	}
}

// A cut one way only: the master's frames no longer reach the others, but
// it still hears them, so it keeps its majority. The others elect n1; the
// old master hears a master with a later claim and steps down at once.
func TestOneWayCutOldMasterStepsDown(t *testing.T) {
	n := cluster(t, 200, 150, 100)
	n.until(time.Second, "n0 master", n.onlyHolder("n0"))
	n.run(200 * time.Millisecond) // the others have heard n0's claim (its epoch)
	n.cut[[2]string{"n0", "n1"}], n.cut[[2]string{"n0", "n2"}] = true, true
	n.until(time.Second, "n1 claims", func() bool { return n.nodes["n1"].holds(n.now) })
	n.until(10*time.Millisecond, "n0 steps down", n.onlyHolder("n1"))
	n.run(3 * time.Second)
	if !n.onlyHolder("n1")() {
		t.Fatalf("holders %v; %s", n.holders(), n.states())
	}
	if c := n.nodes["n0"].notes[len(n.nodes["n0"].notes)-1].Cause; c != CauseSplitBrain {
		t.Errorf("n0 stepped down for %s, want %s", c, CauseSplitBrain)
	}
	n.recover()
	n.until(3*time.Second, "n0 back by preemption", n.onlyHolder("n0"))
}

// A handover between two nodes, seen by a third that hears the new master
// late: the old master's next frame (its handover done, no target any
// more) reaches the third before the new master's own. The third must not
// read that as "no master" and claim beside the new master.
func TestThirdNodeWaitsForTheHandoversNewMaster(t *testing.T) {
	n := cluster(t, 200, 150, 100)
	for _, c := range n.nodes {
		c.m.cfg.Preempt = false
	}
	n.until(time.Second, "n0 master", n.onlyHolder("n0"))
	// n0 now ranks below n1 and n2 but, without preemption, stays master;
	// n1 outranks both n0 and the target n2.
	n.apply(n.nodes["n0"], n.nodes["n0"].m.SetCheck(n.now, "app", 120, false, false))
	n.run(200 * time.Millisecond)
	n.mustState("n0", Master)
	n.slow[[2]string{"n2", "n1"}] = 3 * simInterval // below dead_after: n2 stays alive for n1
	n.handOver("n0", "n2")
	n.until(10*time.Millisecond, "n2 takes over", n.onlyHolder("n2"))
	n.run(time.Second)
	if !n.onlyHolder("n2")() || n.double != 0 {
		t.Fatalf("holders %v, two holders for %s; %s", n.holders(), n.double, n.states())
	}
}

// A handover whose target claims and at once hands the VIP on (a node that
// outranks it asks for it in the same instant) never shows the target as
// MASTER; the yielder learns from its epoch that the handover completed
// and stops naming it, instead of waiting out the yield timeout.
func TestHandoverCompletesByTheTargetsEpoch(t *testing.T) {
	a, b, c := cfgFor("a", 100, 2), cfgFor("b", 150, 2), cfgFor("c", 200, 2)
	a.Preempt, b.Preempt = false, false
	n := newNetwork(t, a, b, c)
	n.apply(n.nodes["c"], n.nodes["c"].m.SetMaintenance(n.now, true))
	n.until(time.Second, "b master", n.onlyHolder("b"))
	n.handOver("b", "a")
	n.until(10*time.Millisecond, "a master", n.onlyHolder("a"))
	// c comes back wanting the VIP, but a does not hear it: only b does.
	n.cut[[2]string{"c", "a"}] = true
	n.apply(n.nodes["c"], n.nodes["c"].m.SetMaintenance(n.now, false))
	n.run(2 * time.Second)
	n.mustState("a", Master)
	n.handOver("a", "b") // b claims and at once yields to c
	n.until(10*time.Millisecond, "c master", n.onlyHolder("c"))
	n.run(5 * time.Millisecond)
	if y := n.nodes["a"].m.Status(n.now).YieldingTo; y != "" {
		t.Fatalf("a still hands over to %q after b claimed (and handed on to c); %s", y, n.states())
	}
}

// Sent: a frame sent on behalf of another election (another VIP group of
// the same node) carries this one's advert too, so its own periodic beat
// moves to one interval after that frame; it never comes sooner. And Sent
// is a Tick: a machine whose beats all ride on another group's frames
// still sees its peers expire.
func TestSentMovesThePeriodicBeat(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := New(cfgFor("A", 100, 1), t0)
	m.Tick(t0)
	next := m.NextDeadline()
	if d := next.Sub(t0); d <= 0 || d > simInterval {
		t.Fatalf("next deadline %s after the first tick, want within one interval", d)
	}
	for _, a := range m.Sent(next.Add(-time.Millisecond)) {
		if a.Kind == ActSend && a.Periodic {
			t.Errorf("Sent emitted a periodic beat: %v", a)
		}
	}
	if got := m.NextDeadline(); !got.Equal(next.Add(-time.Millisecond + simInterval)) {
		t.Errorf("after Sent the beat is due %s after the old deadline, want one interval after the frame", got.Sub(next))
	}
	before := m.NextDeadline()
	m.Sent(t0) // an older frame never brings the beat forward
	if !m.NextDeadline().Equal(before) {
		t.Errorf("Sent with an older time moved the deadline from %s to %s", before, m.NextDeadline())
	}
}

// A group whose every beat rides on the other group's frames: fed only
// Sent after its peer falls silent, it still claims after dead_after, and
// never takes the silence between calls for a stall of its own.
func TestSentOnlyStillClaims(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := New(cfgFor("A", 100, 1), t0)
	h := Heard{Node: "B", Kind: Heartbeat, Advert: Advert{State: Master, Priority: 150, Epoch: 1, Flags: FlagReady}}
	now := t0
	for ; now.Before(t0.Add(time.Second)); now = now.Add(simInterval) {
		m.Receive(now, h)
		m.Sent(now)
	}
	if m.State() != Backup {
		t.Fatalf("state %s under B, want BACKUP", m.State())
	}
	silent := now
	for ; now.Before(silent.Add(simDeadAfter + 10*simInterval)); now = now.Add(simInterval) {
		m.Sent(now)
		if m.State() == Master {
			break
		}
	}
	if m.State() != Master {
		t.Fatalf("state %s %s after B fell silent, fed only Sent; want MASTER", m.State(), now.Sub(silent))
	}
	if d := now.Sub(silent); d > simDeadAfter+2*simInterval {
		t.Errorf("claimed %s after the silence began, want within dead_after (%s) and an interval or two", d, simDeadAfter)
	}
}
