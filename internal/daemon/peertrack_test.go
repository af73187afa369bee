package daemon

import (
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
)

func TestPeerTrack(t *testing.T) {
	const (
		interval  = 10 * time.Millisecond
		deadAfter = 100 * time.Millisecond
		offset    = 5 * time.Second // the peer's clock runs this far behind ours
	)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// frame is a frame sent at sentMs on the peer's clock (plus offset)
	// that arrived at atMs on ours.
	type frame struct {
		atMs, sentMs int
		seq          uint64
		boot         uint64 // 0: boot 1
		path         heartbeat.Path
		dup          bool
	}
	type want struct {
		late  bool
		shift time.Duration
		lost  uint64
	}
	for _, tc := range []struct {
		name   string
		frames []frame
		want   []want // one per frame
		lost   uint64 // total at the end
		maxGap time.Duration
	}{
		{
			name:   "on time, in order",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1}, {atMs: 11, sentMs: 10, seq: 2}, {atMs: 21, sentMs: 20, seq: 3}},
			want:   []want{{}, {}, {}},
			maxGap: 10 * time.Millisecond,
		},
		{
			name:   "a gap counts as lost",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1}, {atMs: 41, sentMs: 40, seq: 5}, {atMs: 51, sentMs: 50, seq: 6}},
			want:   []want{{}, {lost: 3}, {}},
			lost:   3,
			maxGap: 40 * time.Millisecond,
		},
		{
			name: "a restarted peer starts a new sequence without loss",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 100}, {atMs: 501, sentMs: 500, seq: 1, boot: 2},
				{atMs: 511, sentMs: 510, seq: 2, boot: 2}},
			want:   []want{{}, {}, {}},
			maxGap: 500 * time.Millisecond,
		},
		{
			name: "a copy on the other path only says the path works",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1}, {atMs: 2, sentMs: 0, seq: 1, path: heartbeat.PathTCP, dup: true},
				{atMs: 11, sentMs: 10, seq: 2}},
			want:   []want{{}, {}, {}},
			maxGap: 10 * time.Millisecond,
		},
		{
			name: "a backlog flushed at once is late, every frame of it",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1}, {atMs: 11, sentMs: 10, seq: 2},
				// an outage: frames 3..6 queued on TCP and delivered in one burst 300 ms later
				{atMs: 320, sentMs: 20, seq: 3}, {atMs: 320, sentMs: 30, seq: 4}, {atMs: 321, sentMs: 40, seq: 5},
				{atMs: 321, sentMs: 50, seq: 6},
				// then live frames again
				{atMs: 331, sentMs: 330, seq: 33}},
			want: []want{{}, {}, {late: true}, {late: true}, {late: true}, {late: true}, {lost: 26}},
			lost: 26,
			// 11 → 320 ms
			maxGap: 309 * time.Millisecond,
		},
		{
			name: "just within dead_after is on time",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1}, {atMs: 111, sentMs: 10, seq: 2},
				{atMs: 112, sentMs: 9, seq: 3}},
			want:   []want{{}, {}, {late: true}},
			maxGap: 110 * time.Millisecond,
		},
		{
			name: "the peer's clock stepped back: late frames spaced like live ones adopt the new offset",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1}, {atMs: 11, sentMs: 10, seq: 2},
				// the peer's clock goes back 1 s: every frame now looks 1 s late
				{atMs: 21, sentMs: -980, seq: 3}, {atMs: 31, sentMs: -970, seq: 4}, {atMs: 41, sentMs: -960, seq: 5},
				{atMs: 51, sentMs: -950, seq: 6}},
			want: []want{{}, {}, {late: true}, {late: true}, {shift: time.Second}, {}},
			// 3 in a row, the first at 21 and the third at 41: 20 ms = 2 intervals
			maxGap: 10 * time.Millisecond,
		},
		{
			name: "two late frames are not a clock step, however far apart",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1},
				{atMs: 300, sentMs: 10, seq: 2}, {atMs: 400, sentMs: 20, seq: 3}, {atMs: 500, sentMs: 30, seq: 4}},
			want:   []want{{}, {late: true}, {late: true}, {shift: 469 * time.Millisecond}},
			maxGap: 299 * time.Millisecond,
		},
		{
			name: "the peer's clock stepped forward: adopted at once",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1}, {atMs: 11, sentMs: 1010, seq: 2},
				{atMs: 21, sentMs: 1020, seq: 3}, {atMs: 31, sentMs: 20, seq: 4}},
			// after the step the old offset makes frame 4 look 1 s late
			want:   []want{{}, {}, {}, {late: true}},
			maxGap: 10 * time.Millisecond,
		},
		{
			name: "an on-time frame breaks a late run",
			frames: []frame{{atMs: 1, sentMs: 0, seq: 1},
				{atMs: 300, sentMs: 10, seq: 2}, {atMs: 310, sentMs: 20, seq: 3},
				{atMs: 311, sentMs: 310, seq: 4},
				{atMs: 600, sentMs: 320, seq: 5}, {atMs: 610, sentMs: 330, seq: 6}, {atMs: 620, sentMs: 340, seq: 7}},
			want:   []want{{}, {late: true}, {late: true}, {}, {late: true}, {late: true}, {shift: 279 * time.Millisecond}}, // 280 ms transit − the 1 ms best
			maxGap: 299 * time.Millisecond,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p peerTrack
			for i, fr := range tc.frames {
				path, boot := fr.path, fr.boot
				if path == 0 {
					path = heartbeat.PathUDP
				}
				if boot == 0 {
					boot = 1
				}
				got := p.observe(seenFrame{
					path: path, at: t0.Add(time.Duration(fr.atMs) * time.Millisecond),
					sent: t0.Add(time.Duration(fr.sentMs)*time.Millisecond - offset),
					boot: boot, seq: fr.seq, dup: fr.dup,
				}, deadAfter, interval)
				w := tc.want[i]
				if got != (trackVerdict{late: w.late, shift: w.shift, lost: w.lost}) {
					t.Errorf("frame %d (seq %d at %d ms): %+v, want %+v", i, fr.seq, fr.atMs, got, w)
				}
			}
			if p.lost != tc.lost {
				t.Errorf("lost %d, want %d", p.lost, tc.lost)
			}
			if p.maxGap != tc.maxGap {
				t.Errorf("max gap %s, want %s", p.maxGap, tc.maxGap)
			}
		})
	}
}

func TestPeerTrackPaths(t *testing.T) {
	var p peerTrack
	t0 := time.Now()
	p.observe(seenFrame{path: heartbeat.PathUDP, at: t0, sent: t0, boot: 1, seq: 1}, time.Second, time.Millisecond)
	p.observe(seenFrame{path: heartbeat.PathTCP, at: t0.Add(time.Millisecond), sent: t0, boot: 1, seq: 1, dup: true}, time.Second, time.Millisecond)
	// a copy that arrives out of order does not move the path's clock back
	p.observe(seenFrame{path: heartbeat.PathUDP, at: t0.Add(-time.Millisecond), sent: t0, boot: 1, seq: 2}, time.Second, time.Millisecond)
	if !p.last[heartbeat.PathUDP].Equal(t0) || p.received[heartbeat.PathUDP] != 2 || p.received[heartbeat.PathTCP] != 1 ||
		!p.last[heartbeat.PathTCP].Equal(t0.Add(time.Millisecond)) {
		t.Errorf("paths: last %v, received %v", p.last, p.received)
	}
}
