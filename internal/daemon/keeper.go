package daemon

import (
	"context"
	"sync/atomic"
	"time"
)

// The VIP keeper: a group's VIP upkeep (renewing the addresses' lifetime,
// the later rounds of an announcement burst) runs in a goroutine of its
// own, not in the loop. A netlink call waits for the kernel's RTNL lock,
// and another program holding it (a burst of network namespace, qdisc or
// BPF changes, slowed further by a busy CPU) held one refresh for 415 ms in
// the lab: done in the loop, that wait stopped the heartbeats, the node
// stepped down as stalled and the VIP moved for nothing. Claims and
// releases stay in the loop: a Released frame must leave only after the
// addresses are gone. vip.Manager serialises the calls and never renews a
// released VIP.
//
// A refresh that stays stuck is a fault of its own: after refreshStuck it
// counts as the failing check keeperCheck, so the node leaves mastership
// (the kernel drops the VIPs by itself a little later, at the end of their
// lifetime) and a healthy peer takes over, as it would have when the
// heartbeats stopped.

// keeperCheck is the check a stuck refresh fails; the colon keeps it apart
// from any track's name.
const keeperCheck = "hbd:vip-refresh"

// keeper is one group's upkeep queue: at most one refresh and one
// announcement round wait at a time, as the VIPs' state, not a backlog.
type keeper struct {
	refresh  chan struct{}
	announce chan struct{}
	asked    time.Time // loop-owned: when the refresh still outstanding was asked for; zero if none
	stuck    bool      // loop-owned: keeperCheck fails
	// refreshFn, when set, replaces the refresh (tests make it hang).
	refreshFn atomic.Pointer[func() error]
}

func newKeeper() *keeper {
	return &keeper{refresh: make(chan struct{}, 1), announce: make(chan struct{}, 1)}
}

// refreshStuck is how long a refresh may be outstanding before it counts
// as a fault: half the VIPs' lifetime, so the node steps down while the
// kernel still holds them for as long again.
func (d *Daemon) refreshStuck() time.Duration { return d.cfg.VIPLifetime.D() / 2 }

// askRefresh queues a refresh of g's VIPs (from the loop).
func (g *group) askRefresh(now time.Time) {
	if g.keep.asked.IsZero() {
		g.keep.asked = now
	}
	select {
	case g.keep.refresh <- struct{}{}:
	default: // one is queued already
	}
}

// askAnnounce queues an announcement round of g's VIPs (from the loop).
func (g *group) askAnnounce() {
	select {
	case g.keep.announce <- struct{}{}:
	default:
	}
}

// keep runs g's upkeep until ctx is done.
func (d *Daemon) keep(ctx context.Context, g *group) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.keep.refresh:
			refresh := g.vip.RefreshAddrs
			if fn := g.keep.refreshFn.Load(); fn != nil {
				refresh = *fn
			}
			err := refresh()
			select {
			case d.calls <- func() { g.refreshed(err) }:
			case <-ctx.Done():
				return
			}
		case <-g.keep.announce:
			if err := g.vip.Announce(); err != nil {
				g.log.Warn("announcing the VIPs", "err", err)
			}
		}
	}
}

// refreshed is the keeper's report of a refresh, in the loop.
func (g *group) refreshed(err error) {
	if err != nil {
		g.log.Error("refreshing the VIPs", "err", err)
	}
	g.keep.asked = time.Time{}
	if g.keep.stuck {
		g.keep.stuck = false
		g.log.Warn("the VIPs' refresh went through again", "err", err)
		g.act(g.m.SetCheck(time.Now(), keeperCheck, 0, true, true))
	}
}

// checkKeeper turns a refresh outstanding for refreshStuck into a failing
// check (in the loop, when the deadline keeperDeadline names is due).
func (g *group) checkKeeper(now time.Time) {
	if g.keep.stuck || g.keep.asked.IsZero() || now.Sub(g.keep.asked) < g.d.refreshStuck() {
		return
	}
	g.keep.stuck = true
	g.log.Error("the VIPs' refresh is stuck (netlink does not answer: the kernel's RTNL lock is held elsewhere?); leaving mastership before the kernel drops them",
		"outstanding", now.Sub(g.keep.asked).Round(time.Millisecond))
	g.act(g.m.SetCheck(now, keeperCheck, 0, true, false))
}

// keeperDeadline is when checkKeeper must look; zero if no refresh is
// outstanding.
func (g *group) keeperDeadline() time.Time {
	if g.keep.stuck || g.keep.asked.IsZero() {
		return time.Time{}
	}
	return g.keep.asked.Add(g.d.refreshStuck())
}
