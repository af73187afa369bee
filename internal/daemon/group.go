package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/drain"
	"github.com/hbdproject/hbd/internal/metrics"
	"github.com/hbdproject/hbd/internal/notify"
	"github.com/hbdproject/hbd/vip"
)

// group is one election the daemon runs: one VIP group of a config with
// groups, or the single election of a config without. Each has its own
// core, VIPs, announcement burst and hand-off; the paths, the peers, the
// checks, the link and the hooks are the daemon's, shared by every group.
// Everything here is loop-owned.
type group struct {
	d    *Daemon
	e    config.Election // resolved settings; replaced by a reload
	log  *slog.Logger    // the daemon's, with the group's name
	m    *election.Machine
	vip  *announcers
	keep *keeper // the VIPs' upkeep, off the loop
	met  groupMetrics

	burst       burst           // the announcement burst in progress
	handoffEnd  time.Time       // when to drop the hand-off routes of our last handover
	masterSeen  time.Time       // last frame from whoever was master, for the failover-phase metric
	releasedBy  string          // the last peer that released the group's VIPs to us ...
	releasedAt  time.Time       // ... and when its frame said so
	chainEnd    time.Time       // when to stop forwarding to the previous master (daisy chaining)
	autoDrained bool            // a hand-off the core decided (preemption) drained the app: undrain at its end
	beatAt      time.Time       // another group's frame carried our state at this time: owed a Sent (see settle)
	missing     map[string]bool // peers whose frames lack this group, logged once
}

// groupMetrics are one group's series: the group label is its name, empty
// (and so left out of the output) without groups.
type groupMetrics struct {
	state    [5]*metrics.Gauge // by election.State
	epoch    *metrics.Gauge
	priority *metrics.Gauge
	claims   *metrics.Counter
	releases *metrics.Counter
	detect   *metrics.Histogram
	claim    *metrics.Histogram
	total    *metrics.Histogram
}

func (d *Daemon) newGroup(e config.Election) (*group, error) {
	log := d.log
	if e.Name != "" {
		log = log.With("group", e.Name)
	}
	g := &group{d: d, e: e, log: log, keep: newKeeper(), missing: map[string]bool{}}
	var err error
	if g.vip, err = newAnnouncers(d.cfg, e.VIPs, d.opts.ConfigPath, log); err != nil {
		return nil, err
	}
	g.met = d.metrics.group(e.Name)
	g.m = election.New(electionConfig(d.cfg, e, g.vip.RefreshInterval()), time.Now())
	return g, nil
}

// label names the group in messages: "" without groups, else " web1".
func (g *group) label() string {
	if g.e.Name == "" {
		return ""
	}
	return " " + g.e.Name
}

func (g *group) vipStrings() []string {
	out := make([]string, 0, len(g.e.VIPs))
	for _, p := range g.e.VIPs {
		out = append(out, p.String())
	}
	if g.vip.bgp != nil {
		for _, p := range g.vip.routes {
			out = append(out, p.String())
		}
	}
	return out
}

// tracks reports whether the check named name counts in this group.
func (g *group) tracks(name string) bool {
	return slices.ContainsFunc(g.e.Tracks, func(t config.Track) bool { return t.Name == name })
}

// act carries out the core's actions, in order.
func (g *group) act(acts []election.Action) {
	d := g.d
	for _, a := range acts {
		began := time.Now()
		g.do(a)
		d.noteStep(a.Kind.String(), began)
	}
}

