package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab/cluster"
)

func witnessOpts() cluster.Options {
	w := "witness:\n  redis: redis://198.51.100.20:6379/0\n"
	return cluster.Options{Extra: map[string]string{"pc01": w, "pc02": w}}
}

// Partition only the heartbeat path between pc01 and pc02 (both still reach
// the client and Redis). With the witness there are never two holders;
// without it there are, and after the heal one remains within an interval
// and the client's neighbour entry points to it.
func TestPartitionWithAndWithoutWitness(t *testing.T) {
	for _, withWitness := range []bool{true, false} {
		t.Run(fmt.Sprintf("witness=%v", withWitness), func(t *testing.T) {
			o := cluster.Options{}
			if withWitness {
				o = witnessOpts()
			}
			c := startElected(t, o)
			time.Sleep(500 * time.Millisecond)
			s := watchHolders(t, c)
			// The client keeps talking to the VIP, so its neighbour entry
			// follows whichever host announced last.
			p := probe(c, false)
			defer p.Stop()
			must(t, c.Lab.Isolate("pc01", "pc02"))
			d := 30 * time.Second
			if !withWitness {
				d = 3 * time.Second // long enough to show the split brain
			}
			time.Sleep(d)
			max := holders(t, s).MaxConcurrent()
			must(t, c.Lab.Unisolate("pc01", "pc02"))
			healed := time.Now()
			_, err := c.WaitOnlyHolder("pc01", 2*time.Second)
			must(t, err)
			t.Logf("one holder %s after the heal", time.Since(healed).Round(time.Millisecond))
			time.Sleep(time.Second)
			must(t, s.Stop())
			if withWitness && max > 1 {
				t.Errorf("two holders during the partition with a witness:\n%s", holders(t, s))
			}
			if !withWitness {
				if max < 2 {
					t.Errorf("no split brain without a witness: the test did not partition")
				}
				t.Logf("without a witness: two holders for %s during the partition (as keepalived would)", holders(t, s).DoubleHolderDuration().Round(10*time.Millisecond))
			}
			mac, err := c.ClientNeigh(cluster.VIP4.Addr())
			must(t, err)
			waitServedBy(t, c, cluster.URL("/api/whoami"), "pc01", 5*time.Second)
			if mac != c.Lab.MAC("pc01").String() {
				// The re-announcement may still be on its way; look again.
				time.Sleep(200 * time.Millisecond)
				if mac, _ = c.ClientNeigh(cluster.VIP4.Addr()); mac != c.Lab.MAC("pc01").String() {
					t.Errorf("client's neighbour entry %s after the heal, want pc01's %s", mac, c.Lab.MAC("pc01"))
				}
			}
		})
	}
}

// A master cut off from its peer and from Redis, with its link up (so no
// FAULT), drops the VIP by itself before the standby can win the lease.
func TestWitnessSelfFencing(t *testing.T) {
	c := startElected(t, witnessOpts())
	time.Sleep(500 * time.Millisecond)
	s := watchHolders(t, c)
	// Cut pc01 off from everything (its link stays up: no FAULT).
	must(t, c.Lab.Blackout("pc01", true))
	cut := time.Now()
	took, err := c.WaitOnlyHolder("pc02", 15*time.Second)
	must(t, err)
	t.Logf("pc02 alone holds the VIP %s after pc01 was cut off", took.Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	must(t, s.Stop())
	if holders(t, s).MaxConcurrent() > 1 {
		t.Errorf("two holders:\n%s", holders(t, s))
	}
	st, err := c.Status(context.Background(), "pc01")
	must(t, err)
	if st.State == "MASTER" || len(st.Held) != 0 {
		t.Errorf("pc01 after self-fencing: %s, held %v (cut %s ago)", st.State, st.Held, time.Since(cut))
	}
}

// Redis down: with policy safe no failover happens; with available the
// standby takes over on heartbeats alone.
func TestWitnessUnreachablePolicies(t *testing.T) {
	for _, policy := range []string{"safe", "available"} {
		t.Run(policy, func(t *testing.T) {
			w := "witness:\n  redis: redis://198.51.100.20:6379/0\n  policy: " + policy + "\n"
			c := startElected(t, cluster.Options{NoWebapp: false, Extra: map[string]string{"pc01": w, "pc02": w}})
			time.Sleep(500 * time.Millisecond)
			must(t, c.Lab.CablePull("redis"))
			must(t, c.KillHbd("pc01"))
			time.Sleep(8 * time.Second)
			got := c.Holds("pc02")
			if got != (policy == "available") {
				t.Errorf("policy %s: pc02 holds the VIP = %v", policy, got)
			}
		})
	}
}
