package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/drain"
)

// defaultHandoverTimeout bounds a handover whose request names none.
const defaultHandoverTimeout = 10 * time.Second

func (d *Daemon) handleControl(ctx context.Context, req control.Request) control.Response {
	switch req.Cmd {
	case control.CmdStatus:
		var st control.Status
		if err := d.call(ctx, func() { st = d.status(time.Now()) }); err != nil {
			return control.Response{Error: err.Error()}
		}
		return control.Response{OK: true, Status: &st}
	case control.CmdHandover:
		steps, err := d.handover(ctx, req.Group, req.To, time.Duration(req.Timeout))
		resp := control.Response{OK: err == nil, Steps: steps}
		if err != nil {
			resp.Error = err.Error()
		}
		return resp
	case control.CmdMaintenance:
		steps, err := d.maintenance(ctx, req.On, req.Force, time.Duration(req.Timeout))
		resp := control.Response{OK: err == nil, Steps: steps}
		if err != nil {
			resp.Error = err.Error()
		}
		return resp
	}
	return control.Response{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
}

// newStep reports one step of a handover: detail says what went right; a
// failed step shows its error instead.
func newStep(name string, took time.Duration, err error, detail string) control.Step {
	s := control.Step{Name: name, Took: control.Duration(took), OK: err == nil, Detail: detail}
	if err != nil {
		s.Detail = err.Error()
	}
	return s
}

// handover is the planned move of a group's VIPs to a standby: the group
// named, or without a name every group this node is master of (the single
// election of a config without groups). It resolves the groups in the loop
// and runs handoverGroups.
func (d *Daemon) handover(ctx context.Context, name, to string, timeout time.Duration) ([]control.Step, error) {
	var gs []*group
	var gerr error
	if err := d.call(ctx, func() { gs, gerr = d.pickGroups(name) }); err != nil {
		gerr = err
	}
	if gerr != nil {
		return []control.Step{newStep("check standby", 0, gerr, "")}, fmt.Errorf("handover refused: %w", gerr)
	}
	return d.handoverGroups(ctx, gs, to, timeout)
}

// pickGroups resolves a handover's group name (in the loop).
func (d *Daemon) pickGroups(name string) ([]*group, error) {
	if !d.grouped() {
		if name != "" {
			return nil, fmt.Errorf("no group %q: this node's config has no groups", name)
		}
		return d.groups, nil
	}
	var names []string
	for _, g := range d.groups {
		if g.e.Name == name {
			return []*group{g}, nil
		}
		names = append(names, g.e.Name)
	}
	if name != "" {
		return nil, fmt.Errorf("no group %q (the groups are %s)", name, strings.Join(names, ", "))
	}
	var out []*group
	for _, g := range d.groups {
		if g.m.State() == election.Master {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("this node is master of no group")
	}
	return out, nil
}

// groupNames is "web1, web2", or "" without groups, for step details.
func groupNames(gs []*group) string {
	var n []string
	for _, g := range gs {
		if g.e.Name != "" {
			n = append(n, g.e.Name)
		}
	}
	return strings.Join(n, ", ")
}

// handoverGroups moves the groups' VIPs to a standby each: check it is
// ready, drain the local app, release the VIPs with a Released frame, and
// wait for the standby to claim. On failure before the release nothing
// changed; on failure after it the core re-claims if the standby never
// did. Several groups move together: one drain, then every release.
func (d *Daemon) handoverGroups(ctx context.Context, gs []*group, to string, timeout time.Duration) ([]control.Step, error) {
	if timeout <= 0 {
		timeout = defaultHandoverTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var steps []control.Step
	step := func(name string, start time.Time, err error, detail string) error {
		steps = append(steps, newStep(name, time.Since(start), err, detail))
		return err
	}
	// per names each group's part of a step: "pc02" alone, or
	// "web1 → pc02, web2 → pc03" with groups.
	per := func(f func(i int, g *group) string) string {
		var parts []string
		for i, g := range gs {
			if g.e.Name == "" {
				parts = append(parts, f(i, g))
			} else {
				parts = append(parts, g.e.Name+": "+f(i, g))
			}
		}
		return strings.Join(parts, "; ")
	}

	start := time.Now()
	targets := make([]string, len(gs))
	var cerr error
	if err := d.call(ctx, func() {
		for i, g := range gs {
			var err error
			if targets[i], err = g.m.Candidate(time.Now(), to); err != nil {
				if g.e.Name != "" {
					err = fmt.Errorf("group %s: %w", g.e.Name, err)
				}
				cerr = err
				return
			}
		}
	}); err != nil {
		cerr = err
	}
	if err := step("check standby", start, cerr, per(func(i int, _ *group) string { return targets[i] + " is ready" })); err != nil {
		return steps, fmt.Errorf("handover refused: %w", err)
	}
	d.log.Info("handover started", "peer", per(func(i int, _ *group) string { return targets[i] }))
	d.ownDrainMark(ctx, true)
	defer d.ownDrainMark(context.Background(), false)
	drains := distinctDrains(gs)

	start = time.Now()
	var detail string
	var derr error
	for _, dc := range drains {
		dsteps, err := drain.Drain(ctx, dc, d.log)
		if err != nil {
			derr = err
			break
		}
		for _, s := range dsteps {
			if detail != "" {
				detail += "; "
			}
			detail += fmt.Sprintf("%s %s", s.Name, s.Took.Round(time.Millisecond))
			if s.Detail != "" {
				detail += " (" + s.Detail + ")"
			}
		}
	}
	if detail == "" {
		detail = "nothing to drain (no drain configured)"
	}
	if err := step("drain local app", start, derr, detail); err != nil {
		d.undrain(drains)
		return steps, fmt.Errorf("handover aborted, still master: %w", err)
	}

	start = time.Now()
	var rerr error
	released := make([]string, len(gs))
	if err := d.call(ctx, func() {
		for i, g := range gs {
			if g.m.State() != election.Master && g.m.Status(time.Now()).YieldingTo == targets[i] {
				// The drained app failed its liveness check before we got
				// here, and the core handed the VIPs to the target already.
				released[i] = "the drained app's failing check had handed the VIPs to " + targets[i] + " already"
				continue
			}
			acts, err := g.m.Release(time.Now(), targets[i])
			if err != nil {
				if g.e.Name != "" {
					err = fmt.Errorf("group %s: %w", g.e.Name, err)
				}
				rerr = err
				return
			}
			g.act(acts)
			released[i] = "released frame sent to " + targets[i]
		}
	}); err != nil {
		rerr = err
	}
	if err := step("release VIP", start, rerr, per(func(i int, _ *group) string { return released[i] })); err != nil {
		d.undrain(drains)
		return steps, fmt.Errorf("handover aborted, still master: %w", err)
	}

	start = time.Now()
	var werr error
	for i, g := range gs {
		if werr = d.waitMaster(ctx, g, targets[i]); werr != nil {
			if g.e.Name != "" {
				werr = fmt.Errorf("group %s: %w", g.e.Name, werr)
			}
			break
		}
	}
	if err := step("standby claims", start, werr, per(func(i int, _ *group) string { return targets[i] + " is master" })); err != nil {
		d.undrain(drains)
		return steps, fmt.Errorf("handover did not complete (this node re-claims if the standby does not): %w", err)
	}
	// The VIPs' traffic goes to the targets now, but for the hand-off
	// window each target still forwards here the packets of connections
	// opened with us: keep the app draining (every answer says
	// Connection: close) until the windows end, so that no keep-alive
	// connection outlives them. Then put the app back in service, so that
	// this node is a ready standby again (and serves the groups it kept).
	for _, g := range gs {
		d.waitHandoffEnd(ctx, g)
	}
	start = time.Now()
	var uerr error
	for _, dc := range drains {
		if err := drain.Undrain(ctx, dc, d.log); err != nil {
			uerr = err
		}
	}
	step("undrain local app", start, uerr, "ready as standby")
	d.log.Info("handover complete", "peer", per(func(i int, _ *group) string { return targets[i] }))
	return steps, nil
}

// distinctDrains are the groups' drain settings, each once.
func distinctDrains(gs []*group) []config.Drain {
	var out []config.Drain
	for _, g := range gs {
		if !slices.ContainsFunc(out, func(d config.Drain) bool { return reflect.DeepEqual(d, g.e.Drain) }) {
			out = append(out, g.e.Drain)
		}
	}
	return out
}

// ownDrainMark tells the loop that our own handover drains the app (so a
// hand-off in that time needs no drain of its own; see drainForHandoff).
func (d *Daemon) ownDrainMark(ctx context.Context, on bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.call(ctx, func() { d.ownDrain = on; d.setDrainMask() }); err != nil {
		d.log.Warn("marking the drain of our handover", "err", err)
	}
}

// waitHandoffEnd waits until the hand-off routes of the group's last
// release are gone (the loop removes them handoffGrace after the release).
func (d *Daemon) waitHandoffEnd(ctx context.Context, g *group) {
	ctx, cancel := context.WithTimeout(ctx, handoffGrace+time.Second)
	defer cancel()
	for {
		var end time.Time
		if d.call(ctx, func() { end = g.handoffEnd }) != nil || end.IsZero() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(end) + time.Millisecond):
		}
	}
}

// handOverOnStop is SIGTERM's planned handover: a master with a ready
// standby drains its app, releases the VIPs to it and waits out the
// hand-off window, exactly as `hbd handover` does, with the loop running
// again for the purpose; with groups, every group that has a ready
// standby moves. What is not handed over (no ready standby, or a failed
// handover) the caller's Stop releases, and the node says bye, as before.
func (d *Daemon) handOverOnStop() {
	var gs []*group
	for _, g := range d.groups {
		if g.m.State() != election.Master {
			continue
		}
		if _, err := g.m.Candidate(time.Now(), ""); err != nil {
			g.log.Info("stopping without a handover", "err", err)
			continue
		}
		gs = append(gs, g)
	}
	if len(gs) == 0 {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.loop(ctx) }()
	var timeout time.Duration
	for _, dc := range distinctDrains(gs) {
		timeout += dc.Timeout.D()
	}
	steps, err := d.handoverGroups(ctx, gs, "", timeout+2*time.Second)
	stop()
	<-done
	if err != nil {
		d.log.Warn("handover on stop failed; releasing the VIPs", "err", err, "steps", len(steps))
	}
}

func (d *Daemon) undrain(drains []config.Drain) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, dc := range drains {
		if err := drain.Undrain(ctx, dc, d.log); err != nil {
			d.log.Warn("undraining the local app", "err", err)
		}
	}
}

