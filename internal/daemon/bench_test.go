package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
)

// BenchmarkBeat is the daemon's work for one heartbeat interval as backup,
// without the sockets: verify and decode the peer's frame, track it, feed
// it to the core, tick the core at its deadline and sign our frame. The
// peer's signing is done here too (with a reused Signer, which allocates
// nothing). Run it
// with -benchmem (allocations per beat) or -cpuprofile/-memprofile.
func BenchmarkBeat(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	rx := heartbeat.NewReceiver(key, 7, "pc02", 2)
	peerRx := heartbeat.NewReceiver(key, 7, "pc01", 1) // the peer's, for its session with us
	from := netip.MustParseAddrPort("198.51.100.1:8707")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := election.Config{Node: "pc02", Priority: 100, Peers: 1, Interval: 5 * time.Millisecond,
		DeadAfter: 300 * time.Millisecond, Preempt: true, HoldDown: time.Second, Refresh: 500 * time.Millisecond}
	m := election.New(cfg, t0)
	m.SetLink(t0, true)
	m.SetCheck(t0, "webapp", 0, true, true) // a fault check, as most installs have
	peer := heartbeat.Frame{Kind: election.Heartbeat, Cluster: 7, State: election.Master, Priority: 150,
		Boot: 1, Epoch: 1, Node: "pc01", Flags: election.FlagReady}
	var buf, ours []byte
	var track peerTrack
	signer, err := heartbeat.NewSigner(key)
	if err != nil {
		b.Fatal(err)
	}
	peerSigner, _ := heartbeat.NewSigner(key)
	now := t0
	// The handshake: each side's frames carry its sessions, until both
	// sides' frames echo the other's challenge.
	our := heartbeat.Frame{Kind: election.Heartbeat, Cluster: 7, State: election.Backup, Priority: 100, Boot: 2, Node: "pc02"}
	var sess []heartbeat.Session
	for round := 1; !rx.Established("pc01") || !peerRx.Established("pc02"); round++ {
		if round > 4 {
			b.Fatal("no session after 4 rounds")
		}
		peer.Seq, peer.SentAt, peer.Sessions = uint64(round), now, peerRx.Sessions(nil)
		our.Seq, our.SentAt, our.Sessions = uint64(round), now, rx.Sessions(sess[:0])
		in, _ := peerSigner.AppendSigned(nil, &peer)
		out, _ := signer.AppendSigned(nil, &our)
		_, _ = rx.Accept(in, from)
		_, _ = peerRx.Accept(out, from)
		now = now.Add(cfg.Interval)
	}
	sess = our.Sessions
	base := peer.Seq
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now = now.Add(cfg.Interval)
		// the peer's frame arrives
		peer.Seq, peer.SentAt = base+uint64(i+1), now
		in, err := peerSigner.AppendSigned(buf[:0], &peer)
		if err != nil {
			b.Fatal(err)
		}
		buf = in
		f, err := rx.Accept(in, from)
		if err != nil {
			b.Fatal(err)
		}
		track.observe(seenFrame{path: heartbeat.PathUDP, from: from, at: now, sent: f.SentAt, boot: f.Boot, seq: f.Seq}, cfg.DeadAfter, cfg.Interval)
		m.Receive(now, election.Heard{Node: f.Node, Kind: f.Kind, Advert: election.Advert{State: f.State, Priority: int(f.Priority), Epoch: f.Epoch, Flags: f.Flags}})
		// our beat falls due
		if d := m.NextDeadline(); !now.Before(d) {
			for _, a := range m.Tick(now) {
				if a.Kind == election.ActSend {
					adv := m.Advert()
					out := heartbeat.Frame{Kind: a.Frame, Cluster: 7, State: adv.State, Priority: uint8(adv.Priority),
						Boot: 2, Seq: base + uint64(i+1), Epoch: adv.Epoch, SentAt: now, Node: "pc02", Flags: adv.Flags,
						Sessions: rx.Sessions(sess[:0])}
					if ours, err = signer.AppendSigned(ours[:0], &out); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
}
