package election

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Degrade, never black out: when every node fails a fault check (a failure
// they share, such as the Redis they all use), the best node whose link is
// up keeps or gets the VIP; a node whose link is down never holds it.

func (n *network) failCheck(name string, failing bool) {
	node := n.nodes[name]
	n.apply(node, node.m.SetCheck(n.now, "app", 0, true, !failing))
}

// blackout runs d and returns how long no node held the VIP.
func (n *network) blackout(d time.Duration) time.Duration {
	var none time.Duration
	for end := n.now.Add(d); n.now.Before(end); {
		n.run(simStep)
		if len(n.holders()) == 0 {
			none += simStep
		}
	}
	return none
}

func TestSharedCheckFailureKeepsVIP(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first string // whose check fails first
		want  string // who holds the VIP once both fail
		gap   time.Duration
	}{
		// The standby fails first: the master is the best of the degraded
		// and keeps the VIP without a moment's gap.
		{"standby first", "pc02", "pc01", 0},
		// The master fails first while the standby is healthy: the VIP
		// moves, and stays with pc02 when its check fails too.
		{"master first", "pc01", "pc02", 10 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := pair(t, true)
			n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
			n.run(time.Second)
			other := map[string]string{"pc01": "pc02", "pc02": "pc01"}[tt.first]
			n.failCheck(tt.first, true)
			gap := n.blackout(200 * time.Millisecond)
			n.failCheck(other, true)
			gap += n.blackout(5 * time.Second)
			if gap > tt.gap {
				t.Errorf("nobody held the VIP for %s, want at most %s", gap, tt.gap)
			}
			if h := n.holders(); len(h) != 1 || h[0] != tt.want {
				t.Fatalf("holders %v, want [%s]; %s", h, tt.want, n.states())
			}
			if n.double != 0 {
				t.Errorf("two holders for %s", n.double)
			}
			st := n.nodes[tt.want].m.Status(n.now)
			if st.State != Master || !st.Degraded || len(st.Faults) == 0 {
				t.Errorf("holder status %s degraded=%v faults=%v, want a degraded MASTER with its faults", st.State, st.Degraded, st.Faults)
			}
			n.mustState(map[string]string{"pc01": "pc02", "pc02": "pc01"}[tt.want], Fault)
		})
	}
}

func TestEveryNodeFaultyFromStartStillElects(t *testing.T) {
	n := pair(t, true)
	n.failCheck("pc01", true)
	n.failCheck("pc02", true)
	n.until(2*simDeadAfter, "the best degraded node claims", n.onlyHolder("pc01"))
	n.run(3 * time.Second)
	if h := n.holders(); len(h) != 1 || h[0] != "pc01" {
		t.Fatalf("holders %v; %s", h, n.states())
	}
	// A lone node does the same.
	lone := newNetwork(t, cfgFor("solo", 100, 1))
	lone.failCheck("solo", true)
	lone.until(2*simDeadAfter, "a lone degraded node claims", lone.onlyHolder("solo"))
}

func TestDegradedMasterYieldsToHealthyNode(t *testing.T) {
	n := pair(t, true)
	n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
	n.failCheck("pc02", true)
	n.failCheck("pc01", true)
	n.run(time.Second)
	n.mustState("pc01", Master)
	// pc02 (lower priority) recovers: a healthy node beats a degraded one.
	// It listens out dead_after after leaving FAULT; then pc01 hands over.
	n.failCheck("pc02", false)
	if gap := n.blackout(simDeadAfter + 2*simInterval); gap > 5*time.Millisecond {
		t.Errorf("nobody held the VIP for %s during the move", gap)
	}
	n.until(time.Millisecond, "pc02 took over", n.onlyHolder("pc02"))
	n.mustState("pc01", Fault)
	if n.double != 0 {
		t.Errorf("two holders for %s", n.double)
	}
}

func TestDegradedLinkDownNeverHolds(t *testing.T) {
	n := pair(t, true)
	n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
	n.failCheck("pc02", true)
	n.failCheck("pc01", true)
	n.run(time.Second)
	n.cable("pc01", false)
	if n.nodes["pc01"].held {
		t.Fatal("pc01 kept the VIP with its link down")
	}
	n.until(simDeadAfter+2*simInterval, "degraded pc02 takes over", n.onlyHolder("pc02"))
	n.run(2 * time.Second)
	if n.nodes["pc01"].held {
		t.Fatal("pc01 claimed with its link down")
	}
	// The cable comes back: pc02 keeps the VIP (pc01 is no healthier), no
	// two holders.
	n.double = 0
	n.cable("pc01", true)
	n.run(3 * time.Second)
	if h := n.holders(); len(h) != 1 || n.double != 0 {
		t.Errorf("holders %v, two holders for %s; %s", h, n.double, n.states())
	}
}