// waitMaster waits until target is heard as the group's master.
func (d *Daemon) waitMaster(ctx context.Context, g *group, target string) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		var ok bool
		var self election.State
		if err := d.call(ctx, func() {
			self = g.m.State()
			for _, p := range g.m.Status(time.Now()).Peers {
				if p.Node == target && p.Alive && p.State == election.Master {
					ok = true
				}
			}
		}); err != nil {
			return fmt.Errorf("waiting for %s to claim: %w", target, err)
		}
		if ok {
			return nil
		}
		if self == election.Master {
			return errors.New("this node claimed the VIPs back: " + target + " did not take them in time")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to claim: %w", target, ctx.Err())
		case <-t.C:
		}
	}
}

// maintenance pins the node out of (or back into) every group's election;
// going in, it first hands over every group it is master of.
func (d *Daemon) maintenance(ctx context.Context, on, force bool, timeout time.Duration) ([]control.Step, error) {
	var steps []control.Step
	var masters []*group
	if err := d.call(ctx, func() {
		for _, g := range d.groups {
			if g.m.State() == election.Master {
				masters = append(masters, g)
			}
		}
	}); err != nil {
		return nil, err
	}
	if on && len(masters) > 0 {
		var err error
		steps, err = d.handoverGroups(ctx, masters, "", timeout)
		if err != nil && !force {
			return steps, fmt.Errorf("not entering maintenance: %w (use --force to drop the VIP anyway)", err)
		}
	}
	start := time.Now()
	if err := d.call(ctx, func() {
		for _, g := range d.groups {
			g.act(g.m.SetMaintenance(time.Now(), on))
		}
	}); err != nil {
		return steps, err
	}
	name := "maintenance off"
	if on {
		name = "maintenance on"
	}
	steps = append(steps, control.Step{Name: name, Took: control.Duration(time.Since(start)), OK: true})
	d.log.Info(name)
	return steps, nil
}

