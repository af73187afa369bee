// Package e2e runs the real hbd binary — daemon and web app — in network
// namespaces with a real redis-server, and checks the failover story end
// to end. Every test needs root; a missing prerequisite fails (HBD_SKIP_ROOT=1 skips).
package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
	"github.com/hbdproject/hbd/internal/testenv"
)

var hbdBin string

func TestMain(m *testing.M) { testenv.MainWithHBD(m, &hbdBin) }

// start builds a lab and a running cluster in it, cleaned up with the test.
func start(t *testing.T, o cluster.Options) *cluster.Cluster {
	t.Helper()
	l := lab.NewForTest(t, lab.Options{Hosts: []string{"pc01", "pc02", "redis", "client"}})
	o.Bin = hbdBin
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, l, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startElected starts a cluster and waits for pc01 to be the only holder,
// and for every other node to have heard it as master (a node started late
// on a loaded machine may not have yet; a fault injected before then tests
// something else).
func startElected(t *testing.T, o cluster.Options) *cluster.Cluster {
	t.Helper()
	c := start(t, o)
	if _, err := c.WaitOnlyHolder("pc01", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for name := range c.Nodes {
		if name != "pc01" {
			waitSees(t, c, name, "pc01", "MASTER")
		}
	}
	return c
}

// waitSees waits until node hears peer alive and in state.
func waitSees(t *testing.T, c *cluster.Cluster, node, peer, state string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := c.Status(context.Background(), node)
		must(t, err)
		for _, p := range st.Peers {
			if p.Node == peer && p.Alive && p.State == state {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hear %s as %s: %+v", node, peer, state, st.Peers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// waitServedBy polls the web app through url until node answers.
func waitServedBy(t *testing.T, c *cluster.Cluster, url, node string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	var lastErr error
	for time.Since(start) < limit {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		last, lastErr = c.ServedBy(ctx, url)
		cancel()
		if lastErr == nil && last == node {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s not served by %s within %s (last: %q, %v)", url, node, limit, last, lastErr)
	return 0
}

// watchHolders follows who holds the IPv4 VIP on pc01 and pc02 from both
// hosts' rtnetlink address events, until the test ends.
func watchHolders(t *testing.T, c *cluster.Cluster) *lab.HolderWatch {
	t.Helper()
	return watchVIP(t, c, cluster.VIP4)
}

// watchVIP follows who holds vip on pc01 and pc02 from both hosts'
// rtnetlink address events, until the test ends.
func watchVIP(t *testing.T, c *cluster.Cluster, vip netip.Prefix) *lab.HolderWatch {
	t.Helper()
	w, err := c.Lab.WatchHolders(context.Background(), []string{"pc01", "pc02"}, lab.HostIf, vip)
	must(t, err)
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

// holders is the watch's timeline so far. A watch that lost events fails
// the test: it never reads as "not holding".
func holders(t *testing.T, w *lab.HolderWatch) lab.HolderSamples {
	t.Helper()
	s, err := w.Result()
	must(t, err)
	return s
}
