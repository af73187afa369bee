package lease

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults and fixed bounds of the lease timing. See the package comment for
// the inequalities they enter.
const (
	// DefaultDrift is ρ, the largest rate error of any one clock involved
	// (the holder's monotonic clock and kernel timer, the standby's clock,
	// and the Redis server's clock) against true time: 1%, far above the
	// 100 ppm or so of a real crystal and the 500 ppm NTP may slew by.
	DefaultDrift = 0.01

	// MaxDrift bounds Timing.Drift: beyond it the lease is not worth having.
	MaxDrift = 0.1

	// DefaultMargin is subtracted from every lease belief on top of the
	// drift allowance. It covers Redis's millisecond expiry resolution and
	// the time between taking Sent and the request leaving the host.
	DefaultMargin = 10 * time.Millisecond

	// KernelSlack is how long after its valid lifetime (valid_lft) runs out
	// the kernel may still hold an address. Linux checks IPv4 lifetimes in
	// check_lifetime (net/ipv4/devinet.c) and IPv6 ones in
	// addrconf_verify_rtnl (net/ipv6/addrconf.c); both reschedule themselves
	// no sooner than ADDRCONF_TIMER_FUZZ_MAX (HZ, one second) ahead and round
	// the expiry up by up to ADDRCONF_TIMER_FUZZ (HZ/4), so an address can
	// outlive its lifetime by up to about one second. We measured 3–203 ms
	// for a lone address on lo (lifetimes 1 s and 2 s, twelve runs); the
	// one-second case needs another address to expire just before it. The
	// extra half second is for the workqueue to run on a loaded host.
	KernelSlack = 1500 * time.Millisecond

	// ttlRound is the step DefaultTTL rounds up to.
	ttlRound = 100 * time.Millisecond
)

// Timing is the lease timing of one cluster. Every node of the cluster must
// use the same values: the inequalities tie one node's belief to another's
// claim. Zero fields take the defaults given; Validate checks the result.
type Timing struct {
	// Interval is the heartbeat interval. Required.
	Interval time.Duration
	// DeadAfter is the heartbeat dead_after. Required, ≥ Interval.
	DeadAfter time.Duration
	// Lifetime is the VIP's kernel valid lifetime, whole seconds, ≥ 1 s.
	// Required.
	Lifetime time.Duration
	// TTL is the lease's time to live in Redis, whole milliseconds.
	// Default DefaultTTL(Interval, DeadAfter, Lifetime).
	TTL time.Duration
	// Renew is how often the holder renews the lease. Default Interval.
	Renew time.Duration
	// Delay is δ, the budget of one witness call, request and reply: a
	// call that has no answer after Delay fails with ErrUnreachable.
	// Default DeadAfter.
	Delay time.Duration
	// Drift is ρ, the largest clock-rate error of any one clock against
	// true time, as a fraction. Default DefaultDrift (1%); below MaxDrift.
	Drift float64
	// Margin is subtracted from every lease belief on top of the drift
	// allowance. Default DefaultMargin (10 ms); must not be negative.
	Margin time.Duration
}

// WithDefaults returns t with its zero fields set to their defaults.
func (t Timing) WithDefaults() Timing {
	if t.Renew == 0 {
		t.Renew = t.Interval
	}
	if t.Delay == 0 {
		t.Delay = t.DeadAfter
	}
	if t.Drift == 0 {
		t.Drift = DefaultDrift
	}
	if t.Margin == 0 {
		t.Margin = DefaultMargin
	}
	if t.TTL == 0 {
		t.TTL = minTTL(t)
	}
	return t
}

// Belief is how long after Sent a won grant lets its holder believe it
// holds the lease: TTL×(1−ρ)/(1+ρ) − Margin (inequality (a)). t must have
// its defaults set.
func (t Timing) Belief() time.Duration {
	return time.Duration(float64(t.TTL)*shrink(t.Drift)) - t.Margin
}

// ValidUntil is the end of the holder's belief for a grant whose request
// was sent at sent (a monotonic reading taken just before sending).
func (t Timing) ValidUntil(sent time.Time) time.Time {
	return sent.Add(t.Belief())
}

// MayRefreshVIP reports whether a lease holder whose belief ends at
// validUntil may renew its VIP's kernel lifetime (or claim the VIP) at now
// (inequality (b)): only while now + lifetime + KernelSlack ≤ validUntil,
// so that if the holder freezes right after the refresh, the kernel drops
// the VIP before Redis can let the lease go to anyone else. now and
// validUntil are readings of the same monotonic clock.
func MayRefreshVIP(now, validUntil time.Time, lifetime time.Duration) bool {
	return !now.Add(lifetime + KernelSlack).After(validUntil)
}

// DefaultTTL returns the shortest lease TTL, rounded up to 100 ms, that
// satisfies inequality (c) for the given heartbeat interval, dead_after and
// VIP lifetime, with every other Timing field at its default (renew every
// interval, call budget dead_after, drift 1%, margin 10 ms). For 50 ms /
// 300 ms / 2 s it is 4 s.
func DefaultTTL(interval, deadAfter, lifetime time.Duration) time.Duration {
	return Timing{Interval: interval, DeadAfter: deadAfter, Lifetime: lifetime}.WithDefaults().TTL
}

// minTTL is the shortest TTL, rounded up to ttlRound, that satisfies (c).
func minTTL(t Timing) time.Duration {
	need := float64(t.Lifetime+KernelSlack+t.Renew+t.Delay+t.Margin) / shrink(t.Drift)
	return time.Duration(math.Ceil(need/float64(ttlRound))) * ttlRound
}

// shrink is (1−ρ)/(1+ρ): the least a duration measured on one clock can be
// when measured on another, each within ρ of true time.
func shrink(rho float64) float64 { return (1 - rho) / (1 + rho) }

// Validate sets t's defaults and refuses timings that break the lease's
// safety inequalities or make no sense.
func Validate(t Timing) error {
	t = t.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("witness: "+format, args...)) }
	switch {
	case t.Interval <= 0:
		bad("interval %v must be positive", t.Interval)
	case t.DeadAfter < t.Interval:
		bad("dead_after %v must be at least the interval %v", t.DeadAfter, t.Interval)
	}
	if t.Lifetime < time.Second || t.Lifetime%time.Second != 0 {
		bad("VIP lifetime %v must be whole seconds, at least 1s", t.Lifetime)
	}
	if t.Renew <= 0 {
		bad("renew period %v must be positive", t.Renew)
	}
	if t.Delay <= 0 {
		bad("call budget %v must be positive", t.Delay)
	}
	if !(t.Drift > 0 && t.Drift < MaxDrift) { // also refuses NaN
		bad("clock drift %v must be in (0, %v)", t.Drift, MaxDrift)
	}
	if t.Margin < 0 {
		bad("margin %v must not be negative", t.Margin)
	}
	if t.TTL <= 0 || t.TTL%time.Millisecond != 0 {
		bad("lease TTL %v must be positive whole milliseconds", t.TTL)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// (c): a healthy holder always has a belief long enough to refresh its
	// VIP under (b).
	if need := t.Lifetime + KernelSlack + t.Renew + t.Delay; t.Belief() < need {
		return fmt.Errorf("witness: lease TTL %v too short: TTL×(1−ρ)/(1+ρ) − margin = %v must be at least "+
			"lifetime %v + kernel slack %v + renew %v + call budget %v = %v; the shortest that fits is %v",
			t.TTL, t.Belief(), t.Lifetime, KernelSlack, t.Renew, t.Delay, need, minTTL(t))
	}
	return nil
}