func (g *group) do(a election.Action) {
	d := g.d
	{
		switch a.Kind {
		case election.ActClaim:
			g.claim(a)
		case election.ActRelease:
			g.burst.stop()
			g.stopChain() // another group's forwarding goes on
			release := g.vip.Release
			if a.Handoff {
				release = g.vip.Handoff
				g.handoffEnd = time.Now().Add(handoffGrace)
				if !d.ownDrain {
					g.drainForHandoff()
				}
			}
			if err := release(); err != nil {
				g.log.Error("releasing the VIPs", "vip", g.vipStrings(), "err", err)
			} else {
				g.log.Info("VIPs released", "vip", g.vipStrings(), "reason", a.Reason)
			}
			g.met.releases.Inc()
		case election.ActRefresh:
			g.askRefresh(time.Now())
			if err := g.vip.SyncRoutes(); err != nil {
				g.log.Error("announcing the BGP routes again", "err", err)
			}
		case election.ActAnnounce:
			g.log.Info("announcing the VIPs again", "reason", a.Reason)
			g.burst.begin(time.Now(), 1)
			g.announce()
		case election.ActSend:
			if a.Frame == election.Bye && d.stopping {
				d.byeDue = true // one bye, once every group has stopped
				return
			}
			d.send(a.Frame, a.Target, a.Periodic, g)
		case election.ActNotify:
			g.transition(a)
		case election.ActLease:
			if d.leaser == nil || !d.leaser.ask(a) {
				g.log.Error("witness request dropped", "op", a.Lease.String())
			}
		}
	}
}

func (g *group) claim(a election.Action) {
	d := g.d
	decided := time.Now()
	if !g.handoffEnd.IsZero() {
		g.endHandoff()
	}
	g.startChain(decided)
	err := g.vip.Claim(a.Epoch)
	done := time.Now()
	g.met.claims.Inc()
	switch {
	case errors.Is(err, vip.ErrNotAnnounced):
		g.log.Warn("VIPs added but the first announcement failed; retrying", "err", err)
	case err != nil:
		g.log.Error("claiming the VIPs", "vip", g.vipStrings(), "err", err)
	}
	if !g.masterSeen.IsZero() {
		g.met.detect.Observe(decided.Sub(g.masterSeen).Seconds())
		g.met.total.Observe(done.Sub(g.masterSeen).Seconds())
	}
	g.met.claim.Observe(done.Sub(decided).Seconds())
	g.log.Info("VIPs claimed", "vip", g.vipStrings(), "epoch", a.Epoch, "took", done.Sub(decided), "reason", a.Reason)
	if a.Bypass {
		d.leaser.bypassed.Inc()
		g.log.Error("CLAIMED WITHOUT THE WITNESS LEASE: the witness is unreachable and witness.policy is available; two masters are possible until it returns")
	}
	g.burst.begin(decided, 1) // Claim sent the first round
}

// announce has the keeper send one announcement round, while we are
// master.
func (g *group) announce() {
	if g.m.State() != election.Master {
		g.burst.stop()
		return
	}
	g.askAnnounce()
}

func (g *group) transition(a election.Action) {
	d := g.d
	lvl := slog.LevelInfo
	if a.To == election.Fault {
		lvl = slog.LevelWarn
	}
	g.log.Log(context.Background(), lvl, "state changed", "from", a.From.String(), "state", a.To.String(),
		"epoch", a.Epoch, "cause", a.Cause.String(), "reason", a.Reason, "vip", g.vipStrings())
	if a.From == election.Master && a.To != election.Init { // not when stopping: no warning on every clean stop
		if until := g.m.Status(time.Now()).HoldDownUntil; until.After(time.Now()) {
			g.log.Warn("lost mastership: no preemption during the hold-down (it doubles each time mastership is lost soon after it was won)",
				"hold_down", time.Until(until).Round(time.Millisecond))
		}
	}
	g.setState(a.To)
	if err := g.vip.SetBackup(a.To == election.Backup); err != nil {
		g.log.Error("setting the BGP standby route", "state", a.To.String(), "err", err)
	}
	g.met.epoch.Set(float64(g.m.Epoch()))
	d.metrics.transitions.With(g.e.Name, a.From.String(), a.To.String(), a.Cause.String()).Inc()
	if a.To != election.Init {
		d.hooks.Notify(notify.Event{
			From: a.From.String(), To: a.To.String(), Node: d.cfg.Node, VIPs: g.vipStrings(),
			Reason: a.Reason, Epoch: g.m.Epoch(), Group: g.e.Name, At: time.Now(),
		})
	}
	if !d.readySent && a.To != election.Init && !slices.ContainsFunc(d.groups, func(o *group) bool { return o.m.State() == election.Init }) {
		d.readySent = true
		notifyReady(d.stateSummary())
	}
}

