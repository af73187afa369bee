package election

import (
	"strings"
	"testing"
	"time"
)

// lastCause returns the cause of name's last transition into to.
func (n *network) lastCause(name string, to State) Cause {
	notes := n.nodes[name].notes
	for i := len(notes) - 1; i >= 0; i-- {
		if notes[i].To == to {
			return notes[i].Cause
		}
	}
	return CauseNone
}

// TestTransitionCauses drives each kind of transition and checks the typed
// cause the core gives it: the daemon labels hbd_transitions_total with it.
func TestTransitionCauses(t *testing.T) {
	type want struct {
		node  string
		to    State
		cause Cause
	}
	for _, tc := range []struct {
		name  string
		drive func(n *network)
		want  []want
	}{
		{"start", func(n *network) {}, []want{{"pc01", Master, CauseNoMaster}, {"pc02", Backup, CauseStarted}}},
		{"cable pull", func(n *network) {
			n.cable("pc01", false)
			n.until(time.Second, "pc02 claims", n.onlyHolder("pc02"))
		}, []want{{"pc01", Fault, CauseLinkDown}, {"pc02", Master, CauseNoMaster}}},
		{"cable back", func(n *network) {
			n.cable("pc01", false)
			n.run(500 * time.Millisecond)
			n.cable("pc01", true)
			n.run(100 * time.Millisecond)
		}, []want{{"pc01", Backup, CauseRecovered}}},
		{"fault check", func(n *network) {
			n.apply(n.nodes["pc01"], n.nodes["pc01"].m.SetCheck(n.now, "app", 0, true, false))
			n.until(time.Second, "pc02 claims", n.onlyHolder("pc02"))
		}, []want{{"pc01", Fault, CauseCheck}}},
		{"maintenance", func(n *network) {
			n.apply(n.nodes["pc01"], n.nodes["pc01"].m.SetMaintenance(n.now, true))
			n.until(time.Second, "pc02 claims", n.onlyHolder("pc02"))
		}, []want{{"pc01", Maintenance, CauseMaintenance}}},
		{"handover", func(n *network) {
			acts, err := n.nodes["pc01"].m.Release(n.now, "pc02")
			if err != nil {
				t.Fatal(err)
			}
			n.apply(n.nodes["pc01"], acts)
			n.until(time.Second, "pc02 claims", n.onlyHolder("pc02"))
		}, []want{{"pc01", Backup, CauseHandover}, {"pc02", Master, CauseReleased}}},
		{"preemption", func(n *network) {
			n.apply(n.nodes["pc01"], n.nodes["pc01"].m.SetCheck(n.now, "app", 60, false, false))
			n.until(time.Second, "pc02 takes over", n.onlyHolder("pc02"))
		}, []want{{"pc01", Backup, CausePreempted}}},
		{"split brain", func(n *network) {
			n.isolate("pc01")
			n.until(time.Second, "both hold", func() bool { return len(n.holders()) == 2 })
			n.recover()
			n.until(time.Second, "pc01 alone", n.onlyHolder("pc01"))
		}, []want{{"pc02", Backup, CauseSplitBrain}}},
		{"stall", func(n *network) {
			n.nodes["pc01"].down = true
			n.run(time.Second)
			n.nodes["pc01"].down = false
			n.run(100 * time.Millisecond)
		}, []want{{"pc01", Backup, CauseStalled}}},
		{"stop", func(n *network) {
			n.apply(n.nodes["pc01"], n.nodes["pc01"].m.Stop(n.now))
		}, []want{{"pc01", Init, CauseStopping}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := pair(t, true)
			n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
			n.run(200 * time.Millisecond)
			tc.drive(n)
			for _, w := range tc.want {
				if got := n.lastCause(w.node, w.to); got != w.cause {
					t.Errorf("%s → %s: cause %q, want %q; log:\n%s", w.node, w.to, got, w.cause, strings.Join(n.nodes[w.node].log, "\n"))
				}
			}
		})
	}
}

// TestWitnessCauses: the witness's two ways of ending a mastership.
func TestWitnessCauses(t *testing.T) {
	n, w := witnessPair(t, false)
	n.run(time.Second)
	n.isolate("pc01")
	w.reach["pc01"] = false
	n.until(2*simTTL, "pc02 takes over", func() bool { return n.nodes["pc02"].holds(n.now) })
	if got := n.lastCause("pc01", Backup); got != CauseSelfFenced {
		t.Errorf("self-fencing: cause %q", got)
	}
	// pc01 comes back, wins nothing: pc02 holds the lease.
	n.recover()
	w.reach["pc01"] = true
	n.run(2 * time.Second)
	if got := n.lastCause("pc02", Master); got != CauseNoMaster {
		t.Errorf("pc02's claim: cause %q", got)
	}
}

// TestCauseLabels: every cause has its own label. (That no transition goes
// out without a cause is checked in every simulated run, by apply.)
func TestCauseLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Causes() {
		l := c.String()
		if l == "" || l == "none" || strings.HasPrefix(l, "cause(") || seen[l] {
			t.Errorf("cause %d has label %q", c, l)
		}
		seen[l] = true
	}
	if Cause(200).String() != "cause(200)" {
		t.Errorf("unknown cause: %q", Cause(200))
	}
}