// status builds `hbd status` in the loop.
func (d *Daemon) status(now time.Time) control.Status {
	first := d.groups[0]
	cs := first.m.Status(now)
	st := control.Status{
		Node: cs.Node, Version: d.opts.Version, State: cs.State.String(), Epoch: cs.Epoch,
		Priority: cs.Priority, EffectivePriority: cs.EffectivePriority, Penalties: cs.Penalties,
		Faults: cs.Faults, Degraded: cs.Degraded, Ready: cs.Ready, LinkUp: cs.LinkUp, Maintenance: cs.State == election.Maintenance,
		Interface: d.cfg.Interface, VIPs: vipStrings(d.cfg), Held: []string{},
		LastTransition: cs.LastTransition, LastReason: cs.LastReason, YieldingTo: cs.YieldingTo,
		HoldDownLeft: control.Duration(max(cs.HoldDownUntil.Sub(now), 0)),
		Started:      d.started, Rejected: map[string]map[string]uint64{},
	}
	if cs.Witness {
		st.Witness = &control.Witness{Policy: d.cfg.Witness.Policy, Reachable: !cs.WitnessDown}
		if !cs.LeaseUntil.IsZero() && cs.LeaseUntil.After(now) {
			st.Witness.LeaseLeft = control.Duration(cs.LeaseUntil.Sub(now))
		}
	}
	if first.vip.bgp != nil {
		st.BGP = bgpStatus(first.vip.bgp)
	}
	for _, g := range d.groups {
		held := []string{}
		if h, err := g.vip.Held(); err == nil {
			for _, p := range h {
				held = append(held, p.String())
			}
		}
		st.Held = append(st.Held, held...)
		if d.grouped() {
			st.Groups = append(st.Groups, groupStatus(g, g.m.Status(now), held, now))
		}
	}
	if d.grouped() {
		st.State = d.stateSummary()
		for _, g := range st.Groups {
			st.Epoch = max(st.Epoch, g.Epoch)
		}
	}
	rtts := d.tcp.RTTs()
	for _, p := range cs.Peers {
		info := d.peers[p.Node]
		cp := control.Peer{
			Node: p.Node, State: p.State.String(), Alive: p.Alive, Priority: p.Priority, Epoch: p.Epoch,
			Ready:     p.Flags&election.FlagReady != 0,
			LastFrame: map[string]control.Age{}, Received: map[string]uint64{},
		}
		if info != nil {
			cp.Address = info.addr.Addr().String()
			for _, path := range []heartbeat.Path{heartbeat.PathUDP, heartbeat.PathTCP} {
				age := control.Age(-time.Second)
				if t := info.last[path]; !t.IsZero() {
					age = control.Age(now.Sub(t))
				}
				cp.LastFrame[path.String()] = age
				cp.Received[path.String()] = info.received[path]
			}
			cp.Lost = info.lost
			cp.MaxGap = control.Duration(info.maxGap)
			cp.RTT = control.Duration(rtts[info.addr.Addr()])
		}
		st.Peers = append(st.Peers, cp)
	}
	st.Peers = append(st.Peers, unheardPeers(d.cfg, st.Peers)...)
	if q := cs.Quorum; q.Need > 0 {
		st.Quorum = &control.Quorum{Size: q.Size, Need: q.Need, Have: q.Have, Held: q.Held()}
	}
	for _, r := range d.checks.Snapshot() {
		st.Checks = append(st.Checks, control.Check{Name: r.Name, Healthy: r.Healthy, Weight: r.Weight, Fault: r.Fault, Detail: r.Detail})
	}
	sort.Slice(st.Checks, func(i, j int) bool { return st.Checks[i].Name < st.Checks[j].Name })
	d.rejMu.Lock()
	for path, m := range d.rejected {
		st.Rejected[path] = map[string]uint64{}
		for r, n := range m {
			st.Rejected[path][r] = n
		}
	}
	d.rejMu.Unlock()
	for path, ts := range map[string]heartbeat.TransportStats{"udp": d.udp.Stats(), "tcp": d.tcp.Stats()} {
		if st.Rejected[path] == nil {
			st.Rejected[path] = map[string]uint64{}
		}
		if ts.UnknownPeer > 0 {
			st.Rejected[path]["unknown_peer"] += ts.UnknownPeer
		}
		if ts.Malformed > 0 {
			st.Rejected[path]["malformed"] += ts.Malformed
		}
	}
	return st
}