func (g *group) setState(s election.State) {
	for i, gauge := range g.met.state {
		v := 0.0
		if election.State(i) == s {
			v = 1
		}
		gauge.Set(v)
	}
}

func (g *group) endHandoff() {
	d := g.d
	g.handoffEnd = time.Time{}
	if g.autoDrained {
		g.autoDrained = false
		d.setDrainMask()
		if !d.drainedByUs() { // another group's hand-off may still need the app draining
			cfg, log := g.e.Drain, g.log // a reload may swap g.e
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if err := drain.Undrain(ctx, cfg, log); err != nil {
					log.Warn("undraining the local app", "err", err)
				}
			}()
		}
	}
	if err := g.vip.EndHandoff(); err != nil {
		g.log.Warn("ending the hand-off", "err", err)
	}
}

// drainForHandoff drains the local app, in the background, for a hand-off
// the core decided by itself (a preemption, or a fault check handing over):
// the answers it gives in the hand-off window then carry Connection:
// close, so no keep-alive connection stays with this node after the window
// (a request on one would be reset by the new master). endHandoff undrains.
// With groups the app serves the VIPs that stay here too: their keep-alive
// clients reconnect, to this node, and lose no request.
func (g *group) drainForHandoff() {
	cfg := g.e.Drain
	if cfg.URL == "" && len(cfg.Command) == 0 {
		return
	}
	g.autoDrained = true
	g.d.setDrainMask()
	log := g.log
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), handoffGrace)
		defer cancel()
		if _, err := drain.Drain(ctx, cfg, log); err != nil {
			log.Warn("draining the local app for the hand-off", "err", err)
		}
	}()
}

// heard turns a peer's frame into what this group's core hears: the
// frame's own fields without groups, else the entry with this group's id.
// ok is false when the frame has no entry for the group.
func (g *group) heard(f *heartbeat.Frame) (election.Heard, bool) {
	if g.e.ID == 0 {
		if len(f.Groups) > 0 {
			return election.Heard{}, false
		}
		return election.Heard{Node: f.Node, Kind: f.Kind, Advert: election.Advert{
			State: f.State, Priority: int(f.Priority), Epoch: f.Epoch, Flags: f.Flags, Target: f.Target}}, true
	}
	for _, e := range f.Groups {
		if e.ID != g.e.ID {
			continue
		}
		kind := f.Kind
		if kind == election.Released && e.Target == "" {
			kind = election.Heartbeat // another group of the sender released
		}
		return election.Heard{Node: f.Node, Kind: kind, Advert: election.Advert{
			State: e.State, Priority: int(e.Priority), Epoch: e.Epoch, Flags: e.Flags, Target: e.Target}}, true
	}
	return election.Heard{}, false
}

// noteMissing logs, once per peer, that its frames lack this group: the
// nodes' configs differ, and for this group the peer counts as silent.
func (g *group) noteMissing(peer string, f *heartbeat.Frame) {
	if g.missing[peer] {
		return
	}
	g.missing[peer] = true
	if g.e.ID == 0 {
		g.log.Error("peer sends VIP groups but this node has none: its frames are ignored; every node must declare the same groups (see docs/config.md, groups)", "peer", peer)
		return
	}
	var ids []string
	for _, e := range f.Groups {
		ids = append(ids, fmt.Sprint(e.ID))
	}
	g.log.Error("peer does not carry group: for this group it counts as silent; every node must declare the same groups with the same ids (see docs/config.md, groups)",
		"peer", peer, "id", g.e.ID, "peer_group_ids", ids)
}
