package election

import (
	"testing"
	"time"
)

// A reload's calls into the core: SetPriority, RemoveCheck, SetPeerCount.

func TestSetPriorityMovesTheVIPByHandover(t *testing.T) {
	n := pair(t, true)
	n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
	n.run(time.Second)
	n.apply(n.nodes["pc02"], n.nodes["pc02"].m.SetPriority(n.now, 200))
	n.until(500*time.Millisecond, "pc02 preempts with its new priority", n.onlyHolder("pc02"))
	if n.double != 0 {
		t.Errorf("two holders for %s", n.double)
	}
	if st := n.nodes["pc02"].m.Status(n.now); st.Priority != 200 || st.EffectivePriority != 200 {
		t.Errorf("pc02 status priority %d effective %d", st.Priority, st.EffectivePriority)
	}
	defer func() {
		if recover() == nil {
			t.Error("SetPriority(0) did not panic")
		}
	}()
	n.nodes["pc02"].m.SetPriority(n.now, 0)
}

func TestRemoveCheckDropsItsPenalty(t *testing.T) {
	n := pair(t, true)
	n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
	n.run(time.Second)
	pc01 := n.nodes["pc01"]
	n.apply(pc01, pc01.m.SetCheck(n.now, "app", 60, false, false)) // 150 − 60 < 100
	n.until(500*time.Millisecond, "pc02 takes over", n.onlyHolder("pc02"))
	n.apply(pc01, pc01.m.RemoveCheck(n.now, "app"))
	if st := pc01.m.Status(n.now); st.EffectivePriority != 150 || len(st.Penalties) != 0 {
		t.Errorf("after RemoveCheck: effective %d penalties %v", st.EffectivePriority, st.Penalties)
	}
	n.until(5*time.Second, "pc01 preempts back", n.onlyHolder("pc01"))
	if n.double != 0 {
		t.Errorf("two holders for %s", n.double)
	}
}

// The start-up wait ends early once every configured peer was heard; the
// peer count a reload sets decides what "every" is.
func TestSetPeerCountEndsTheStartupWait(t *testing.T) {
	startup := func(setCount int) time.Duration {
		n := newNetwork(t, cfgFor("pc01", 150, 2), cfgFor("pc02", 100, 2)) // a third peer is configured but absent
		if setCount > 0 {
			for _, name := range n.names {
				n.apply(n.nodes[name], n.nodes[name].m.SetPeerCount(n.now, setCount))
			}
		}
		return n.until(time.Second, "pc01 master", n.onlyHolder("pc01"))
	}
	if took := startup(0); took < simDeadAfter {
		t.Errorf("with an absent peer configured the election took %s, less than dead_after", took)
	}
	if took := startup(1); took >= simDeadAfter {
		t.Errorf("after SetPeerCount(1) the election still took %s", took)
	}
}
