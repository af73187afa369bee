package election

import (
	"testing"
	"time"
)

// simWitness models the Redis lease: true-time expiry, per-node
// reachability, answers after one simulated millisecond.
type simWitness struct {
	holder  string
	expires time.Time
	reach   map[string]bool
	ttl     time.Duration
}

const simTTL = 4 * time.Second

func witnessCfg(name string, prio int, bypass bool) Config {
	c := cfgFor(name, prio, 1)
	c.Witness, c.WitnessBypass = true, bypass
	c.LeaseGuard = simLifetime + 1500*time.Millisecond
	c.LeaseRenew = 250 * time.Millisecond
	return c
}

func witnessPair(t *testing.T, bypass bool) (*network, *simWitness) {
	n := newNetwork(t, witnessCfg("pc01", 150, bypass), witnessCfg("pc02", 100, bypass))
	w := n.attachWitness(simTTL)
	n.until(2*time.Second, "pc01 master", n.onlyHolder("pc01"))
	return n, w
}

// attachWitness makes the network's lease actions talk to a simulated
// witness that every node can reach until told otherwise.
func (n *network) attachWitness(ttl time.Duration) *simWitness {
	w := &simWitness{reach: map[string]bool{}, ttl: ttl}
	for _, name := range n.names {
		w.reach[name] = true
	}
	n.lease = func(node *simNode, a Action) {
		r := LeaseReply{Op: a.Lease}
		switch {
		case !w.reach[node.name] || !node.link:
			r.Unreachable = true
		case a.Lease == LeaseRelease:
			if w.holder == node.name {
				w.holder = ""
			}
		case w.holder == "" || !n.now.Before(w.expires) || w.holder == node.name:
			if a.Lease == LeaseRenew && w.holder != node.name {
				break // a renew never re-creates a lapsed lease
			}
			w.holder, w.expires = node.name, n.now.Add(w.ttl)
			r.Won, r.ValidUntil = true, n.now.Add(w.ttl*98/100-10*time.Millisecond)
		default:
			r.Holder = w.holder
		}
		if a.Lease == LeaseRelease {
			return
		}
		m := node.m
		var deliver func()
		deliver = func() {
			switch {
			case node.m != m: // restarted: the answer went to the old process
			case node.down: // frozen: by the time it wakes, the call has timed out
				r = LeaseReply{Op: r.Op, Unreachable: true}
				n.later(n.now.Add(simStep), deliver)
			default:
				n.apply(node, m.LeaseResult(n.now, r))
			}
		}
		n.later(n.now.Add(simDelay), deliver)
	}
	return w
}

func TestWitnessPartitionNeverTwoHolders(t *testing.T) {
	n, _ := witnessPair(t, false)
	n.run(time.Second)
	n.isolate("pc01") // the heartbeat path only: both still reach the witness
	n.run(30 * time.Second)
	if n.double != 0 || n.nodes["pc02"].claims != 0 {
		t.Errorf("two holders for %s; pc02 claimed %d times", n.double, n.nodes["pc02"].claims)
	}
	n.recover()
	n.run(2 * time.Second)
	if h := n.holders(); len(h) != 1 || h[0] != "pc01" {
		t.Errorf("holders %v", h)
	}
}

func TestWitnessMasterCutOffSelfFences(t *testing.T) {
	n, w := witnessPair(t, false)
	n.run(time.Second)
	// The master loses both the peer and the witness (its uplink died) but
	// keeps its link: it must drop the VIP by itself before the standby can
	// win the lease.
	n.isolate("pc01")
	w.reach["pc01"] = false
	took := n.until(2*simTTL, "pc02 takes over", func() bool { return n.nodes["pc02"].holds(n.now) })
	t.Logf("pc02 holds the VIP %s after the cut", took)
	if n.double != 0 {
		t.Errorf("two holders for %s", n.double)
	}
	n.mustState("pc01", Backup)
	if n.nodes["pc01"].held {
		t.Error("pc01 did not release the VIP")
	}
}

func TestWitnessFrozenMasterExpiresBeforeStandbyWins(t *testing.T) {
	n, _ := witnessPair(t, false)
	n.run(time.Second)
	n.nodes["pc01"].down = true // SIGSTOP: no chance to self-fence
	n.until(2*simTTL, "pc02 takes over", func() bool { return n.nodes["pc02"].holds(n.now) })
	if n.double != 0 {
		t.Errorf("two holders for %s: the frozen master's VIP outlived its lease", n.double)
	}
}

func TestWitnessHandoverIsFast(t *testing.T) {
	n, _ := witnessPair(t, false)
	n.run(time.Second)
	acts, err := n.nodes["pc01"].m.Release(n.now, "pc02")
	if err != nil {
		t.Fatal(err)
	}
	n.apply(n.nodes["pc01"], acts)
	took := n.until(100*time.Millisecond, "pc02 claims", n.onlyHolder("pc02"))
	t.Logf("handover with a witness took %s", took)
}

func TestWitnessDownPolicies(t *testing.T) {
	for _, bypass := range []bool{false, true} {
		n, w := witnessPair(t, bypass)
		n.run(time.Second)
		w.reach["pc01"], w.reach["pc02"] = false, false
		n.nodes["pc01"].down = true // and the master crashes
		n.run(3 * simTTL)
		got := n.nodes["pc02"].holds(n.now)
		if got != bypass {
			t.Errorf("policy bypass=%v: pc02 holds the VIP = %v", bypass, got)
		}
	}
}