// TestPropertyDegradeNeverBlackout drives 2 or 3 nodes through random
// check failures, recoveries and cable pulls; then, with every partition
// healed, every node failing its fault check and at least one link up,
// exactly one node must hold the VIP, one whose link is up (with three
// nodes: if a majority of links is up; with fewer, none may hold it).
// All along, no node with its link down holds it.
func TestPropertyDegradeNeverBlackout(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		size := rapid.IntRange(2, 3).Draw(rt, "nodes")
		var cfgs []Config
		for i := 0; i < size; i++ {
			c := cfgFor(fmt.Sprintf("n%d", i), rapid.IntRange(1, 255).Draw(rt, fmt.Sprintf("prio%d", i)), size-1)
			c.Preempt = rapid.Bool().Draw(rt, fmt.Sprintf("preempt%d", i))
			cfgs = append(cfgs, c)
		}
		n := newNetwork(t, cfgs...)
		invariant := func() {
			for _, name := range n.names {
				node := n.nodes[name]
				if !node.link && node.held {
					rt.Fatalf("%s holds the VIP with its link down; log %v", name, node.log)
				}
				if node.m.State() == Fault && node.held {
					rt.Fatalf("%s holds the VIP in FAULT; log %v", name, node.log)
				}
			}
		}
		wait := func(d time.Duration) {
			for end := n.now.Add(d); n.now.Before(end); {
				n.run(simStep)
				invariant()
			}
		}
		steps := rapid.IntRange(1, 20).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			name := n.names[rapid.IntRange(0, size-1).Draw(rt, "node")]
			switch rapid.IntRange(0, 2).Draw(rt, "event") {
			case 0:
				n.failCheck(name, rapid.Bool().Draw(rt, "failing"))
			case 1:
				n.cable(name, !n.nodes[name].link)
			case 2:
				other := n.names[rapid.IntRange(0, size-1).Draw(rt, "other")]
				n.cut[[2]string{name, other}], n.cut[[2]string{other, name}] = true, true
			}
			wait(time.Duration(rapid.IntRange(1, 600).Draw(rt, "wait")) * time.Millisecond)
		}
		n.recover()
		up := map[string]bool{}
		for _, name := range n.names {
			up[name] = rapid.Bool().Draw(rt, "up "+name)
		}
		up[n.names[rapid.IntRange(0, size-1).Draw(rt, "surely up")]] = true
		for _, name := range n.names {
			n.failCheck(name, true)
			if n.nodes[name].link != up[name] {
				n.cable(name, up[name])
			}
		}
		wait(4 * time.Second)
		linked := 0
		for _, u := range up {
			if u {
				linked++
			}
		}
		if linked < QuorumOf(size) {
			// The majority rule outranks degrading: fewer than a
			// majority can talk, so nobody may hold the VIP.
			if h := n.holders(); len(h) != 0 {
				rt.Fatalf("holders %v with only %d of %d links up; %s", h, linked, size, n.states())
			}
			return
		}
		// Among degraded nodes the holder keeps the VIP (moving it cannot
		// cure what they share); only when nobody held it does the best
		// claim (TestEveryNodeFaultyFromStartStillElects).
		if h := n.holders(); len(h) != 1 || !up[h[0]] {
			rt.Fatalf("holders %v, want one node whose link is up (links %v); %s", h, up, n.states())
		}
	})
}

// With a dependency both nodes share down (a weighted check failing on
// both), a planned handover is still allowed: it makes nothing worse. A
// ready master still refuses an unready standby
// (TestHandoverRefusedWhenStandbyNotReady).
func TestHandoverAllowedWhenBothFailAWeightedCheck(t *testing.T) {
	n := pair(t, false)
	n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
	for _, name := range []string{"pc01", "pc02"} {
		n.apply(n.nodes[name], n.nodes[name].m.SetCheck(n.now, "redis", 60, false, false))
	}
	n.run(200 * time.Millisecond)
	acts, err := n.nodes["pc01"].m.Release(n.now, "")
	if err != nil {
		t.Fatalf("handover refused with the shared check failing on both: %v", err)
	}
	n.apply(n.nodes["pc01"], acts)
	n.until(50*time.Millisecond, "pc02 takes over", n.onlyHolder("pc02"))
}
