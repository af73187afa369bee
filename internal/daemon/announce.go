package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/vip"
)

// announcers carries out the core's VIP actions on every announcer the
// config uses: the L2 VIPs (vips) with their vip.Manager on the interface,
// and the BGP VIPs (bgp.vips) with a vip.Manager on the loopback or a
// dummy interface (the addresses; no ARP there) and the BGP speaker (the
// routes). The core does not know which is in use. Calls come from the
// loop, except RefreshAddrs and Announce, which the VIP keeper makes.
type announcers struct {
	l2     *vip.Manager   // nil without L2 VIPs
	routed *vip.Manager   // nil without bgp
	bgp    speaker        // nil without bgp
	local  string         // routed's interface (bgp.interface)
	routes []netip.Prefix // the BGP VIPs
}

// newAnnouncers makes the announcers of one election: its L2 VIPs, and the
// BGP VIPs of a config with bgp (which has no groups: one election).
func newAnnouncers(cfg *config.Config, l2 []netip.Prefix, configPath string, log *slog.Logger) (*announcers, error) {
	a := &announcers{}
	var err error
	opts := vip.Options{Lifetime: cfg.VIPLifetime.D(), Logger: log}
	if len(l2) > 0 {
		if a.l2, err = vip.New(cfg.Interface, l2, opts); err != nil {
			return nil, err
		}
	}
	if !cfg.BGP.Enabled() {
		return a, nil
	}
	a.local, a.routes = cfg.BGP.Interface, cfg.BGPPrefixes()
	if created, err := ensureLocal(a.local); err != nil {
		return nil, err
	} else if created {
		log.Info("created the dummy interface for the BGP VIPs", "interface", a.local)
	}
	if a.routed, err = vip.New(a.local, cfg.BGPPrefixes(), opts); err != nil {
		return nil, err
	}
	if a.bgp, err = newSpeaker(cfg, configPath, log.With("announcer", "bgp")); err != nil {
		return nil, err
	}
	return a, nil
}

// speaker is the BGP announcer (vip/bgp.Speaker); a build with the nobgp
// tag has none.
type speaker interface {
	Start(ctx context.Context) error
	Claim(epoch uint64) error
	Handoff() error
	EndHandoff() error
	Release() error
	SetBackup(backup bool) error
	Sync() error
	Close() error
}

// start removes BGP VIPs a crashed run left on the local interface and
// starts the BGP speaker, which dials the neighbours and announces
// nothing yet.
func (a *announcers) start(ctx context.Context, log *slog.Logger) error {
	if a.bgp == nil {
		return nil
	}
	if removed, err := vip.RemoveStale(a.local, a.routes); err != nil {
		return fmt.Errorf("removing stale BGP VIPs: %w", err)
	} else if len(removed) > 0 {
		log.Warn("removed BGP VIPs left by an earlier run", "vip", removed)
	}
	return a.bgp.Start(ctx)
}

// Claim adds every VIP and announces it: L2 first (the first gratuitous
// ARP round), then the local interface's addresses before their routes, so no
// packet the router sends finds no address.
func (a *announcers) Claim(epoch uint64) error {
	var errs []error
	if a.l2 != nil {
		errs = append(errs, a.l2.Claim())
	}
	if a.bgp != nil {
		errs = append(errs, a.routed.Claim(), a.bgp.Claim(epoch))
	}
	return errors.Join(errs...)
}

// Release withdraws the routes, then deletes the addresses.
func (a *announcers) Release() error {
	var errs []error
	if a.bgp != nil {
		errs = append(errs, a.bgp.Release(), a.routed.Release())
	}
	if a.l2 != nil {
		errs = append(errs, a.l2.Release())
	}
	return errors.Join(errs...)
}

// Handoff releases for a planned handover: the routes stay announced,
// demoted below the new master's, and the addresses become hand-off
// routes, until EndHandoff.
func (a *announcers) Handoff() error {
	var errs []error
	if a.bgp != nil {
		errs = append(errs, a.bgp.Handoff(), a.routed.Handoff())
	}
	if a.l2 != nil {
		errs = append(errs, a.l2.Handoff())
	}
	return errors.Join(errs...)
}

// EndHandoff withdraws the demoted routes, then removes the hand-off
// routes.
func (a *announcers) EndHandoff() error {
	var errs []error
	if a.bgp != nil {
		errs = append(errs, a.bgp.EndHandoff(), a.routed.EndHandoff())
	}
	if a.l2 != nil {
		errs = append(errs, a.l2.EndHandoff())
	}
	return errors.Join(errs...)
}

// SetBackup tells the BGP speaker whether this node is a backup (which
// announces a standby route when bgp.standby_announce is on).
func (a *announcers) SetBackup(backup bool) error {
	if a.bgp == nil {
		return nil
	}
	return a.bgp.SetBackup(backup)
}

// RefreshAddrs renews every address's lifetime. The managers lock for
// themselves, so the VIP keeper calls it off the loop.
func (a *announcers) RefreshAddrs() error {
	var errs []error
	if a.l2 != nil {
		errs = append(errs, a.l2.Refresh())
	}
	if a.routed != nil {
		errs = append(errs, a.routed.Refresh())
	}
	return errors.Join(errs...)
}

// SyncRoutes announces the routes again if an earlier update failed; from
// the loop.
func (a *announcers) SyncRoutes() error {
	if a.bgp == nil {
		return nil
	}
	return a.bgp.Sync()
}

// Announce sends one L2 announcement round; a route needs no repeating.
// The manager locks for itself, so the VIP keeper calls it off the loop.
func (a *announcers) Announce() error {
	if a.l2 == nil {
		return nil
	}
	return a.l2.Announce()
}

// Held lists the VIPs held now, on either interface.
func (a *announcers) Held() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, m := range []*vip.Manager{a.l2, a.routed} {
		if m == nil {
			continue
		}
		h, err := m.Held()
		if err != nil {
			return nil, err
		}
		out = append(out, h...)
	}
	return out, nil
}

// RefreshInterval is how often the master refreshes (both managers share
// the lifetime).
func (a *announcers) RefreshInterval() time.Duration {
	if a.l2 != nil {
		return a.l2.RefreshInterval()
	}
	return a.routed.RefreshInterval()
}

// Close withdraws every route and ends the BGP sessions (a Cease
// NOTIFICATION: the routers drop the routes at once), then closes the
// managers. The addresses expire by themselves.
func (a *announcers) Close() error {
	var errs []error
	if a.bgp != nil {
		errs = append(errs, a.bgp.Close(), a.routed.Close())
	}
	if a.l2 != nil {
		errs = append(errs, a.l2.Close())
	}
	return errors.Join(errs...)
}
