package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// bgpCablePulls measures cable pulls in BGP mode, hbd at its defaults:
// the client behind an FRR router, pc01 and pc02 announcing the VIP to it
// over eBGP (cluster.StartRouted). The figure is the same as the L2 one:
// last good → first good response from the standby through the VIP. Runs
// in a lab of its own after the settings; keepalived has no counterpart.
func (r *runner) bgpCablePulls(ctx context.Context) (err error) {
	r.logf("BGP mode: %d cable pulls (hbd only, FRR router)", r.o.Runs)
	if t, err := hbdDefaultTiming(); err == nil {
		r.phase = t.Interval // faults land anywhere in a heartbeat interval
	}
	opts := lab.Options{Hosts: []string{master, standby, "redis", "router", "client"}}
	if r.o.LogDir != "" {
		opts.Dir = filepath.Join(r.o.LogDir, "bgp")
	}
	l, err := lab.New(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	c, frr, err := cluster.StartRouted(ctx, l, cluster.Options{Bin: r.o.Bin})
	if frr != nil {
		defer func() { err = errors.Join(err, frr.Stop()) }()
	}
	if err != nil {
		return err
	}
	url := cluster.BGPURL("/api/whoami")
	for i := 1; i <= r.o.Runs; i++ {
		if err := bgpStable(ctx, c, frr, url); err != nil {
			return err
		}
		if err := r.bgpCablePull(ctx, l, url, i); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.warn("BGP cable pull %d: %v", i, err)
		}
	}
	return nil
}

// bgpStable waits until the router's best path to the VIP is the master's
// and three requests in a row through it are answered by the master.
func bgpStable(ctx context.Context, c *cluster.Cluster, frr *lab.FRR, url string) error {
	if _, err := frr.WaitBest(ctx, lab.BGPVIP4, c.Lab.Host(master).IPv4.String(), stableLimit); err != nil {
		return fmt.Errorf("BGP pair not stable: %w", err)
	}
	deadline := time.Now().Add(stableLimit)
	for good := 0; good < 3; {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		node, err := c.ServedBy(rctx, url)
		cancel()
		if err == nil && node == master {
			good++
		} else {
			good = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("BGP pair not stable: the VIP not answered by %s within %s (last %q, %v)", master, stableLimit, node, err)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// bgpCablePull pulls the master's cable, measures the outage through the
// router, and plugs it in again (the master takes the VIP back by a
// handover once it is back).
func (r *runner) bgpCablePull(ctx context.Context, l *lab.Lab, url string, run int) (err error) {
	f := startFleetAt(ctx, l, url)
	defer f.Stop()
	if err := sleep(ctx, r.preFault()); err != nil {
		return err
	}
	t0 := time.Now()
	if err := l.CablePull(master); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.CablePlug(master)) }()
	g, _, err := outageAfter(ctx, f, t0)
	if err != nil {
		return err
	}
	r.add(ToolHBD, SettingDefaults, ScenarioBGPCablePull, run, "gap_ms", ms(g.Duration()))
	r.add(ToolHBD, SettingDefaults, ScenarioBGPCablePull, run, "failed_probes", float64(g.Failures))
	r.logf("%-10s %-8s BGP cable pull %2d: outage %6.1f ms, %3d failed probes", ToolHBD, SettingDefaults, run, ms(g.Duration()), g.Failures)
	return nil
}
