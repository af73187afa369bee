package heartbeat

import (
	"errors"

	"fmt"
	"github.com/hbdproject/hbd/heartbeat/election"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var testPeer = netip.MustParseAddrPort("198.51.100.2:7946")

// step is one frame offered to a Receiver and the expected outcome
// (nil: accepted).
type step struct {
	name string
	mod  func(*Frame)
	raw  func([]byte) []byte // applied to the signed bytes, optional
	key  []byte              // signing key, default testKey
	want error
}

func seqAt(boot, seq uint64, sent int64) func(*Frame) {
	return func(f *Frame) {
		f.Boot, f.Seq, f.SentAt = boot, seq, time.Unix(0, sent)
	}
}

// alphaBoot is the boot id of the Receiver under test ("alpha").
const alphaBoot = 0xa1a1

// sim is a peer node in a receiver test: it numbers and signs its frames
// and keeps its own Receiver, whose sessions its frames carry, exactly as
// the daemon does.
type sim struct {
	name string
	boot uint64
	seq  uint64
	sent int64 // its clock, unix ns
	rx   *Receiver
}

func newSim(name string, boot uint64, sent int64) *sim {
	return &sim{name: name, boot: boot, sent: sent, rx: NewReceiver(testKey, 42, name, boot)}
}

// next returns the sim's next frame, numbered and stamped with its
// sessions.
func (s *sim) next() Frame {
	s.seq++
	s.sent += 5_000_000
	f := testFrame()
	f.Node, f.Boot, f.Seq, f.SentAt = s.name, s.boot, s.seq, time.Unix(0, s.sent)
	f.Sessions = s.rx.Sessions(nil)
	return f
}

func (s *sim) signed(t testing.TB) []byte { f := s.next(); return mustSign(t, f, testKey) }

// handshake exchanges frames between two sims until each has an
// established session with the other, and fails after a few rounds. It
// returns how many frames each side had to send.
func handshake(t testing.TB, a, b *sim) int {
	t.Helper()
	for round := 1; round <= 4; round++ {
		_, _ = b.rx.Accept(a.signed(t), testPeer)
		_, _ = a.rx.Accept(b.signed(t), testPeer)
		if a.rx.Established(b.name) && b.rx.Established(a.name) {
			return round
		}
	}
	t.Fatalf("no session between %s and %s after 4 rounds", a.name, b.name)
	return 0
}

// pair returns the Receiver under test (alpha's) and a peer bravo with an
// established session to it.
func pair(t testing.TB, bravoBoot uint64) (*sim, *sim) {
	t.Helper()
	alpha, bravo := newSim("alpha", alphaBoot, 1000), newSim("bravo", bravoBoot, 1000)
	handshake(t, alpha, bravo)
	return alpha, bravo
}

// runSteps offers frames from bravo, as modified by each step, to alpha.
func runSteps(t *testing.T, alpha, bravo *sim, steps []step) {
	t.Helper()
	for i, s := range steps {
		f := bravo.next()
		if s.mod != nil {
			s.mod(&f)
		}
		key := s.key
		if key == nil {
			key = testKey
		}
		b := mustSign(t, f, key)
		if s.raw != nil {
			b = s.raw(b)
		}
		got, err := alpha.rx.Accept(b, testPeer)
		if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Fatalf("step %d %q: Accept: %v, want %v", i, s.name, err, s.want)
		}
		if err == nil && !sameFrame(got, f) {
			t.Fatalf("step %d %q: got %+v, want %+v", i, s.name, got, f)
		}
	}
}

// seqOnly sets a frame's sequence number (the session stays bravo's).
func seqOnly(seq uint64) func(*Frame) { return func(f *Frame) { f.Seq = seq } }

