package e2e

import (
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

func TestCablePullMovesVIPAndARP(t *testing.T) {
	c := startElected(t, cluster.Options{})
	waitServedBy(t, c, cluster.URL("/api/whoami"), "pc01", 5*time.Second)
	if mac, err := c.ClientNeigh(cluster.VIP4.Addr()); err != nil || mac != c.Lab.MAC("pc01").String() {
		t.Fatalf("client's neighbour entry for the VIP: %s, %v; want pc01's %s", mac, err, c.Lab.MAC("pc01"))
	}

	must(t, c.Lab.CablePull("pc01"))
	took, err := c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	t.Logf("pc02 holds the VIP %s after the cable pull", took)
	waitServedBy(t, c, cluster.URL("/api/whoami"), "pc02", 5*time.Second)
	if mac, err := c.ClientNeigh(cluster.VIP4.Addr()); err != nil || mac != c.Lab.MAC("pc02").String() {
		t.Fatalf("client's neighbour entry for the VIP after failover: %s, %v; want pc02's %s", mac, err, c.Lab.MAC("pc02"))
	}
	waitServedBy(t, c, cluster.URL6("/api/whoami"), "pc02", 5*time.Second)

	// Plug the cable back while sampling both hosts every 10 ms: never two
	// holders. With preempt (the default) pc01 gets the VIP back by handover.
	s := watchHolders(t, c)
	must(t, c.Lab.CablePlug("pc01"))
	_, err = c.WaitOnlyHolder("pc01", 10*time.Second)
	must(t, err)
	time.Sleep(500 * time.Millisecond)
	must(t, s.Stop())
	if n := holders(t, s).MaxConcurrent(); n > 1 {
		t.Errorf("two hosts held the VIP after the cable came back:\n%s", holders(t, s))
	}
	waitServedBy(t, c, cluster.URL("/api/whoami"), "pc01", 5*time.Second)
}

func TestLinkDownOnMasterGoesFault(t *testing.T) {
	c := startElected(t, cluster.Options{})
	_, err := c.Lab.Run(context.Background(), "pc01", "ip", "link", "set", lab.HostIf, "down")
	must(t, err)
	_, err = c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	st, err := c.Status(context.Background(), "pc01")
	must(t, err)
	if st.State != "FAULT" || len(st.Held) != 0 {
		t.Errorf("pc01 with its link down: state %s, held %v", st.State, st.Held)
	}
}

func TestKill9MasterVIPExpiresByItself(t *testing.T) {
	c := startElected(t, cluster.Options{})
	killed := time.Now()
	must(t, c.KillHbd("pc01"))
	_, err := c.WaitOnlyHolder("pc02", 6*time.Second) // the kernel drops pc01's VIP within its lifetime
	must(t, err)
	gone := time.Since(killed)
	t.Logf("pc01's VIP gone by itself %s after kill -9", gone)
	if gone > 4*time.Second {
		t.Errorf("dead pc01 kept the VIP for %s (lifetime 2s)", gone)
	}
	waitServedBy(t, c, cluster.URL("/api/whoami"), "pc02", 5*time.Second)
}

func TestSIGTERMSaysByeAndPeerTakesOverAtOnce(t *testing.T) {
	// A long dead_after makes the difference plain: without the bye the
	// standby would wait 3 s.
	c := startElected(t, cluster.Options{Interval: 100 * time.Millisecond, DeadAfter: 3 * time.Second})
	sent := time.Now()
	must(t, c.Nodes["pc01"].Hbd.Signal(syscall.SIGTERM))
	took, err := c.WaitOnlyHolder("pc02", 3*time.Second)
	must(t, err)
	t.Logf("pc02 claimed %s after SIGTERM on pc01 (dead_after 3s)", time.Since(sent))
	if took > time.Second {
		t.Errorf("takeover took %s: the bye was not honoured", took)
	}
	if err := c.Nodes["pc01"].Hbd.Wait(5 * time.Second); err != nil {
		t.Errorf("pc01 did not exit after SIGTERM: %v", err)
	}
	if code := c.Nodes["pc01"].Hbd.ExitCode(); code != 0 {
		t.Errorf("pc01 exited with %d after SIGTERM", code)
	}
}

func TestForgedFramesAreRejectedAndCounted(t *testing.T) {
	// The client is a configured (but silent) peer of pc01 so that its
	// frames get past the source check and reach the verifier.
	client := "198.51.100.100"
	c := startElected(t, cluster.Options{ExtraPeer: map[string][]string{"pc01": {client}, "pc02": {client}}})
	ctx := context.Background()
	conn, err := c.Lab.DialContext(ctx, "client", "udp", net.JoinHostPort(c.Lab.Host("pc01").IPv4.String(), "8707"))
	must(t, err)
	defer conn.Close()

	f := heartbeat.Frame{Kind: election.Heartbeat, Cluster: 1, State: 2, Priority: 255, Boot: 7, Seq: 1, Epoch: 99, SentAt: time.Now(), Node: "mallory"}
	wrongKey := []byte(strings.Repeat("x", 64))
	forged, err := f.Marshal(wrongKey)
	must(t, err)
	for i := 0; i < 3; i++ {
		_, err = conn.Write(forged)
		must(t, err)
	}
	_, err = conn.Write(forged[:10]) // truncated
	must(t, err)
	other := f
	other.Cluster = 42
	b, err := other.Marshal(wrongKey)
	must(t, err)
	_, err = conn.Write(b)
	must(t, err)

	// A forged "released" frame naming pc02 as the target, sent to pc02
	// from an address pc02 accepts frames from: it must not claim.
	rel := heartbeat.Frame{Kind: election.Released, Cluster: 1, State: 1, Priority: 150, Boot: 9, Seq: 1, Epoch: 1, SentAt: time.Now(), Node: "pc01", Target: "pc02"}
	forgedRel, err := rel.Marshal(wrongKey)
	must(t, err)
	conn3, err := c.Lab.DialContext(ctx, "client", "udp", net.JoinHostPort(c.Lab.Host("pc02").IPv4.String(), "8707"))
	must(t, err)
	defer conn3.Close()
	_, err = conn3.Write(forgedRel)
	must(t, err)

	// A non-peer (the redis host) is dropped before verification.
	conn2, err := c.Lab.DialContext(ctx, "redis", "udp", net.JoinHostPort(c.Lab.Host("pc01").IPv4.String(), "8707"))
	must(t, err)
	defer conn2.Close()
	_, err = conn2.Write(forged)
	must(t, err)

	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(ctx, "pc01")
		must(t, err)
		r := st.Rejected["udp"]
		if r["bad_tag"] >= 3 && r["truncated"] >= 1 && r["cluster"] >= 1 && r["unknown_peer"] >= 1 {
			if st.State != "MASTER" {
				t.Errorf("pc01 is %s after forged frames", st.State)
			}
			for _, p := range st.Peers {
				if p.Node == "mallory" {
					t.Errorf("a forged peer appears in status: %+v", p)
				}
			}
			st2, err := c.Status(ctx, "pc02")
			must(t, err)
			if st2.Rejected["udp"]["bad_tag"] < 1 || st2.State != "BACKUP" || c.Holds("pc02") {
				t.Errorf("forged released frame: pc02 %s, rejected %v, holds %v", st2.State, st2.Rejected, c.Holds("pc02"))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rejections not counted: %v", st.Rejected)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
