package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
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
		steps, err := d.handover(ctx, req.To, time.Duration(req.Timeout))
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

// handover is the planned move of the VIP to a standby: check it is ready,
// drain the local app, release the VIP with a Released frame, and wait for
// the standby to claim. On failure before the release nothing changed; on
// failure after it the core re-claims if the standby never did.
func (d *Daemon) handover(ctx context.Context, to string, timeout time.Duration) ([]control.Step, error) {
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

	start := time.Now()
	var target string
	var cerr error
	if err := d.call(ctx, func() { target, cerr = d.m.Candidate(time.Now(), to) }); err != nil {
		cerr = err
	}
	if err := step("check standby", start, cerr, target+" is ready"); err != nil {
		return steps, fmt.Errorf("handover refused: %w", err)
	}
	d.log.Info("handover started", "peer", target)
	d.ownDrainMark(ctx, true)
	defer d.ownDrainMark(context.Background(), false)

	start = time.Now()
	dsteps, derr := drain.Drain(ctx, d.cfg.Drain, d.log)
	detail := "nothing to drain (no drain configured)"
	if len(dsteps) > 0 {
		detail = ""
		for i, s := range dsteps {
			if i > 0 {
				detail += "; "
			}
			detail += fmt.Sprintf("%s %s", s.Name, s.Took.Round(time.Millisecond))
			if s.Detail != "" {
				detail += " (" + s.Detail + ")"
			}
		}
	}
	if derr != nil {
		detail = ""
	}
	if err := step("drain local app", start, derr, detail); err != nil {
		d.undrain()
		return steps, fmt.Errorf("handover aborted, still master: %w", err)
	}

	start = time.Now()
	var rerr error
	released := "released frame sent to " + target
	if err := d.call(ctx, func() {
		if d.m.State() != election.Master && d.m.Status(time.Now()).YieldingTo == target {
			// The drained app failed its liveness check before we got
			// here, and the core handed the VIP to the target already.
			released = "the drained app's failing check had handed the VIP to " + target + " already"
			return
		}
		var acts []election.Action
		acts, rerr = d.m.Release(time.Now(), target)
		d.act(acts)
	}); err != nil {
		rerr = err
	}
	if err := step("release VIP", start, rerr, released); err != nil {
		d.undrain()
		return steps, fmt.Errorf("handover aborted, still master: %w", err)
	}

	start = time.Now()
	werr := d.waitMaster(ctx, target)
	if err := step("standby claims", start, werr, target+" is master"); err != nil {
		d.undrain()
		return steps, fmt.Errorf("handover did not complete (this node re-claims if %s does not): %w", target, err)
	}
	// The VIP's traffic goes to the target now, but for the hand-off
	// window the target still forwards here the packets of connections
	// opened with us: keep the app draining (every answer says
	// Connection: close) until the window ends, so that no keep-alive
	// connection outlives it. Then put the app back in service, so that
	// this node is a ready standby again.
	d.waitHandoffEnd(ctx)
	start = time.Now()
	uerr := drain.Undrain(ctx, d.cfg.Drain, d.log)
	step("undrain local app", start, uerr, "ready as standby")
	d.log.Info("handover complete", "peer", target)
	return steps, nil
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

// waitHandoffEnd waits until the hand-off routes of the last release are
// gone (the loop removes them handoffGrace after the release).
func (d *Daemon) waitHandoffEnd(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, handoffGrace+time.Second)
	defer cancel()
	for {
		var end time.Time
		if d.call(ctx, func() { end = d.handoffEnd }) != nil || end.IsZero() {
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
// standby drains its app, releases the VIP to it and waits out the
// hand-off window, exactly as `hbd handover` does, with the loop running
// again for the purpose. Without a ready standby (or if the handover
// fails) the caller's Stop releases the VIP and says bye as before.
func (d *Daemon) handOverOnStop() {
	if d.m.State() != election.Master {
		return
	}
	if _, err := d.m.Candidate(time.Now(), ""); err != nil {
		d.log.Info("stopping without a handover", "err", err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.loop(ctx) }()
	timeout := d.cfg.Drain.Timeout.D() + 2*time.Second
	steps, err := d.handover(ctx, "", timeout)
	stop()
	<-done
	if err != nil {
		d.log.Warn("handover on stop failed; releasing the VIP", "err", err, "steps", len(steps))
	}
}

func (d *Daemon) undrain() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := drain.Undrain(ctx, d.cfg.Drain, d.log); err != nil {
		d.log.Warn("undraining the local app", "err", err)
	}
}

// waitMaster waits until target is heard as master.
func (d *Daemon) waitMaster(ctx context.Context, target string) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		var ok bool
		var self election.State
		if err := d.call(ctx, func() {
			self = d.m.State()
			for _, p := range d.m.Status(time.Now()).Peers {
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
			return errors.New("this node claimed the VIP back: " + target + " did not take it in time")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to claim: %w", target, ctx.Err())
		case <-t.C:
		}
	}
}

func (d *Daemon) maintenance(ctx context.Context, on, force bool, timeout time.Duration) ([]control.Step, error) {
	var steps []control.Step
	var state election.State
	if err := d.call(ctx, func() { state = d.m.State() }); err != nil {
		return nil, err
	}
	if on && state == election.Master {
		var err error
		steps, err = d.handover(ctx, "", timeout)
		if err != nil && !force {
			return steps, fmt.Errorf("not entering maintenance: %w (use --force to drop the VIP anyway)", err)
		}
	}
	start := time.Now()
	if err := d.call(ctx, func() { d.act(d.m.SetMaintenance(time.Now(), on)) }); err != nil {
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
	cs := d.m.Status(now)
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
	if d.vip.bgp != nil {
		st.BGP = bgpStatus(d.vip.bgp)
	}
	if held, err := d.vip.Held(); err == nil {
		for _, p := range held {
			st.Held = append(st.Held, p.String())
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
		case d.calls <- func() { d.metrics.observe(d.m.Status(time.Now()), time.Now()); close(done) }:
			select {
			case <-done:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
		h.ServeHTTP(w, r)
	})
}
