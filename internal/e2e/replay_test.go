package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// The replay attacks of the security review (issue 11): an attacker on the
// LAN without the key records real heartbeat frames once and sends them
// again later from a third host (the client namespace) with the peer's
// source address, around a restart of one of the daemons.

// recorded is a captured heartbeat datagram with its decoded frame.
type recorded struct {
	d lab.Datagram
	f heartbeat.Frame
}

// record decodes the captured datagrams from node with the cluster key.
func record(t *testing.T, c *cluster.Cluster, ds []lab.Datagram, node string) []recorded {
	t.Helper()
	key, err := config.ReadKey(c.Key)
	must(t, err)
	from := c.Lab.Host(node).IPv4
	var out []recorded
	for _, d := range ds {
		if d.From.Addr() != from {
			continue
		}
		if f, err := heartbeat.Unmarshal(d.Payload, key); err == nil && f.Node == node {
			out = append(out, recorded{d, f})
		}
	}
	return out
}

// replayer sends recorded datagrams to their original destination, from
// their original source address, out of the client namespace.
type replayer struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	sent int
	err  error
}

// replay sends frames in order, one every `every`, round after round
// (loop) or once, until stop.
func replay(t *testing.T, c *cluster.Cluster, frames []recorded, every time.Duration, loop bool) *replayer {
	t.Helper()
	if len(frames) == 0 {
		t.Fatal("nothing recorded to replay")
	}
	sp, err := c.Lab.NewSpoofer("client")
	must(t, err)
	r := &replayer{stop: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer sp.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			if i == len(frames) {
				if !loop {
					return
				}
				i = 0
			}
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
			err := sp.Send(frames[i].d.From, frames[i].d.To, frames[i].d.Payload)
			r.mu.Lock()
			if err != nil && r.err == nil {
				r.err = err
			}
			r.sent++
			r.mu.Unlock()
		}
	}()
	t.Cleanup(r.end)
	return r
}

// end stops the replay and returns how many datagrams went out.
func (r *replayer) end() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

func (r *replayer) result() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent, r.err
}

// holderWatch samples who holds the VIP every few milliseconds.
type holderWatch struct {
	c    *cluster.Cluster
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	bad  []string // samples where the holders were not want
	n    int
}

