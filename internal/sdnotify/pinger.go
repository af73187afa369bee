package sdnotify

import "time"

// Pinger sends WATCHDOG=1 at most every half watchdog interval. The daemon's
// main loop calls Ping on every iteration and wakes up no later than Next,
// so the pings stop exactly when the loop stops turning: systemd then kills
// and restarts a hung daemon. Never drive a Pinger from a ticker goroutine
// of its own: that would keep pinging for a dead loop.
//
// A Pinger is not safe for concurrent use; the loop owns it. The zero value
// and a nil *Pinger are disabled: Ping does nothing and Next is the zero
// time.
type Pinger struct {
	every time.Duration // half the watchdog interval; 0 = disabled
	last  time.Time     // when the last ping was sent; zero = never
	send  func() (bool, error)
}

// NewPinger returns a Pinger for the watchdog systemd configured for this
// process, or a disabled one when there is none.
func NewPinger() *Pinger {
	d, ok := WatchdogInterval()
	if !ok {
		return &Pinger{}
	}
	return NewPingerFunc(d, Watchdog)
}

// NewPingerFunc returns a Pinger for a watchdog interval of timeout that
// pings by calling send. Tests pass a fake send.
func NewPingerFunc(timeout time.Duration, send func() (bool, error)) *Pinger {
	if timeout <= 0 || send == nil {
		return &Pinger{}
	}
	return &Pinger{every: timeout / 2, send: send}
}

// Enabled reports whether the watchdog is on.
func (p *Pinger) Enabled() bool { return p != nil && p.every > 0 }

// Every returns the ping period: half the watchdog interval, 0 when off.
func (p *Pinger) Every() time.Duration {
	if p == nil {
		return 0
	}
	return p.every
}

// Due reports whether a ping is due at now. It is a pure timing decision.
func (p *Pinger) Due(now time.Time) bool {
	return p.Enabled() && (p.last.IsZero() || !now.Before(p.last.Add(p.every)))
}

// Ping sends WATCHDOG=1 if one is due at now, and reports whether it did.
// A failed send is retried on the next call.
func (p *Pinger) Ping(now time.Time) (bool, error) {
	if !p.Due(now) {
		return false, nil
	}
	sent, err := p.send()
	if err != nil {
		return false, err
	}
	p.last = now
	return sent, nil
}

// Next returns when the loop must call Ping again at the latest, given the
// current time now: now itself when a ping is due, the zero time when the
// watchdog is off. The loop's timer should fire no later.
func (p *Pinger) Next(now time.Time) time.Time {
	switch {
	case !p.Enabled():
		return time.Time{}
	case p.Due(now):
		return now
	}
	return p.last.Add(p.every)
}
