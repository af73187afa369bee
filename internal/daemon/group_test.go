package daemon

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/control"
)

const testVIPWeb2 = "198.51.100.20/24"

// groupsConfig is pc01 in an active-active pair: web1 (testVIP4) prefers
// pc01, web2 (testVIPWeb2) prefers pc02.
func groupsConfig(dir string) string {
	base := strings.Replace(baseConfig(dir), fmt.Sprintf("vips: [%s, %q]\n", testVIP4, testVIP6), "", 1)
	return base + fmt.Sprintf(`groups:
  - {name: web1, id: 1, vips: [%s], priorities: {pc01: 150, pc02: 100}}
  - {name: web2, id: 2, vips: [%s], priorities: {pc01: 100, pc02: 150}}
`, testVIP4, testVIPWeb2)
}

// onLink reports whether the kernel has vip on the test interface.
func onLink(t *testing.T, vip string) bool {
	t.Helper()
	return slices.Contains(linkAddrs(t), vip)
}

// groupFrame is pc02's frame with its state in each group (ids 1, 2).
func (p *fakePeer) groupFrame(kind election.Kind, web1, web2 heartbeat.Group) heartbeat.Frame {
	f := p.frame(kind, web1.State, int(web1.Priority), web1.Flags)
	web1.ID, web2.ID = 1, 2
	f.Groups = []heartbeat.Group{web1, web2}
	return f
}

func groupOf(s *control.Status, name string) control.Group {
	for _, g := range s.Groups {
		if g.Name == name {
			return g
		}
	}
	return control.Group{}
}

func frameGroup(f heartbeat.Frame, id uint8) heartbeat.Group {
	for _, g := range f.Groups {
		if g.ID == id {
			return g
		}
	}
	return heartbeat.Group{}
}

