package heartbeat

import (
	"errors"
	"fmt"
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

func runSteps(t *testing.T, rx *Receiver, steps []step) {
	t.Helper()
	for i, s := range steps {
		f := testFrame()
		f.Node = "bravo"
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
		got, err := rx.Accept(b, testPeer)
		if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Fatalf("step %d %q: Accept: %v, want %v", i, s.name, err, s.want)
		}
		if err == nil && !sameFrame(got, f) {
			t.Fatalf("step %d %q: got %+v, want %+v", i, s.name, got, f)
		}
	}
}

func TestReceiverRejects(t *testing.T) {
	tests := []step{
		{name: "truncated", raw: func(b []byte) []byte { return b[:10] }, want: ErrTruncated},
		{name: "bad magic", raw: func(b []byte) []byte { b[1] = 'X'; return b }, want: ErrBadMagic},
		{name: "version", raw: func(b []byte) []byte { b[2] = 9; return b }, want: ErrVersion},
		{name: "malformed", raw: func(b []byte) []byte { b[3] = 0; return b }, want: ErrMalformed},
		{name: "cluster", mod: func(f *Frame) { f.Cluster = 43 }, want: ErrCluster},
		{name: "cluster before tag", mod: func(f *Frame) { f.Cluster = 43 }, key: []byte("other key other key other key!!"), want: ErrCluster},
		{name: "bad tag", key: []byte("other key other key other key!!"), want: ErrBadTag},
		{name: "self", mod: func(f *Frame) { f.Node = "alpha" }, want: ErrSelf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rx := NewReceiver(testKey, 42, "alpha")
			runSteps(t, rx, []step{tt})
			if n := rx.Stats()[Reason(tt.want)]; n != 1 {
				t.Fatalf("Stats()[%q] = %d, want 1 (%v)", Reason(tt.want), n, rx.Stats())
			}
			if n := rx.Stats()["accepted"]; n != 0 {
				t.Fatalf("accepted = %d", n)
			}
		})
	}
	t.Run("error names the source", func(t *testing.T) {
		rx := NewReceiver(testKey, 42, "alpha")
		_, err := rx.Accept([]byte("x"), testPeer)
		if want := fmt.Sprintf("(from %v)", testPeer); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not contain %q", err, want)
		}
	})
	t.Run("empty key", func(t *testing.T) {
		rx := NewReceiver(nil, 42, "alpha")
		runSteps(t, rx, []step{{name: "any", want: ErrBadTag}})
	})
}

func TestReceiverReplay(t *testing.T) {
	const b1, b2, b3 = 0x1111, 0x2222, 0x3333
	tests := []struct {
		name  string
		steps []step
	}{
		{"sequence", []step{
			{name: "first", mod: seqAt(b1, 10, 1000)},
			{name: "next", mod: seqAt(b1, 11, 1100)},
			{name: "gap", mod: seqAt(b1, 20, 2000)},
		}},
		{"duplicate is not replay", []step{
			{name: "udp copy", mod: seqAt(b1, 10, 1000)},
			{name: "tcp copy", mod: seqAt(b1, 10, 1000), want: ErrDuplicate},
			{name: "next", mod: seqAt(b1, 11, 1100)},
			{name: "late tcp copy of 10", mod: seqAt(b1, 10, 1000), want: ErrDuplicate},
			{name: "tcp copy of 11", mod: seqAt(b1, 11, 1100), want: ErrDuplicate},
		}},
		{"stale: overtaken on the other path", []step{
			{name: "10", mod: seqAt(b1, 10, 1000)},
			{name: "12 over udp, 11 lost on udp", mod: seqAt(b1, 12, 1200)},
			{name: "11 late over tcp", mod: seqAt(b1, 11, 1100), want: ErrStale},
			{name: "11 again", mod: seqAt(b1, 11, 1100), want: ErrDuplicate},
			{name: "12 over tcp", mod: seqAt(b1, 12, 1200), want: ErrDuplicate},
		}},
		{"replay beyond the window", []step{
			{name: "100", mod: seqAt(b1, 100, 1000)},
			{name: "164", mod: seqAt(b1, 100+replayWindow, 2000)},
			{name: "100, just outside the window", mod: seqAt(b1, 100, 1000), want: ErrReplay},
			{name: "101, the window's oldest, unseen", mod: seqAt(b1, 101, 1000), want: ErrStale},
			{name: "jump", mod: seqAt(b1, 1000, 3000)},
			{name: "164 far behind", mod: seqAt(b1, 100+replayWindow, 2000), want: ErrReplay},
			{name: "0", mod: seqAt(b1, 0, 1), want: ErrReplay},
		}},
		{"window shift forgets nothing it should keep", []step{
			{name: "1", mod: seqAt(b1, 1, 1)},
			{name: "3", mod: seqAt(b1, 3, 3)},
			{name: "5", mod: seqAt(b1, 5, 5)},
			{name: "1 dup", mod: seqAt(b1, 1, 1), want: ErrDuplicate},
			{name: "3 dup", mod: seqAt(b1, 3, 3), want: ErrDuplicate},
			{name: "2 stale", mod: seqAt(b1, 2, 2), want: ErrStale},
			{name: "4 stale", mod: seqAt(b1, 4, 4), want: ErrStale},
			{name: "4 dup", mod: seqAt(b1, 4, 4), want: ErrDuplicate},
		}},
		{"new boot", []step{
			{name: "old boot", mod: seqAt(b1, 500, 1000)},
			{name: "restart, seq from 1, clock later", mod: seqAt(b2, 1, 2000)},
			{name: "next", mod: seqAt(b2, 2, 2100)},
			{name: "old boot again, even newer-looking", mod: seqAt(b1, 501, 9000), want: ErrReplay},
			{name: "still fine", mod: seqAt(b2, 3, 2200)},
		}},
		{"new boot must be later by the sender's clock", []step{
			{name: "boot 1", mod: seqAt(b1, 5, 1000)},
			{name: "captured frame of an unseen boot", mod: seqAt(b2, 9, 999), want: ErrReplay},
			{name: "same instant", mod: seqAt(b2, 9, 1000), want: ErrReplay},
			{name: "boot 1 goes on", mod: seqAt(b1, 6, 1100)},
		}},
		{"the last accepted time counts, not the boot's first", []step{
			{name: "boot 1 starts", mod: seqAt(b1, 1, 1000)},
			{name: "boot 1 runs on", mod: seqAt(b1, 2, 5000)},
			{name: "boot 2 from before that", mod: seqAt(b2, 1, 3000), want: ErrReplay},
		}},
		{"retired boots", []step{
			{name: "b1", mod: seqAt(b1, 1, 1000)},
			{name: "b2", mod: seqAt(b2, 1, 2000)},
			{name: "b3", mod: seqAt(b3, 1, 3000)},
			{name: "b1 replayed with a forged-looking time", mod: seqAt(b1, 2, 9000), want: ErrReplay},
			{name: "b2 replayed", mod: seqAt(b2, 2, 9000), want: ErrReplay},
			{name: "b3 fine", mod: seqAt(b3, 2, 3100)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, NewReceiver(testKey, 42, "alpha"), tt.steps)
		})
	}
}