// watchOnly records every sample in which the holders are not exactly
// want.
func watchOnly(c *cluster.Cluster, want string) *holderWatch {
	w := &holderWatch{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			h := c.Holders()
			w.mu.Lock()
			w.n++
			if !slices.Equal(h, []string{want}) && len(w.bad) < 20 {
				w.bad = append(w.bad, fmt.Sprintf("+%s holders %v", time.Since(start).Round(time.Millisecond), h))
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *holderWatch) end() (samples int, bad []string) {
	close(w.stop)
	<-w.done
	return w.n, w.bad
}

// restartHbd stops a node's daemon cleanly (as systemctl restart does) and
// starts it again.
func restartHbd(t *testing.T, c *cluster.Cluster, node string) time.Time {
	t.Helper()
	must(t, c.Nodes[node].Hbd.Stop(5*time.Second))
	at := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	must(t, c.StartHbd(ctx, node))
	return at
}

// The replay tests' timing: dead_after long enough that a loop stalled by
// a loaded test machine does not fail over by itself, which would look
// like a successful attack.
const (
	replayInterval  = 20 * time.Millisecond
	replayDeadAfter = 2 * time.Second
	claimSlack      = time.Second
)

// preemptOff is the review's setting: nothing moves the VIP back by itself.
func preemptOff() cluster.Options {
	return cluster.Options{NoWebapp: true, Preempt: ptr(false), Interval: replayInterval, DeadAfter: replayDeadAfter}
}

func hbPort(c *cluster.Cluster, node string) netip.AddrPort {
	return netip.AddrPortFrom(c.Lab.Host(node).IPv4, config.DefaultPort)
}

// Attack (a), first variant: a Released frame pc02 sent to pc01 during a
// handover is replayed at 2000/s while pc01 restarts. Before sessions,
// pc01's fresh receiver took it as pc02's first frame and claimed the VIP
// at once; pc02 then saw pc01 outrank it and released.
func TestReplayedReleasedAfterReceiverRestart(t *testing.T) {
	c := startElected(t, preemptOff())
	capt, err := c.Lab.CaptureUDP("pc01", config.DefaultPort)
	must(t, err)
	handover(t, c, "pc01", "pc02")
	_, err = c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	handover(t, c, "pc02", "pc01") // pc02's Released frame naming pc01 goes by
	_, err = c.WaitOnlyHolder("pc01", 5*time.Second)
	must(t, err)
	handover(t, c, "pc01", "pc02")
	_, err = c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	var released []recorded
	for _, r := range record(t, c, capt.Stop(), "pc02") {
		if r.f.Kind == election.Released && r.f.Target == "pc01" {
			released = append(released, r)
		}
	}
	t.Logf("captured %d Released frames from pc02 naming pc01", len(released))

	rp := replay(t, c, released, time.Millisecond, true)
	time.Sleep(200 * time.Millisecond)
	w := watchOnly(c, "pc02")
	restartHbd(t, c, "pc01")
	time.Sleep(3 * time.Second)
	rp.end()
	samples, bad := w.end()
	sent, err := rp.result()
	must(t, err)
	t.Logf("replayed %d datagrams; %d holder samples", sent, samples)
	if len(bad) > 0 {
		t.Fatalf("the VIP left pc02 while recorded Released frames were replayed to a restarted pc01:\n%v", bad)
	}
	st, err := c.Status(context.Background(), "pc01")
	must(t, err)
	if st.State != election.Backup.String() {
		t.Errorf("pc01 is %s, want BACKUP", st.State)
	}
	t.Logf("pc01 rejected: %v", st.Rejected)

	// The real failure still works: kill -9 pc02, pc01 claims in time.
	killAndClaim(t, c, "pc02", "pc01")
}

// killAndClaim kill -9s the master and checks that the standby claims
// within dead_after (plus what a loaded machine adds).
func killAndClaim(t *testing.T, c *cluster.Cluster, master, standby string) {
	t.Helper()
	killed := time.Now()
	must(t, c.Nodes[master].Hbd.Signal(syscall.SIGKILL))
	for !c.Holds(standby) {
		if time.Since(killed) > 3*replayDeadAfter {
			t.Fatalf("%s did not claim within %s of kill -9 of %s", standby, 3*replayDeadAfter, master)
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(killed)
	t.Logf("%s claimed %s after kill -9 of %s (dead_after %s)", standby, took.Round(time.Millisecond), master, replayDeadAfter)
	if took > replayDeadAfter+claimSlack {
		t.Errorf("%s took %s to claim after kill -9 of %s: more than dead_after (%s) and slack", standby, took, master, replayDeadAfter)
	}
}

// Attack (a), second variant: pc02's MASTER frames are recorded, pc02 is
// killed, and the recording is replayed in order at the rate it was sent
// while pc01 restarts. Before sessions pc01 stayed BACKUP as long as the
// recording lasted and nobody held the VIP.
func TestReplayedMasterFramesBlackOutRestartedReceiver(t *testing.T) {
	// pc02 outranks pc01, so its MASTER frames keep pc01 BACKUP.
	o := preemptOff()
	o.Priority = map[string]int{"pc01": 100, "pc02": 150}
	c := start(t, o)
	// pc01 claims first if pc02's daemon came up late (preempt is off):
	// hand over then.
	var err error
	for deadline := time.Now().Add(15 * time.Second); len(c.Holders()) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no single VIP holder after 15s: %v", c.Holders())
		}
	}
	if c.Holds("pc01") {
		waitReady(t, c, "pc02")
		handover(t, c, "pc01", "pc02")
	}
	_, err = c.WaitOnlyHolder("pc02", 10*time.Second)
	must(t, err)
	capt, err := c.Lab.CaptureUDP("pc01", config.DefaultPort)
	must(t, err)
	// Enough frames to outlast the restart and dead_after several times
	// over at the replay's pace (a loaded machine sends fewer per second).
	const want, pace = 80, 100 * time.Millisecond
	isMaster := func(r recorded) bool { return r.f.State == election.Master && r.f.Kind == election.Heartbeat }
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n := 0
		for _, r := range record(t, c, capt.Snapshot(), "pc02") {
			if isMaster(r) {
				n++
			}
		}
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded only %d MASTER frames of pc02 in 60s", n)
		}
	}
	var masters []recorded
	for _, r := range record(t, c, capt.Stop(), "pc02") {
		if isMaster(r) {
			masters = append(masters, r)
		}
	}
	t.Logf("recorded %d MASTER frames of pc02", len(masters))

	must(t, c.KillHbd("pc02"))
	must(t, c.Nodes["pc01"].Hbd.Stop(5*time.Second))
	// In order, once, slower than they were sent: each still arrives
	// well within dead_after of the one before.
	rp := replay(t, c, masters, pace, false)
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	must(t, c.StartHbd(ctx, "pc01"))
	// A restarted node listens dead_after and claims: replayed
	// frames must not keep it BACKUP. (The dead pc02 keeps its VIP until
	// its lifetime runs out: only pc01's claim is watched.)
	up := time.Now()
	for !c.Holds("pc01") {
		if time.Since(up) > 3*replayDeadAfter {
			sent, _ := rp.result()
			t.Fatalf("restarted pc01 did not claim within %s while %d recorded MASTER frames of the dead pc02 were replayed", 3*replayDeadAfter, sent)
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(up)
	sent, _ := rp.result()
	rp.end()
	t.Logf("pc01 claimed %s after its restart (%s after the replay began, %d frames replayed so far)",
		took.Round(time.Millisecond), time.Since(started).Round(time.Millisecond), sent)
	if took > replayDeadAfter+claimSlack {
		t.Errorf("restarted pc01 took %s to claim: more than dead_after (%s) plus slack", took, replayDeadAfter)
	}
	if sent, _ := rp.result(); sent >= len(masters) {
		t.Errorf("the recording (%d frames) ran out before pc01 claimed: the test proves nothing", len(masters))
	}
}

// Attack (b): the sender restarts. Frames of pc02's previous boot — its
// MASTER heartbeats and a Released frame naming pc01 — are replayed to
// pc01, which did not restart, while pc01 is master. pc01 keeps the VIP
// and pc02, restarted, stays BACKUP.
func TestReplayedFramesOfSendersEarlierBoot(t *testing.T) {
	c := startElected(t, preemptOff())
	capt, err := c.Lab.CaptureUDP("pc01", config.DefaultPort)
	must(t, err)
	handover(t, c, "pc01", "pc02")
	_, err = c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	time.Sleep(time.Second)
	handover(t, c, "pc02", "pc01")
	_, err = c.WaitOnlyHolder("pc01", 5*time.Second)
	must(t, err)
	var old []recorded
	for _, r := range record(t, c, capt.Stop(), "pc02") {
		if r.f.State == election.Master || r.f.Kind == election.Released {
			old = append(old, r)
		}
	}
	t.Logf("recorded %d MASTER or Released frames of pc02's first boot", len(old))

	restartHbd(t, c, "pc02")
	time.Sleep(500 * time.Millisecond)
	w := watchOnly(c, "pc01")
	rp := replay(t, c, old, time.Millisecond, true)
	time.Sleep(3 * time.Second)
	rp.end()
	samples, bad := w.end()
	sent, err := rp.result()
	must(t, err)
	t.Logf("replayed %d datagrams of pc02's earlier boot; %d holder samples", sent, samples)
	if len(bad) > 0 {
		t.Fatalf("the VIP left pc01 while frames of pc02's earlier boot were replayed:\n%v", bad)
	}
	killAndClaim(t, c, "pc01", "pc02")
}

// Attack (c): old frames of both earlier boots are replayed in a steady
// stream to both nodes, to churn sessions. The established sessions hold,
// the VIP stays, and a kill -9 of the master is still noticed within
// dead_after.
func TestSteadyReplayStreamChangesNothing(t *testing.T) {
	c := startElected(t, preemptOff())
	cap1, err := c.Lab.CaptureUDP("pc01", config.DefaultPort)
	must(t, err)
	cap2, err := c.Lab.CaptureUDP("pc02", config.DefaultPort)
	must(t, err)
	time.Sleep(500 * time.Millisecond) // pc01's MASTER frames
	handover(t, c, "pc01", "pc02")     // its Released frame, then pc02's MASTER frames
	_, err = c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	time.Sleep(500 * time.Millisecond)
	from2 := record(t, c, cap1.Stop(), "pc02")
	from1 := record(t, c, cap2.Stop(), "pc01")
	// Both daemons restart once: everything recorded is from earlier boots.
	restartHbd(t, c, "pc02")
	restartHbd(t, c, "pc01")
	_, err = c.WaitOnlyHolder("pc01", 5*time.Second)
	if err != nil { // pc02 may have claimed while pc01 restarted: preempt is off
		_, err = c.WaitOnlyHolder("pc02", 5*time.Second)
	}
	must(t, err)
	master, standby := c.Holders()[0], "pc02"
	if master == "pc02" {
		standby = "pc01"
	}
	waitReady(t, c, standby)

	w := watchOnly(c, master)
	r1 := replay(t, c, from2, 2*time.Millisecond, true)
	r2 := replay(t, c, from1, 2*time.Millisecond, true)
	time.Sleep(3 * time.Second)
	samples, bad := w.end()
	if len(bad) > 0 {
		t.Fatalf("the VIP left %s under a steady replay stream:\n%v", master, bad)
	}
	st, err := c.Status(context.Background(), standby)
	must(t, err)
	t.Logf("%d holder samples; %s rejected %v", samples, standby, st.Rejected)
	// Still replaying: the standby notices the real death in time.
	killAndClaim(t, c, master, standby)
	r1.end()
	r2.end()
	n1, _ := r1.result()
	n2, _ := r2.result()
	t.Logf("replayed %d + %d datagrams", n1, n2)
}