func TestReceiverRejects(t *testing.T) {
	tests := []step{
		{name: "truncated", raw: func(b []byte) []byte { return b[:10] }, want: ErrTruncated},
		{name: "bad magic", raw: func(b []byte) []byte { b[1] = 'X'; return b }, want: ErrBadMagic},
		{name: "version", raw: func(b []byte) []byte { b[2] = 9; return b }, want: ErrVersion},
		{name: "old version 1", raw: func(b []byte) []byte { b[2] = 1; return b }, want: ErrVersion},
		{name: "malformed", raw: func(b []byte) []byte { b[3] = 0; return b }, want: ErrMalformed},
		{name: "cluster", mod: func(f *Frame) { f.Cluster = 43 }, want: ErrCluster},
		{name: "cluster before tag", mod: func(f *Frame) { f.Cluster = 43 }, key: []byte("other key other key other key!!"), want: ErrCluster},
		{name: "bad tag", key: []byte("other key other key other key!!"), want: ErrBadTag},
		{name: "self", mod: func(f *Frame) { f.Node = "alpha" }, want: ErrSelf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alpha, bravo := pair(t, 0xb1)
			before := alpha.rx.Stats()
			runSteps(t, alpha, bravo, []step{tt})
			if n := alpha.rx.Stats()[Reason(tt.want)] - before[Reason(tt.want)]; n != 1 {
				t.Fatalf("Stats()[%q] grew by %d, want 1 (%v)", Reason(tt.want), n, alpha.rx.Stats())
			}
			if n := alpha.rx.Stats()["accepted"] - before["accepted"]; n != 0 {
				t.Fatalf("accepted grew by %d", n)
			}
		})
	}
	t.Run("error names the source", func(t *testing.T) {
		rx := NewReceiver(testKey, 42, "alpha", alphaBoot)
		_, err := rx.Accept([]byte("x"), testPeer)
		if want := fmt.Sprintf("(from %v)", testPeer); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not contain %q", err, want)
		}
	})
	t.Run("empty key", func(t *testing.T) {
		rx := NewReceiver(nil, 42, "alpha", alphaBoot)
		_, err := rx.Accept(newSim("bravo", 1, 1).signed(t), testPeer)
		if !errors.Is(err, ErrBadTag) {
			t.Fatalf("Accept: %v, want ErrBadTag", err)
		}
	})
}

func TestReceiverReplay(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"sequence", []step{
			{name: "next"},
			{name: "next again"},
			{name: "gap", mod: seqOnly(20)},
		}},
		{"duplicate is not replay", []step{
			{name: "udp copy", mod: seqOnly(10)},
			{name: "tcp copy", mod: seqOnly(10), want: ErrDuplicate},
			{name: "next", mod: seqOnly(11)},
			{name: "late tcp copy of 10", mod: seqOnly(10), want: ErrDuplicate},
			{name: "tcp copy of 11", mod: seqOnly(11), want: ErrDuplicate},
		}},
		{"stale: overtaken on the other path", []step{
			{name: "10", mod: seqOnly(10)},
			{name: "12 over udp, 11 lost on udp", mod: seqOnly(12)},
			{name: "11 late over tcp", mod: seqOnly(11), want: ErrStale},
			{name: "11 again", mod: seqOnly(11), want: ErrDuplicate},
			{name: "12 over tcp", mod: seqOnly(12), want: ErrDuplicate},
		}},
		{"replay beyond the window", []step{
			{name: "100", mod: seqOnly(100)},
			{name: "100+window", mod: seqOnly(100 + replayWindow)},
			{name: "100, just outside the window", mod: seqOnly(100), want: ErrReplay},
			{name: "101, the window's oldest, unseen", mod: seqOnly(101), want: ErrStale},
			{name: "jump", mod: seqOnly(100000)},
			{name: "100+window far behind", mod: seqOnly(100 + replayWindow), want: ErrReplay},
			{name: "0", mod: seqOnly(0), want: ErrReplay},
		}},
		{"window shift forgets nothing it should keep", []step{
			{name: "11", mod: seqOnly(11)},
			{name: "13", mod: seqOnly(13)},
			{name: "15", mod: seqOnly(15)},
			{name: "11 dup", mod: seqOnly(11), want: ErrDuplicate},
			{name: "13 dup", mod: seqOnly(13), want: ErrDuplicate},
			{name: "12 stale", mod: seqOnly(12), want: ErrStale},
			{name: "14 stale", mod: seqOnly(14), want: ErrStale},
			{name: "14 dup", mod: seqOnly(14), want: ErrDuplicate},
		}},
		{"a slot reused after the window wraps is fresh", []step{
			{name: "10", mod: seqOnly(10)},
			{name: "10+window", mod: seqOnly(10 + replayWindow)},
			{name: "11+window", mod: seqOnly(11 + replayWindow)},
			{name: "10+window dup", mod: seqOnly(10 + replayWindow), want: ErrDuplicate},
			{name: "12+window", mod: seqOnly(12 + replayWindow)},
		}},
		{"a frame that does not echo our challenge", []step{
			{name: "no session entries", mod: func(f *Frame) { f.Sessions = nil }, want: ErrNoSession},
			{name: "wrong echo", mod: func(f *Frame) { f.Sessions[0].Echo++ }, want: ErrNoSession},
			{name: "fine", mod: seqOnly(50)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alpha, bravo := pair(t, 0xb1)
			runSteps(t, alpha, bravo, tt.steps)
		})
	}
}