// Two groups, one daemon: each group elects its own master over the same
// frames. pc02 holds web2; pc01 takes web1, and only web1. A handover of
// web1 moves web1 alone; pc02 going silent moves web2 to pc01.
func TestGroupsElectTheirOwnMasters(t *testing.T) {
	f := start(t, groupsConfig("DIR"))
	web2Epoch := uint64(1)
	// web1 is pc02's view of group web1: the beat goroutine reads it, the
	// watcher below changes it once pc02 has been handed web1.
	var web1 atomic.Pointer[heartbeat.Group]
	web1.Store(&heartbeat.Group{State: election.Backup, Priority: 100, Flags: election.FlagReady, Epoch: 0})
	pc02 := func() heartbeat.Frame {
		return f.peer.groupFrame(election.Heartbeat, *web1.Load(),
			heartbeat.Group{State: election.Master, Priority: 150, Flags: election.FlagReady, Epoch: web2Epoch})
	}
	f.peer.beatEvery(50*time.Millisecond, pc02)
	st := f.waitStatus("pc01 master of web1, backup of web2", func(s *control.Status) bool {
		return groupOf(s, "web1").State == "MASTER" && groupOf(s, "web2").State == "BACKUP"
	})
	if !onLink(t, testVIP4) || onLink(t, testVIPWeb2) {
		t.Fatalf("kernel: web1's VIP held %v, web2's %v; want web1's only", onLink(t, testVIP4), onLink(t, testVIPWeb2))
	}
	if g := groupOf(st, "web1"); g.ID != 1 || g.Priority != 150 || !slices.Equal(g.Held, []string{testVIP4}) {
		t.Errorf("status of web1: %+v", g)
	}
	if g := groupOf(st, "web2"); g.Priority != 100 || len(g.Held) != 0 || len(g.Peers) != 1 || g.Peers[0].State != "MASTER" {
		t.Errorf("status of web2: %+v", g)
	}
	if st.State != "MASTER" || !slices.Equal(st.Held, []string{testVIP4}) {
		t.Errorf("node summary: state %s, held %v; want MASTER (of a group) and web1's VIP", st.State, st.Held)
	}

	// One frame carries both groups, and the two groups' beats are one:
	// about one frame per interval, not two.
	n0 := len(f.peer.received())
	time.Sleep(time.Second)
	fs := f.peer.received()[n0:]
	if len(fs) < 10 || len(fs) > 30 {
		t.Errorf("%d frames in 1s at a 50ms interval with two groups, want about 20 (one frame carries every group)", len(fs))
	}
	last := fs[len(fs)-1]
	if len(last.Groups) != 2 || frameGroup(last, 1).State != election.Master || frameGroup(last, 2).State != election.Backup {
		t.Errorf("daemon's frame groups %+v, want web1 MASTER, web2 BACKUP", last.Groups)
	}

	resp, err := http.Get("http://127.0.0.1:9707/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`hbd_state{group="web1",state="MASTER"} 1`, `hbd_state{group="web2",state="BACKUP"} 1`,
		`hbd_transitions_total{from="BACKUP",group="web1",reason="no master",to="MASTER"} 1`, `hbd_vip_claims_total{group="web1"} 1`} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	// An unknown group is refused by name.
	if r := f.ctl(control.Request{Cmd: control.CmdHandover, Group: "web3", To: peerName}); r.OK || !strings.Contains(r.Error, `no group "web3"`) {
		t.Errorf("handover of web3: %+v", r)
	}

	// Hand web1 over: pc02 claims it when its Released frame comes.
	claimed := make(chan struct{})
	go func() {
		defer close(claimed)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for _, fr := range f.peer.received() {
				if fr.Kind == election.Released && frameGroup(fr, 1).Target == peerName {
					web1.Store(&heartbeat.Group{State: election.Master, Priority: 100, Flags: election.FlagReady, Epoch: 7})
					return
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	r := f.ctl(control.Request{Cmd: control.CmdHandover, Group: "web1", To: peerName, Timeout: control.Duration(5 * time.Second)})
	<-claimed
	if !r.OK {
		t.Fatalf("handover of web1: %s %+v", r.Error, r.Steps)
	}
	f.waitStatus("pc01 backup of both", func(s *control.Status) bool {
		return groupOf(s, "web1").State == "BACKUP" && groupOf(s, "web2").State == "BACKUP" && len(s.Held) == 0
	})
	for _, fr := range f.peer.received() {
		if fr.Kind == election.Released && frameGroup(fr, 2).Target != "" {
			t.Errorf("a Released frame named a target for web2, which did not move: %+v", fr.Groups)
		}
	}

	// pc02 goes silent: pc01 claims both groups after dead_after.
	f.peer.quiet()
	f.waitStatus("pc01 master of both", func(s *control.Status) bool {
		return groupOf(s, "web1").State == "MASTER" && groupOf(s, "web2").State == "MASTER"
	})
	if !onLink(t, testVIP4) || !onLink(t, testVIPWeb2) {
		t.Errorf("kernel: web1's VIP held %v, web2's %v; want both", onLink(t, testVIP4), onLink(t, testVIPWeb2))
	}

	// A clean stop releases both, and says bye once.
	f.stop()
	if onLink(t, testVIP4) || onLink(t, testVIPWeb2) {
		t.Error("VIPs still held after a clean stop")
	}
	byes := 0
	for _, fr := range f.peer.received() {
		if fr.Kind == election.Bye {
			byes++
			if fr.Seq == 0 || len(fr.Groups) != 2 || frameGroup(fr, 1).State == election.Master || frameGroup(fr, 2).State == election.Master {
				t.Errorf("bye %+v: want both groups released before it", fr.Groups)
			}
		}
	}
	if byes == 0 {
		t.Error("no bye")
	}
}

// A peer whose frames lack a group the node has is named in the log: the
// configs differ.
func TestGroupMissingFromPeerIsLogged(t *testing.T) {
	f := start(t, groupsConfig("DIR"))
	f.peer.beatEvery(50*time.Millisecond, func() heartbeat.Frame {
		fr := f.peer.frame(election.Heartbeat, election.Backup, 100, election.FlagReady)
		fr.Groups = []heartbeat.Group{{ID: 1, State: election.Backup, Priority: 100, Flags: election.FlagReady}}
		return fr
	})
	f.waitLog("peer does not carry group")
	if !strings.Contains(f.logs.String(), "group=web2") {
		t.Errorf("the log does not name web2:\n%s", f.logs)
	}
}

// A refresh that hangs (netlink waiting for the RTNL lock) does not stop
// the heartbeats: the master keeps beating while it waits. Stuck for half
// the VIPs' lifetime, it is a fault: the master releases, so that a
// healthy peer takes over before the kernel drops the VIPs. When the
// refresh goes through again, the node recovers.
func TestStuckRefreshIsAFaultNotAStall(t *testing.T) {
	f := start(t, baseConfig("DIR")) // vip_lifetime 2s: refreshes every 500ms, stuck after 1s
	// A ready backup: with none, the degraded rule would keep the VIPs here.
	f.peer.beatEvery(50*time.Millisecond, func() heartbeat.Frame {
		return f.peer.frame(election.Heartbeat, election.Backup, 50, election.FlagReady)
	})
	f.waitStatus("pc01 master", func(s *control.Status) bool {
		return s.State == "MASTER" && len(s.Held) == 2 && len(s.Peers) == 1 && s.Peers[0].Ready
	})
	release := make(chan struct{})
	hang := func() error { <-release; return nil }
	g := f.d.groups[0]
	g.keep.refreshFn.Store(&hang)
	hung := time.Now()
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	// Beats go on while the refresh hangs, until it counts as stuck.
	n0 := len(f.peer.received())
	st := f.waitStatus("pc01 in FAULT for the stuck refresh", func(s *control.Status) bool { return s.State == "FAULT" })
	took := time.Since(hung)
	if !slices.ContainsFunc(st.Faults, func(s string) bool { return strings.Contains(s, keeperCheck) }) {
		t.Errorf("faults %v, want %s", st.Faults, keeperCheck)
	}
	if took < time.Second || took > 3*time.Second {
		t.Errorf("FAULT %s after the refresh began to hang, want after about 1s (half the 2s lifetime)", took.Round(time.Millisecond))
	}
	fs := f.peer.received()[n0:]
	var gap time.Duration
	for i := 1; i < len(fs); i++ {
		gap = max(gap, fs[i].SentAt.Sub(fs[i-1].SentAt))
	}
	if len(fs) < 10 || gap > 500*time.Millisecond {
		t.Errorf("%d frames, longest gap %s while the refresh hung: the loop must keep beating (50ms interval)", len(fs), gap)
	}
	if got := held(t); len(got) != 0 {
		t.Errorf("VIPs %v still held in FAULT", got)
	}
	if strings.Contains(f.logs.String(), "stalled") {
		t.Errorf("a hung refresh counted as a stall of the loop:\n%s", f.logs)
	}

	// The refresh goes through: the node recovers and claims again.
	g.keep.refreshFn.Store(nil)
	close(release)
	f.waitStatus("pc01 master again", func(s *control.Status) bool { return s.State == "MASTER" && len(s.Held) == 2 })
}
