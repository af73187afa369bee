package daemon

import (
	"time"

	"github.com/hbdproject/hbd/vip"
)

// The loop has one timer. Everything timed is a deadline that the loop
// asks for (the core's NextDeadline, the announcement burst, the end of a
// hand-off, the systemd watchdog), and the timer is armed for the
// earliest; when it fires, only what is due runs.

// burstSchedule is when the rounds of an announcement burst go out,
// counted from its start.
var burstSchedule = vip.BurstSchedule()

// burst is an announcement burst in progress.
type burst struct {
	start time.Time
	round int // the next round to send; len(burstSchedule) when none is pending
}

// begin starts a burst at start of which the first sent rounds already
// went out.
func (b *burst) begin(start time.Time, sent int) { b.start, b.round = start, sent }

// stop forgets the pending rounds.
func (b *burst) stop() { b.round = len(burstSchedule) }

// pending reports whether a round is still to come.
func (b *burst) pending() bool { return !b.start.IsZero() && b.round < len(burstSchedule) }

// deadline is when the next round is due; zero if none is pending.
func (b *burst) deadline() time.Time {
	if !b.pending() {
		return time.Time{}
	}
	return b.start.Add(burstSchedule[b.round])
}

// due reports whether a round is due at now and moves past every round
// that is: rounds that fell due together (the loop was busy) go out as one.
func (b *burst) due(now time.Time) bool {
	n := 0
	for b.pending() && !now.Before(b.deadline()) {
		b.round++
		n++
	}
	return n > 0
}

// earliest returns the earliest of the non-zero times, or zero.
func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}
