package daemon

import (
	"maps"
	"slices"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/health"
)

// drainMask holds back the check failures that hbd's own drain of the local
// app causes. A drained app answers its liveness check with 503 by design;
// when hbd drained it itself — for the hand-off window after a release, or
// during `hbd handover` — counting that failure would put a node that just
// handed the VIP over into FAULT for a second or more, so it would not be a
// ready standby: a handover back would be refused, and a failure of the
// new master in that second would fall to the degraded rule. A check that
// turns to failing while the drain lasts is therefore held back until the
// app had time to pass it again after the undrain (settle); only if it
// still fails then does it count. Loop-owned; no clock of its own.
type drainMask struct {
	draining bool
	until    time.Time                // after a drain: when held results count
	held     map[string]health.Result // the last failing result per check, held back
}

// set tells the mask whether hbd is draining the app now. When a drain
// ends, held results wait settle more.
func (m *drainMask) set(now time.Time, draining bool, settle time.Duration) {
	switch {
	case draining:
		m.draining, m.until = true, time.Time{}
	case m.draining:
		m.draining, m.until = false, now.Add(settle)
	}
}

// hold reports whether r is held back: a failing result during a drain or
// its settle time. A passing result releases what was held for its check.
func (m *drainMask) hold(now time.Time, r health.Result) bool {
	if r.Healthy {
		delete(m.held, r.Name)
		return false
	}
	if !m.draining && (m.until.IsZero() || !now.Before(m.until)) {
		return false
	}
	if m.held == nil {
		m.held = map[string]health.Result{}
	}
	m.held[r.Name] = r
	return true
}

// deadline is when held results become due; zero if none are waiting.
func (m *drainMask) deadline() time.Time {
	if m.draining || len(m.held) == 0 {
		return time.Time{}
	}
	return m.until
}

// due returns, once settle has passed, the results still held (in name
// order) and forgets them.
func (m *drainMask) due(now time.Time) []health.Result {
	if d := m.deadline(); d.IsZero() || now.Before(d) {
		return nil
	}
	out := make([]health.Result, 0, len(m.held))
	for _, name := range slices.Sorted(maps.Keys(m.held)) {
		out = append(out, m.held[name])
	}
	m.held, m.until = nil, time.Time{}
	return out
}

// drainSettle is how long after an undrain a check may take to pass again:
// rise passes of the slowest check, one more interval, and its timeout.
func drainSettle(tracks []config.Track) time.Duration {
	var d time.Duration
	for _, t := range tracks {
		d = max(d, time.Duration(t.Rise+1)*t.Interval.D()+t.Timeout.D())
	}
	return d
}
