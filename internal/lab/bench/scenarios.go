package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"

	"time"

	"github.com/hbdproject/hbd/internal/lab"
)

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// holders lists the hosts holding the VIP now.
func holders(l *lab.Lab) []string {
	var hs []string
	for _, h := range hosts {
		if ok, err := l.HasAddr(h, lab.HostIf, vip); err == nil && ok {
			hs = append(hs, h)
		}
	}
	return hs
}

// waitOnlyHolder waits until host alone holds the VIP.
func waitOnlyHolder(ctx context.Context, l *lab.Lab, host string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		hs := holders(l)
		if len(hs) == 1 && hs[0] == host {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not the only VIP holder after %s (holders %v)", host, limit, hs)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitStable waits until the master alone holds the VIP and three requests
// in a row through the VIP are answered by it.
func waitStable(ctx context.Context, p pair, limit time.Duration) error {
	start := time.Now()
	if err := waitOnlyHolder(ctx, p.lab(), master, limit); err != nil {
		return fmt.Errorf("%s pair not stable: %w", p.tool(), err)
	}
	client := p.lab().HTTPClient("client", false, 500*time.Millisecond)
	good := 0
	var last string
	for good < 3 {
		if time.Since(start) > limit {
			return fmt.Errorf("%s pair not stable: VIP not answered by %s within %s (last: %s)", p.tool(), master, limit, last)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		switch {
		case err != nil:
			good, last = 0, err.Error()
		default:
			resp.Body.Close()
			last = fmt.Sprintf("status %d from %q", resp.StatusCode, resp.Header.Get(lab.HeaderServedBy))
			if resp.StatusCode == http.StatusOK && resp.Header.Get(lab.HeaderServedBy) == master {
				good++
			} else {
				good = 0
			}
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// waitFirstGood waits until every prober source has a good answer from
// node finished after t0.
func waitFirstGood(ctx context.Context, t0 time.Time, node string, limit time.Duration, sources ...func() lab.ProbeResults) error {
	deadline := t0.Add(limit)
	for {
		done := true
		for _, src := range sources {
			if _, ok := firstGoodFrom(src(), t0, node); !ok {
				done = false
			}
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s within %s", node, limit)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// outageAfter waits for the standby's first good answer after the fault
// at t0, probes postFirstGood longer, stops the fleet and returns the
// outage and the results.
func outageAfter(ctx context.Context, f *fleet, t0 time.Time) (lab.Gap, lab.ProbeResults, error) {
	if err := waitFirstGood(ctx, t0, standby, failoverLimit, f.Results); err != nil {
		return lab.Gap{}, nil, err
	}
	if err := sleep(ctx, postFirstGood); err != nil {
		return lab.Gap{}, nil, err
	}
	f.Stop()
	rs := f.Results()
	g, ok := outage(rs, t0, standby)
	if !ok {
		return lab.Gap{}, nil, errors.New("no outage found in the probe results")
	}
	return g, rs, nil
}

// cablePull measures one cable pull on the master and the fail-back when it
// is plugged in again.
func (r *runner) cablePull(ctx context.Context, p pair, set string, run int) (err error) {
	l := p.lab()
	if err := waitStable(ctx, p, stableLimit); err != nil {
		return err
	}
	f := startFleet(ctx, l)
	defer f.Stop()
	if err := sleep(ctx, r.preFault()); err != nil {
		return err
	}
	t0 := time.Now()
	if err := l.CablePull(master); err != nil {
		return err
	}
	plugged := false
	defer func() {
		if !plugged {
			err = errors.Join(err, l.CablePlug(master))
		}
	}()
	g, rs, err := outageAfter(ctx, f, t0)
	if err != nil {
		return err
	}
	r.add(p.tool(), set, ScenarioCablePull, run, "gap_ms", ms(g.Duration()))
	r.add(p.tool(), set, ScenarioCablePull, run, "failed_probes", float64(g.Failures))
	if set == SettingDefaults {
		r.timelines[p.tool()] = append(r.timelines[p.tool()], timelineRun{gap: g.Duration(), pts: timelinePoints(p.tool(), set, rs, t0)})
	}

	// Fail-back: plug the old master in again, sampling who holds the VIP.
	s, err := l.WatchHolders(ctx, hosts, lab.HostIf, vip)
	if err != nil {
		return fmt.Errorf("fail-back: %w", err)
	}
	plugged = true
	if err := l.CablePlug(master); err != nil {
		s.Stop()
		return err
	}
	werr := waitOnlyHolder(ctx, l, master, stableLimit)
	if werr == nil {
		werr = sleep(ctx, failbackSettle)
	}
	if err := s.Stop(); err != nil {
		return fmt.Errorf("fail-back: %w", err)
	}
	if werr != nil {
		return fmt.Errorf("fail-back: %w", werr)
	}
	samples, err := s.Result()
	if err != nil {
		return fmt.Errorf("fail-back: %w", err)
	}
	r.add(p.tool(), set, ScenarioFailback, run, "max_holders", float64(samples.MaxConcurrent()))
	r.add(p.tool(), set, ScenarioFailback, run, "double_holder_ms", ms(samples.DoubleHolderDuration()))
	r.logf("%-10s %-8s cable pull %2d: outage %6.1f ms, %3d failed probes; fail-back: max %d holder(s), %.0f ms with two",
		p.tool(), set, run, ms(g.Duration()), g.Failures, samples.MaxConcurrent(), ms(samples.DoubleHolderDuration()))
	return nil
}

// switchover measures one planned switchover under two request streams:
// a new connection every 5 ms, and one keep-alive connection.
func (r *runner) switchover(ctx context.Context, p pair, set string, run int) error {
	l := p.lab()
	if err := waitStable(ctx, p, stableLimit); err != nil {
		return err
	}
	f := startFleet(ctx, l)
	defer f.Stop()
	ka := l.ProbeWith(ctx, lab.ProbeConfig{From: "client", URL: url, Every: probeSpacing, KeepAlive: true, Timeout: probeTimeout})
	defer ka.Stop()
	if err := sleep(ctx, r.preFault()); err != nil {
		return err
	}
	t0 := time.Now()
	if err := p.switchover(ctx); err != nil {
		return err
	}
	if err := waitFirstGood(ctx, t0, standby, failoverLimit, f.Results, ka.Results); err != nil {
		return err
	}
	if err := sleep(ctx, switchoverAfter); err != nil {
		return err
	}
	f.Stop()
	ka.Stop()
	rsNew, rsKA := f.Results(), ka.Results()
	failedNew, failedKA := rsNew.Failures(), rsKA.Failures()
	gapNew, gapKA := longestGapAfter(rsNew, t0), longestGapAfter(rsKA, t0)
	r.add(p.tool(), set, ScenarioSwitchover, run, "failed_new", float64(failedNew))
	r.add(p.tool(), set, ScenarioSwitchover, run, "failed_keepalive", float64(failedKA))
	r.add(p.tool(), set, ScenarioSwitchover, run, "gap_new_ms", ms(gapNew))
	r.add(p.tool(), set, ScenarioSwitchover, run, "gap_keepalive_ms", ms(gapKA))
	r.logf("%-10s %-8s switchover %2d: failed %d new / %d keep-alive; longest gap %.1f / %.1f ms%s%s",
		p.tool(), set, run, failedNew, failedKA, ms(gapNew), ms(gapKA), describeFailures("new", rsNew, t0), describeFailures("keep-alive", rsKA, t0))
	return p.restore(ctx, false)
}

// crash kills the master's daemon with SIGKILL and measures the time to
// the standby's first answer and how long the dead host keeps the VIP.
func (r *runner) crash(ctx context.Context, p pair, set string, run int) error {
	l := p.lab()
	if err := waitStable(ctx, p, stableLimit); err != nil {
		return err
	}
	f := startFleet(ctx, l)
	defer f.Stop()
	if err := sleep(ctx, r.preFault()); err != nil {
		return err
	}
	t0 := time.Now()
	if err := p.kill(); err != nil {
		return err
	}
	// Watch the dead host's VIP while the standby takes over.
	var gone time.Duration
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for time.Since(t0) < r.o.CrashCap && ctx.Err() == nil {
			if ok, err := l.HasAddr(master, lab.HostIf, vip); err == nil && !ok {
				gone = time.Since(t0)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		gone = r.o.CrashCap
	}()
	ferr := waitFirstGood(ctx, t0, standby, failoverLimit, f.Results)
	if ferr == nil {
		ferr = sleep(ctx, postFirstGood)
	}
	f.Stop()
	<-watchDone
	if ferr != nil {
		return errors.Join(ferr, p.restore(ctx, true))
	}
	rs := f.Results()
	first, _ := firstGoodFrom(rs, t0, standby)
	failed := failuresBetween(rs, t0, first.End())
	r.add(p.tool(), set, ScenarioCrash, run, "failover_ms", ms(first.End().Sub(t0)))
	r.add(p.tool(), set, ScenarioCrash, run, "failed_probes", float64(failed))
	r.add(p.tool(), set, ScenarioCrash, run, "dead_host_vip_ms", ms(gone))
	capped := ""
	if gone >= r.o.CrashCap {
		capped = "≥"
	}
	r.logf("%-10s %-8s kill -9    %2d: standby answers after %.1f ms, %d failed probes; dead host kept the VIP %s%.0f ms",
		p.tool(), set, run, ms(first.End().Sub(t0)), failed, capped, ms(gone))
	return p.restore(ctx, true)
}

// cost measures each daemon's CPU (user + sys of its process tree) over an
// idle window, master and backup, both tools at once, its context
// switches, its peak RSS and its PSS at the end.
func (r *runner) cost(ctx context.Context, ps []pair, set string) error {
	for _, p := range ps {
		if err := waitStable(ctx, p, stableLimit); err != nil {
			return err
		}
	}
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	type probe struct {
		tool, role string
		pids       []int
		t0, sw0    uint64
	}
	var probes []*probe
	for _, p := range ps {
		for _, h := range hosts {
			role := "master"
			if h == standby {
				role = "backup"
			}
			pids := procTree(p.daemon(h).PID())
			t, err := treeCPU(pids)
			if err != nil {
				return err
			}
			probes = append(probes, &probe{tool: p.tool(), role: role, pids: pids, t0: t, sw0: treeSwitches(pids)})
		}
	}
	start := time.Now()
	if err := sleep(ctx, r.o.Cost); err != nil {
		return err
	}
	window := time.Since(start)
	for _, pr := range probes {
		t1, err := treeCPU(pr.pids)
		if err != nil {
			return err
		}
		hwm, err := treeHWM(pr.pids)
		if err != nil {
			return err
		}
		pss, err := treePSS(pr.pids)
		if err != nil {
			return err
		}
		cpu := float64(t1-pr.t0) / clockTicks / window.Seconds() * 100
		rss := float64(hwm) / 1024
		wake := float64(treeSwitches(pr.pids)-pr.sw0) / window.Seconds()
		r.add(pr.tool, set, ScenarioCost, 1, "cpu_"+pr.role+"_pct", cpu)
		r.add(pr.tool, set, ScenarioCost, 1, "rss_"+pr.role+"_mb", rss)
		r.add(pr.tool, set, ScenarioCost, 1, "pss_"+pr.role+"_mb", float64(pss)/1024)
		r.add(pr.tool, set, ScenarioCost, 1, "wakeups_"+pr.role+"_per_s", wake)
		r.logf("%-10s %s idle as %-6s over %s: CPU %.3f%% of a core (%d processes), %.0f wakeups/s, peak RSS %.1f MB, PSS %.1f MB",
			pr.tool, set, pr.role, window.Round(time.Second), cpu, len(pr.pids), wake, rss, float64(pss)/1024)
	}
	return nil
}

// profile records hbd's failover phases from the standby's metrics.
func (r *runner) profile(ctx context.Context, p pair, set string) {
	h, ok := p.(*hbdPair)
	if !ok {
		return
	}
	text, err := h.metrics(ctx, standby)
	if err != nil {
		r.warn("profile %s: %v", set, err)
		return
	}
	ph := parsePhases(text)
	for _, name := range profilePhases {
		s, ok := ph[name]
		if !ok || s.Count == 0 {
			continue
		}
		r.add(ToolHBD, set, ScenarioProfile, 0, name+"_mean_ms", s.Sum/s.Count*1000)
		if name == "total" {
			r.add(ToolHBD, set, ScenarioProfile, 0, "count", s.Count)
		}
	}
}

// lossLadder finds each tool's fastest setting that survives a soak under
// 5% loss on both hosts' ports without a false failover.
func (r *runner) lossLadder(ctx context.Context) error {
	hl, kl := hbdLadder, kaLadder
	if r.o.Smoke {
		hl, kl = hbdSmokeLadder, kaSmokeLadder
	}
	r.hbdFastest, r.kaFastest = hl[len(hl)-1], kl[len(kl)-1]
	survived := 0.0
	for _, t := range hl {
		label := fmt.Sprintf("%s/%s", t.Interval, t.DeadAfter)
		c := r.pairConfig("", t, kaDefaults)
		c.name = fmt.Sprintf("soak-hbd-%s-%s", t.Interval, t.DeadAfter)
		c.metrics = false
		p, err := startHBD(ctx, c)
		if err != nil {
			return fmt.Errorf("loss soak: %w", err)
		}
		ff, obs, err := r.soak(ctx, p)
		p.close()
		if err != nil {
			return fmt.Errorf("loss soak hbd %s: %w", label, err)
		}
		r.add(ToolHBD, label, ScenarioLossSoak, 1, "false_failovers", float64(ff))
		r.add(ToolHBD, label, ScenarioLossSoak, 1, "observed_s", obs.Seconds())
		r.add(ToolHBD, label, ScenarioLossSoak, 1, "detect_ms", ms(t.DeadAfter))
		r.logf("loss soak hbd %s: %d false failover(s) in %s", label, ff, obs.Round(100*time.Millisecond))
		if ff == 0 {
			r.hbdFastest, survived = t, 1
			break
		}
	}
	r.add(ToolHBD, SettingFastest, "config", 0, "survived_loss", survived)
	survived = 0
	for _, t := range kl {
		label := "advert " + seconds(t.Advert) + "s"
		c := r.pairConfig("", HBDTiming{}, t)
		c.name = "soak-keepalived-" + seconds(t.Advert)
		p, err := startKeepalived(ctx, c, r.o.Keepalived)
		if err != nil {
			return fmt.Errorf("loss soak: %w", err)
		}
		ff, obs, err := r.soak(ctx, p)
		p.close()
		if err != nil {
			return fmt.Errorf("loss soak keepalived %s: %w", label, err)
		}
		r.add(ToolKeepalived, label, ScenarioLossSoak, 1, "false_failovers", float64(ff))
		r.add(ToolKeepalived, label, ScenarioLossSoak, 1, "observed_s", obs.Seconds())
		r.add(ToolKeepalived, label, ScenarioLossSoak, 1, "detect_ms", ms(t.MasterDown(prioStandby)))
		r.logf("loss soak keepalived %s: %d false failover(s) in %s", label, ff, obs.Round(100*time.Millisecond))
		if ff == 0 {
			r.kaFastest, survived = t, 1
			break
		}
	}
	r.add(ToolKeepalived, SettingFastest, "config", 0, "survived_loss", survived)
	return nil
}

// soak applies the loss to both hosts' ports for the soak duration, or
// until the standby claims the VIP (a false failover: nothing failed).
// It returns the number of claims seen and how long it watched.
func (r *runner) soak(ctx context.Context, p pair) (int, time.Duration, error) {
	l := p.lab()
	if err := waitStable(ctx, p, stableLimit); err != nil {
		return 0, 0, err
	}
	mark := markLog(p.daemon(standby))
	s, err := l.WatchHolders(ctx, hosts, lab.HostIf, vip)
	if err != nil {
		return 0, 0, err
	}
	defer s.Stop()
	for _, h := range hosts {
		if err := l.SetLoss(h, lossPercent); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	claims := 0
	for time.Since(start) < r.o.Soak {
		if err = sleep(ctx, 100*time.Millisecond); err != nil {
			break
		}
		if claims, err = mark.countSince(p.claimRE()); err != nil || claims > 0 {
			break
		}
		var held lab.HolderSamples
		if held, err = s.Result(); err != nil {
			break
		}
		if n := standbyHeld(held); n > 0 {
			claims = n
			break
		}
	}
	obs := time.Since(start)
	for _, h := range hosts {
		err = errors.Join(err, l.ClearLoss(h))
	}
	return claims, obs, err
}

// standbyHeld counts the times the standby started holding the VIP.
func standbyHeld(s lab.HolderSamples) int {
	n := 0
	held := false
	for _, x := range s {
		has := false
		for _, h := range x.Holders {
			has = has || h == standby
		}
		if has && !held {
			n++
		}
		held = has
	}
	return n
}

// describeFailures lists the first few failed requests relative to t0, for
// the progress log.
func describeFailures(what string, rs lab.ProbeResults, t0 time.Time) string {
	var b strings.Builder
	n := 0
	for _, x := range rs {
		if x.OK() {
			continue
		}
		if n == 3 {
			b.WriteString(" …")
			break
		}
		e := x.Err
		if e == "" {
			e = fmt.Sprintf("status %d from %q", x.Status, x.ServedBy)
		}
		fmt.Fprintf(&b, "\n      %s request started %+.1f ms, took %.1f ms: %s", what, ms(x.Start.Sub(t0)), ms(x.Duration), e)
		n++
	}
	return b.String()
}

// preFault is how long to probe before a fault: preFault plus a random part
// of up to the setting's longest heartbeat interval, so the fault lands at a
// random phase of both tools' heartbeats. Without it the runs lock onto a
// phase: every keepalived advert timer restarts at the fail-back, and a
// fixed delay from there to the next pull would always cut the master-down
// interval short by the same amount.
func (r *runner) preFault() time.Duration {
	if r.phase <= 0 {
		return preFault
	}
	return preFault + rand.N(r.phase)
}
