package daemon

import (
	"net/netip"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
)

// seenFrame is one authentic frame from a peer, as the tracker needs it:
// the receiver has already checked its tag and replay window.
type seenFrame struct {
	path heartbeat.Path
	from netip.AddrPort
	at   time.Time // local arrival
	sent time.Time // the peer's clock at sending
	boot uint64
	seq  uint64
	dup  bool // a second copy, by the other path: it only says this path works
}

// trackVerdict is what the tracker makes of a frame.
type trackVerdict struct {
	late  bool          // it spent longer than dead_after in transit: do not act on it
	shift time.Duration // non-zero: the peer's clock was stepped by this much and its new offset was adopted
	lost  uint64        // frames newly found missing: a gap in the sequence before this one
}

// peerTrack follows one peer's authentic frames in time: per-path
// freshness, the longest silence, sequence gaps (lost frames) and transit
// delay against the fastest frame seen (late frames, clock steps). It is
// pure: time comes in with the frames, and it is owned by the loop.
type peerTrack struct {
	addr netip.AddrPort // where its last frame came from

	last     [3]time.Time // by heartbeat.Path: last authentic frame
	received [3]uint64    // by heartbeat.Path: authentic frames, copies included

	lastAny time.Time     // last frame (first copies only)
	maxGap  time.Duration // longest wait between two frames

	boot, seq uint64 // the last frame's; a new boot restarts the sequence
	lost      uint64 // frames never received on any path

	// The delay of a frame is measured against the fastest frame seen
	// from this peer (minTransit = clock offset + best delay), so the two
	// hosts' clocks need not agree, only run at the same rate.
	offsetKnown bool
	minTransit  time.Duration
	lateRun     int       // late frames in a row
	lateSince   time.Time // arrival of the first of them
}

// lateRunToAdopt and lateSpread decide when a run of late frames is a
// stepped clock rather than a backlog: at least this many in a row,
// arriving spread over at least lateSpread intervals (a backlog flushed
// after an outage arrives as one burst).
const (
	lateRunToAdopt = 3
	lateSpread     = 2
)

// observe feeds one frame; deadAfter and interval are the cluster's
// timing.
func (p *peerTrack) observe(f seenFrame, deadAfter, interval time.Duration) trackVerdict {
	p.addr = f.from
	if int(f.path) < len(p.last) {
		if f.at.After(p.last[f.path]) {
			p.last[f.path] = f.at
		}
		p.received[f.path]++
	}
	if f.dup {
		return trackVerdict{}
	}
	if !p.lastAny.IsZero() && f.at.Sub(p.lastAny) > p.maxGap {
		p.maxGap = f.at.Sub(p.lastAny)
	}
	if f.at.After(p.lastAny) {
		p.lastAny = f.at
	}
	var v trackVerdict
	// Sequence: a late frame still arrived, so it is not lost.
	switch {
	case f.boot != p.boot:
		p.boot, p.seq = f.boot, f.seq
	case f.seq > p.seq:
		v.lost = f.seq - p.seq - 1
		p.lost += v.lost
		p.seq = f.seq
	}
	// Transit: a frame that spent longer than dead_after on its way (a TCP
	// backlog flushed after an outage) says nothing about the peer now.
	transit := f.at.Sub(f.sent)
	switch {
	case !p.offsetKnown || transit < p.minTransit:
		p.offsetKnown, p.minTransit, p.lateRun = true, transit, 0
	case transit-p.minTransit > deadAfter:
		if p.lateRun == 0 {
			p.lateSince = f.at
		}
		p.lateRun++
		if p.lateRun < lateRunToAdopt || f.at.Sub(p.lateSince) < lateSpread*interval {
			v.late = true
			return v
		}
		v.shift = transit - p.minTransit
		p.minTransit, p.lateRun = transit, 0
	default:
		p.lateRun = 0
	}
	return v
}
