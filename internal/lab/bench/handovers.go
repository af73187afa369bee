package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// handoverSeries is hbd's planned-handover series: Options.Handovers moves
// of the VIP back and forth, half by `hbd handover` and half by SIGTERM to
// the master (which hands over on its way out and is started again), under
// a new connection every 5 ms plus 4 keep-alive streams with a request
// every 5 ms each. It counts failed requests and, from rtnetlink address
// events, the most hosts that ever held the VIP at once. keepalived has no
// planned handover to compare (its switchover scenario is a SIGTERM).
// The pair runs as the shipped configs do: the web app's liveness and
// readiness tracked, no preemption (a restarted node would take the VIP
// back without a drain).
func (r *runner) handoverSeries(ctx context.Context) (err error) {
	l, err := newLab(ctx, "bhov", pairConfig{logDir: r.o.LogDir, name: "handovers"})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	preempt := false
	c, err := cluster.Start(ctx, l, cluster.Options{
		Bin: r.o.Bin, Nodes: hosts, Priority: map[string]int{master: prioMaster, standby: prioStandby},
		AppTrack: true, Preempt: &preempt,
	})
	if err != nil {
		return err
	}
	if _, err := c.WaitOnlyHolder(master, stableLimit); err != nil {
		return err
	}
	w, err := l.WatchHolders(ctx, hosts, lab.HostIf, vip)
	if err != nil {
		return err
	}
	defer w.Stop()
	ld := c.StartLoad(ctx)
	start := time.Now()
	cur, next := master, standby
	done := 0
	for i := range r.o.Handovers {
		if err = c.WaitReadyStandby(ctx, cur, next, stableLimit); err == nil {
			err = c.MoveVIP(ctx, cur, next, cluster.HandoverMethod(i))
		}
		if err != nil {
			err = fmt.Errorf("handover %d %s → %s by %s: %w", i, cur, next, cluster.HandoverMethod(i), err)
			break
		}
		done++
		cur, next = next, cur
		if done%100 == 0 {
			r.logf("hbd handovers: %d of %d done", done, r.o.Handovers)
		}
	}
	_ = sleep(ctx, 300*time.Millisecond)
	total, failed := ld.Stop()
	werr := w.Stop()
	maxHolders := 0
	if s, rerr := w.Result(); rerr == nil {
		maxHolders = s.MaxConcurrent()
	}
	r.add(ToolHBD, SettingDefaults, ScenarioHandovers, 0, "handovers", float64(done))
	r.add(ToolHBD, SettingDefaults, ScenarioHandovers, 0, "requests", float64(total))
	r.add(ToolHBD, SettingDefaults, ScenarioHandovers, 0, "failed_requests", float64(len(failed)))
	r.add(ToolHBD, SettingDefaults, ScenarioHandovers, 0, "max_holders", float64(maxHolders))
	r.logf("hbd handovers: %d in %s, %d requests, %d failed, at most %d holder(s) (address events)",
		done, time.Since(start).Round(time.Second), total, len(failed), maxHolders)
	for i, f := range failed {
		if i == 20 {
			r.logf("  … %d more", len(failed)-20)
			break
		}
		r.logf("  failed: %s", f)
	}
	if werr != nil {
		err = errors.Join(err, werr)
	}
	return err
}