func groupStatus(g *group, cs election.Status, held []string, now time.Time) control.Group {
	gs := control.Group{
		Name: g.e.Name, ID: int(g.e.ID), State: cs.State.String(), Epoch: cs.Epoch,
		Priority: cs.Priority, EffectivePriority: cs.EffectivePriority, Penalties: cs.Penalties,
		Faults: cs.Faults, Degraded: cs.Degraded, Ready: cs.Ready,
		VIPs: g.vipStrings(), Held: held,
		LastTransition: cs.LastTransition, LastReason: cs.LastReason, YieldingTo: cs.YieldingTo,
		HoldDownLeft: control.Duration(max(cs.HoldDownUntil.Sub(now), 0)),
		Peers:        []control.GroupPeer{},
	}
	for _, p := range cs.Peers {
		gs.Peers = append(gs.Peers, control.GroupPeer{Node: p.Node, State: p.State.String(), Priority: p.Priority,
			Epoch: p.Epoch, Ready: p.Flags&election.FlagReady != 0})
	}
	return gs
}

// unheardPeers lists the configured peers no frame has come from yet, so
// that status shows every node of the cluster.
func unheardPeers(cfg *config.Config, heard []control.Peer) []control.Peer {
	seen := map[string]bool{}
	for _, p := range heard {
		seen[p.Address] = true
	}
	var out []control.Peer
	for _, p := range cfg.Peers {
		if a := p.Addr().String(); !seen[a] {
			out = append(out, control.Peer{Address: a, State: "UNHEARD",
				LastFrame: map[string]control.Age{"udp": control.Age(-time.Second), "tcp": control.Age(-time.Second)}, Received: map[string]uint64{}})
		}
	}
	return out
}

func (d *Daemon) metricsServer(addr string) (func(context.Context) error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.observing(d.metrics.reg.Handler()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, nil
}

// observing brings the gauges that mirror the core (peer alive, lease held)
// up to date in the loop, then serves the scrape.
func (d *Daemon) observing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		select {
		case d.calls <- func() { d.metrics.observe(d.groups[0].m.Status(time.Now()), time.Now()); close(done) }:
			select {
			case <-done:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
		h.ServeHTTP(w, r)
	})
}
