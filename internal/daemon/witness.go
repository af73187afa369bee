package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/metrics"
	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/witness"
)

// leaser runs the witness calls the core asks for, one at a time, off the
// loop, and feeds the answers back into it.
type leaser struct {
	c     *witness.Client
	close func() error
	reqs  chan election.Action

	bypassed *metrics.Counter // claims made without the lease
	calls    *metrics.CounterVec
}

func newLeaser(cfg *config.Config, d *Daemon) (*leaser, error) {
	w := cfg.Witness
	t := cfg.WitnessTiming()
	rdb, err := redisconn.New(redisconn.Options{
		URL: w.Redis, SentinelMaster: w.SentinelMaster, SentinelAddrs: w.SentinelAddrs,
		DialTimeout: t.Delay, ReadTimeout: t.Delay, WriteTimeout: t.Delay, PoolTimeout: t.Delay,
	})
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	c, err := witness.New(rdb, witness.Config{Key: w.Key, Timing: t})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	l := &leaser{c: c, close: rdb.Close, reqs: make(chan election.Action, 8),
		calls: d.metrics.reg.NewCounterVec("hbd_witness_calls_total",
			"Witness lease calls by op (acquire, renew, release) and result (won, lost, unreachable, error).", "op", "result"),
		bypassed: d.metrics.reg.NewCounter("hbd_witness_bypassed_total",
			"Claims made without the witness lease because it was unreachable (policy available)."),
	}
	d.metrics.leaseHeld = d.metrics.reg.NewGauge("hbd_witness_lease_held", "1 while this node believes it holds the witness lease, 0 otherwise.")
	return l, nil
}

// run serves the core's lease requests until ctx is done.
func (l *leaser) run(ctx context.Context, d *Daemon) error {
	defer l.close()
	for {
		var a election.Action
		select {
		case <-ctx.Done():
			return nil
		case a = <-l.reqs:
		}
		r := l.do(ctx, d, a)
		if a.Lease == election.LeaseRelease {
			continue
		}
		select {
		case d.calls <- func() {
			g := d.groups[0] // a witness comes without groups: one election
			g.act(g.m.LeaseResult(timeNow(), r))
		}:
		case <-ctx.Done():
			return nil
		}
	}
}

func (l *leaser) do(ctx context.Context, d *Daemon, a election.Action) election.LeaseReply {
	r := election.LeaseReply{Op: a.Lease}
	var g witness.Grant
	var err error
	switch a.Lease {
	case election.LeaseAcquire:
		g, err = l.c.Acquire(ctx, d.cfg.Node, a.Epoch)
	case election.LeaseRenew:
		g, err = l.c.Renew(ctx, d.cfg.Node, a.Epoch)
	case election.LeaseRelease:
		err = l.c.Release(ctx, d.cfg.Node)
	}
	result := "won"
	switch {
	case errors.Is(err, witness.ErrUnreachable):
		r.Unreachable, result = true, "unreachable"
		d.log.Warn("witness unreachable", "op", a.Lease.String(), "err", err)
	case err != nil:
		// Not a network failure (a wrong key type, a bad password): treat
		// it as unreachable too, so the policy decides, but say why.
		r.Unreachable, result = true, "error"
		d.log.Error("witness call failed", "op", a.Lease.String(), "err", err)
	case a.Lease == election.LeaseRelease:
		result = "released"
	case g.Won:
		r.Won, r.ValidUntil = true, g.ValidUntil
	default:
		r.Holder, result = g.Holder, "lost"
		if a.Lease == election.LeaseRenew {
			d.log.Warn("witness lease lost", "holder", g.Holder)
		}
	}
	l.calls.With(a.Lease.String(), result).Inc()
	return r
}

// ask hands a lease request to the worker without blocking the loop. The
// core keeps at most one acquire or renew in flight, so the buffer only
// fills if the worker is stuck; then the request is dropped and the core,
// seeing no answer, self-fences in time.
func (l *leaser) ask(a election.Action) bool {
	select {
	case l.reqs <- a:
		return true
	default:
		return false
	}
}
