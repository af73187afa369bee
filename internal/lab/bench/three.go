package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// third is the third host of the three-node series, the lowest priority.
const third = "pc03"

var threeHosts = []string{master, standby, third}

// threeNodeSeries is hbd's three-node series at the defaults, beside the
// pair's figures (keepalived has no quorum to compare): Options.Runs cable
// pulls of the master, then Options.Runs 2/1 partitions that cut the
// master off from both standbys while every host still reaches the
// client. For each partition it records when the master cut off released
// the VIP (from rtnetlink address events), the client's gap until the
// majority's new master answered, and how long both sides held the VIP.
func (r *runner) threeNodeSeries(ctx context.Context) (err error) {
	l, err := newLabOf(ctx, "b3n", pairConfig{logDir: r.o.LogDir, name: "three-nodes"}, threeHosts...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	c, err := cluster.Start(ctx, l, cluster.Options{
		Bin: r.o.Bin, Nodes: threeHosts,
		Priority: map[string]int{master: prioMaster, standby: prioStandby, third: prioStandby / 2},
	})
	if err != nil {
		return err
	}
	settle := func() error {
		if _, err := c.WaitOnlyHolder(master, stableLimit); err != nil {
			return err
		}
		return sleep(ctx, failbackSettle)
	}
	if err := settle(); err != nil {
		return err
	}
	var errs []error
	for _, sc := range []struct {
		name string
		run  func(context.Context, *lab.Lab, int) error
	}{{"cable pull", r.threeCablePull}, {"partition", r.partition}} {
		for i := 1; i <= r.o.Runs && ctx.Err() == nil; i++ {
			if err := sc.run(ctx, l, i); err != nil {
				r.warn("hbd three nodes %s %d: %v", sc.name, i, err)
				errs = append(errs, err)
			}
			if err := settle(); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
	}
	return errors.Join(errs...)
}

// threeCablePull pulls the master's cable and measures the client's gap
// until the best standby answers.
func (r *runner) threeCablePull(ctx context.Context, l *lab.Lab, run int) error {
	g, _, err := r.faultGap(ctx, l, func() error { return l.CablePull(master) }, func() error { return l.CablePlug(master) })
	if err != nil {
		return err
	}
	r.add(ToolHBD, SettingDefaults, ScenarioThreeCablePull, run, "gap_ms", ms(g.Duration()))
	r.add(ToolHBD, SettingDefaults, ScenarioThreeCablePull, run, "failed_probes", float64(g.Failures))
	r.logf("hbd        three nodes cable pull %2d: outage %6.1f ms, %3d failed probes", run, ms(g.Duration()), g.Failures)
	return nil
}

// faultGap probes the VIP from the client, makes the fault, waits for the
// standby's first good answer, undoes the fault and returns the client's
// outage and the fault's time.
func (r *runner) faultGap(ctx context.Context, l *lab.Lab, fault, undo func() error) (lab.Gap, time.Time, error) {
	f := startFleet(ctx, l)
	defer f.Stop()
	if err := sleep(ctx, r.preFault()); err != nil {
		return lab.Gap{}, time.Time{}, err
	}
	t0 := time.Now()
	if err := fault(); err != nil {
		return lab.Gap{}, t0, errors.Join(err, undo())
	}
	werr := waitFirstGood(ctx, t0, standby, failoverLimit, f.Results)
	if werr == nil {
		werr = sleep(ctx, postFirstGood)
	}
	f.Stop()
	if err := errors.Join(werr, undo()); err != nil {
		return lab.Gap{}, t0, err
	}
	g, ok := outage(f.Results(), t0, standby)
	if !ok {
		return lab.Gap{}, t0, errors.New("no outage found in the probe results")
	}
	return g, t0, nil
}

// partition cuts the master off from both standbys (every host still
// reaches the client) and measures the release on the minority side, the
// client's gap and any overlap of holders.
func (r *runner) partition(ctx context.Context, l *lab.Lab, run int) error {
	w, err := l.WatchHolders(ctx, threeHosts, lab.HostIf, vip)
	if err != nil {
		return err
	}
	defer w.Stop()
	g, t0, err := r.faultGap(ctx, l, func() error { return l.Partition([]string{master}, []string{standby, third}) },
		func() error { return errors.Join(w.Stop(), l.Heal()) })
	if err != nil {
		return err
	}
	s, err := w.Result()
	if err != nil {
		return err
	}
	release := time.Duration(-1)
	for _, e := range w.Events() {
		if e.Host == master && !e.Added && e.At.After(t0) {
			release = e.At.Sub(t0)
			break
		}
	}
	if release < 0 {
		return fmt.Errorf("%s never released the VIP while cut off", master)
	}
	double := s.Window(t0, time.Now()).DoubleHolderDuration()
	r.add(ToolHBD, SettingDefaults, ScenarioPartition, run, "release_ms", ms(release))
	r.add(ToolHBD, SettingDefaults, ScenarioPartition, run, "gap_ms", ms(g.Duration()))
	r.add(ToolHBD, SettingDefaults, ScenarioPartition, run, "double_holder_ms", ms(double))
	r.logf("hbd        three nodes 2/1 partition %2d: cut-off master released after %6.1f ms, outage %6.1f ms, two holders for %.0f ms",
		run, ms(release), ms(g.Duration()), ms(double))
	return nil
}
