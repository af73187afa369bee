package election

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestPropertyConvergence drives 2 or 3 nodes through random faults, then
// heals everything and checks that they agree on exactly one master; all
// along, no node in FAULT or MAINTENANCE may hold the VIP.
func TestPropertyConvergence(t *testing.T) {
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
				if s := node.m.State(); (s == Fault || s == Maintenance) && node.held {
					rt.Fatalf("%s holds the VIP in %s; log %v", name, s, node.log)
				}
				if !node.link && node.held {
					rt.Fatalf("%s holds the VIP with its link down", name)
				}
			}
		}
		steps := rapid.IntRange(1, 30).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			name := n.names[rapid.IntRange(0, size-1).Draw(rt, "node")]
			node := n.nodes[name]
			switch rapid.IntRange(0, 8).Draw(rt, "event") {
			case 0:
				other := n.names[rapid.IntRange(0, size-1).Draw(rt, "other")]
				n.cut[[2]string{name, other}], n.cut[[2]string{other, name}] = true, true
			case 1:
				n.recover()
			case 2:
				if !node.down {
					n.cable(name, !node.link)
				}
			case 3:
				if !node.down {
					n.apply(node, node.m.SetCheck(n.now, "app", rapid.IntRange(0, 100).Draw(rt, "weight"), rapid.Bool().Draw(rt, "fault"), rapid.Bool().Draw(rt, "healthy")))
				}
			case 4:
				if !node.down {
					n.apply(node, node.m.SetMaintenance(n.now, rapid.Bool().Draw(rt, "maint")))
				}
			case 5:
				if !node.down {
					if to, err := node.m.Candidate(n.now, ""); err == nil {
						acts, err := node.m.Release(n.now, to)
						if err != nil {
							rt.Fatalf("release after a good candidate: %v", err)
						}
						n.apply(node, acts)
					}
				}
			case 6: // crash, or restart a crashed node
				if node.down {
					node.m, node.down, node.held = New(cfgs[indexOf(n.names, name)], n.now), false, false
					n.apply(node, node.m.SetLink(n.now, node.link))
				} else {
					node.down = true
				}
			case 7: // freeze and thaw (SIGSTOP/SIGCONT) keep the machine
				node.down = !node.down
			}
			d := time.Duration(rapid.IntRange(1, 800).Draw(rt, "wait")) * time.Millisecond
			for end := n.now.Add(d); n.now.Before(end); {
				n.run(simStep)
				invariant()
			}
		}
		// Heal everything.
		n.recover()
		for i, name := range n.names {
			node := n.nodes[name]
			if node.down {
				node.m, node.down, node.held = New(cfgs[i], n.now), false, false
			}
			if !node.link {
				n.cable(name, true)
			}
			n.apply(node, node.m.SetLink(n.now, true))
			n.apply(node, node.m.SetCheck(n.now, "app", 10, false, true))
			n.apply(node, node.m.SetMaintenance(n.now, false))
		}
		for end := n.now.Add(6 * time.Second); n.now.Before(end); {
			n.run(simStep)
			invariant()
		}
		var masters []string
		for _, name := range n.names {
			if n.nodes[name].m.State() == Master {
				masters = append(masters, name)
			}
		}
		if len(masters) != 1 {
			rt.Fatalf("after healing, masters %v; %s", masters, n.states())
		}
		if h := n.holders(); len(h) != 1 || h[0] != masters[0] {
			rt.Fatalf("holders %v, master %v", h, masters)
		}
		for _, name := range n.names {
			st := n.nodes[name].m.Status(n.now)
			for _, p := range st.Peers {
				if !p.Alive || (p.State == Master) != (p.Node == masters[0]) {
					rt.Fatalf("%s sees %s as %s (alive %v); master is %s", name, p.Node, p.State, p.Alive, masters[0])
				}
			}
		}
	})
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	panic(name)
}