func TestReceiverRetiredRing(t *testing.T) {
	rx := NewReceiver(testKey, 42, "alpha")
	var steps []step
	for i := range uint64(maxRetiredBoots + 2) {
		steps = append(steps, step{name: fmt.Sprint("boot ", i), mod: seqAt(0x100+i, 1, int64(1000*(i+1)))})
	}
	runSteps(t, rx, steps)
	w := rx.nodes["bravo"]
	if w.nRetired != maxRetiredBoots {
		t.Fatalf("nRetired = %d, want %d", w.nRetired, maxRetiredBoots)
	}
	// The newest retired boots are remembered, the oldest forgotten...
	for i := uint64(2); i <= maxRetiredBoots; i++ {
		if !w.isRetired(0x100 + i) {
			t.Errorf("boot %#x forgotten", 0x100+i)
		}
	}
	if w.isRetired(0x100) {
		t.Errorf("oldest boot still remembered")
	}
	// ...and a forgotten one is still refused by its clock.
	runSteps(t, rx, []step{{name: "forgotten boot", mod: seqAt(0x100, 2, 1500), want: ErrReplay}})
}

func TestReceiverStats(t *testing.T) {
	rx := NewReceiver(testKey, 42, "alpha")
	runSteps(t, rx, []step{
		{name: "a", mod: seqAt(1, 1, 1)},
		{name: "b", mod: seqAt(1, 1, 1), want: ErrDuplicate},
		{name: "c", mod: seqAt(1, 2, 2)},
		{name: "d", key: []byte("nope nope nope nope"), want: ErrBadTag},
	})
	st := rx.Stats()
	if st["accepted"] != 2 || st["duplicate"] != 1 || st["bad_tag"] != 1 || st["replay"] != 0 {
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
	rx := NewReceiver(testKey, 42, "alpha")
	const n = 500
	frames := make([][]byte, n)
	for i := range frames {
		f := testFrame()
		f.Node = "bravo"
		f.Seq = uint64(i + 1)
		frames[i] = mustSign(t, f, testKey)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for _, b := range frames {
				_, _ = rx.Accept(b, testPeer)
				_ = rx.Stats()
			}
		})
	}
	wg.Wait()
	// The first copy of a frame always finds every earlier one processed
	// by its own goroutine and no later one by the other, so it is
	// accepted; the second is a duplicate (or a replay if the scheduler let
	// one goroutine run more than the window ahead).
	st := rx.Stats()
	if st["accepted"] != n || st["duplicate"]+st["replay"] != n {
		t.Fatalf("Stats = %v", st)
	}
}