// TestReplayWindowTCPDelay is finding 3 of the security review: a genuine
// frame the TCP path delivered 450ms late, behind 90 newer UDP frames at
// the 5ms interval, must be stale, never a replay.
func TestReplayWindowTCPDelay(t *testing.T) {
	alpha, bravo := pair(t, 0xb1)
	var delayed []byte
	for i := range 200 {
		b := bravo.signed(t)
		if i == 100 {
			delayed = b // lost on UDP, held by TCP
			continue
		}
		if _, err := alpha.rx.Accept(b, testPeer); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := alpha.rx.Accept(delayed, testPeer); !errors.Is(err, ErrStale) {
		t.Fatalf("a frame 100 behind (500ms at 5ms): %v, want ErrStale", err)
	}
	if n := alpha.rx.Stats()["replay"]; n != 0 {
		t.Fatalf("%d genuine frames counted as replay", n)
	}
}

// TestReplayWindowCoversTCP checks the sizing rule: at the shortest
// interval the window spans longer than the TCP path can hold a frame.
func TestReplayWindowCoversTCP(t *testing.T) {
	o := TCPOptions{}.withDefaults()
	hold := time.Duration(o.QueueLen)*o.WriteTimeout + o.UserTimeout + time.Second
	if hold > MaxTCPHold {
		t.Fatalf("TCP defaults hold a frame up to %s, MaxTCPHold says %s", hold, MaxTCPHold)
	}
	const minInterval = 5 * time.Millisecond // config's lower bound
	if span := replayWindow * minInterval; span < 2*MaxTCPHold {
		t.Fatalf("window spans %s at %s, want at least twice MaxTCPHold (%s)", span, minInterval, MaxTCPHold)
	}
}

// recording returns n signed frames of s that alpha accepts, the last one
// a Released frame naming alpha.
func recording(t *testing.T, alpha, s *sim, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		f := s.next()
		f.State = 2 // MASTER
		if i == n-1 {
			f.Kind, f.Target = election.Released, "alpha"
		}
		b := mustSign(t, f, testKey)
		if _, err := alpha.rx.Accept(b, testPeer); err != nil {
			t.Fatalf("recording frame %d: %v", i, err)
		}
		_, _ = s.rx.Accept(alpha.signed(t), testPeer)
		out = append(out, b)
	}
	return out
}

func offer(t *testing.T, rx *Receiver, frames [][]byte) (accepted int, reasons map[string]int) {
	t.Helper()
	reasons = map[string]int{}
	for _, b := range frames {
		if _, err := rx.Accept(b, testPeer); err == nil {
			accepted++
		} else {
			reasons[Reason(err)]++
		}
	}
	return accepted, reasons
}

// Attack (a): the receiver restarts and recorded frames reach it first.
func TestSessionReceiverRestart(t *testing.T) {
	alpha, bravo := pair(t, 0xb1)
	rec := recording(t, alpha, bravo, 20)

	alpha = newSim("alpha", 0xa2, 9_000_000_000) // restarted: new boot, empty memory
	if n, why := offer(t, alpha.rx, rec); n != 0 {
		t.Fatalf("restarted receiver accepted %d recorded frames (%v)", n, why)
	}
	// The live peer completes a session; the recording still never counts.
	rounds := handshake(t, alpha, bravo)
	t.Logf("session completed in %d rounds", rounds)
	if rounds > 2 {
		t.Errorf("handshake took %d rounds, want at most 2 (one round trip plus one interval)", rounds)
	}
	if n, why := offer(t, alpha.rx, rec); n != 0 {
		t.Fatalf("accepted %d recorded frames after the session (%v)", n, why)
	}
	if _, err := alpha.rx.Accept(bravo.signed(t), testPeer); err != nil {
		t.Fatalf("live frame after the replays: %v", err)
	}
}

// Attack (b): the sender restarts; its earlier boot's frames are replayed
// to a receiver that did not.
func TestSessionSenderRestart(t *testing.T) {
	alpha, bravo := pair(t, 0xb1)
	rec := recording(t, alpha, bravo, 20)
	// Frames of bravo's first boot that alpha never saw (sent while the
	// path to alpha was cut) are not fresh either once bravo restarts.
	unseen := [][]byte{bravo.signed(t), bravo.signed(t)}

	bravo2 := newSim("bravo", 0xb2, bravo.sent+1)
	// Before bravo2's session completes, bravo1's session still works
	// (the established session is not disturbed by a tentative one).
	if _, err := alpha.rx.Accept(bravo2.signed(t), testPeer); !errors.Is(err, ErrNoSession) {
		t.Fatalf("first frame of a new boot: %v, want ErrNoSession", err)
	}
	handshake(t, alpha, bravo2)
	if n, why := offer(t, alpha.rx, append(rec, unseen...)); n != 0 {
		t.Fatalf("accepted %d frames of the sender's earlier boot (%v)", n, why)
	}
	if _, err := alpha.rx.Accept(bravo2.signed(t), testPeer); err != nil {
		t.Fatalf("live frame: %v", err)
	}
}

// Attack (c): a steady stream of frames from several earlier boots,
// interleaved with the live peer's frames, changes nothing: every live
// frame counts, and a restart of the live peer still completes its
// session as fast as without the stream.
func TestSessionChurn(t *testing.T) {
	var rec [][]byte
	var bravo *sim
	for boot := uint64(1); boot <= 3; boot++ { // three earlier lives of alpha
		var alpha *sim
		alpha, bravo = pair(t, 0xb0+boot)
		rec = append(rec, recording(t, alpha, bravo, 10)...)
	}
	alpha := newSim("alpha", alphaBoot, 1)
	live := newSim("bravo", 0xbb, bravo.sent+1)
	interleave := func() {
		for i, b := range rec {
			if _, err := alpha.rx.Accept(b, testPeer); err == nil {
				t.Fatalf("recorded frame %d accepted", i)
			}
		}
	}
	interleave()
	for round := 1; !alpha.rx.Established("bravo") || !live.rx.Established("alpha"); round++ {
		if round > 2 {
			t.Fatalf("no session after %d rounds under a replay stream", round-1)
		}
		_, _ = live.rx.Accept(alpha.signed(t), testPeer)
		interleave()
		_, _ = alpha.rx.Accept(live.signed(t), testPeer)
		interleave()
	}
	for i := range 50 {
		interleave()
		if _, err := alpha.rx.Accept(live.signed(t), testPeer); err != nil {
			t.Fatalf("live frame %d under a replay stream: %v", i, err)
		}
		_, _ = live.rx.Accept(alpha.signed(t), testPeer)
	}
}

func TestReceiverStats(t *testing.T) {
	alpha, bravo := pair(t, 1)
	before := alpha.rx.Stats()
	runSteps(t, alpha, bravo, []step{
		{name: "a", mod: seqOnly(10)},
		{name: "b", mod: seqOnly(10), want: ErrDuplicate},
		{name: "c", mod: seqOnly(11)},
		{name: "d", key: []byte("nope nope nope nope"), want: ErrBadTag},
	})
	st := alpha.rx.Stats()
	if st["accepted"]-before["accepted"] != 2 || st["duplicate"] != 1 || st["bad_tag"] != 1 || st["replay"] != 0 {
		t.Fatalf("Stats = %v", st)
	}
	for _, r := range reasons {
		if _, ok := st[r.name]; !ok {
			t.Errorf("Stats lacks %q", r.name)
		}
	}
}

// TestReceiverConcurrent feeds the same frames from two goroutines, as the
// UDP and TCP readers do: each frame is accepted exactly once (and -race
// checks the locking).
func TestReceiverConcurrent(t *testing.T) {
	alpha, bravo := pair(t, 1)
	const n = 500
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = bravo.signed(t)
	}
	before := alpha.rx.Stats()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for _, b := range frames {
				_, _ = alpha.rx.Accept(b, testPeer)
				_ = alpha.rx.Sessions(nil)
			}
		})
	}
	wg.Wait()
	st := alpha.rx.Stats()
	if st["accepted"]-before["accepted"] != n || st["duplicate"]+st["stale"]-before["duplicate"]-before["stale"] != n {
		t.Fatalf("Stats = %v", st)
	}
}
