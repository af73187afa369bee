package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/lab"
)

// Load is the planned-handover traffic through a VIP: a new connection
// every 5 ms, and 4 keep-alive streams each with a request every 5 ms.
type Load struct{ ps []*lab.Prober }

// StartLoad starts the load from the client host against /api/whoami
// through the IPv4 VIP.
func (c *Cluster) StartLoad(ctx context.Context) *Load { return c.StartLoadOn(ctx, VIP4) }

// StartLoadOn starts the load from the client host against /api/whoami
// through vip.
func (c *Cluster) StartLoadOn(ctx context.Context, vip netip.Prefix) *Load {
	l := &Load{}
	cfg := lab.ProbeConfig{From: "client", URL: VIPURL(vip, "/api/whoami"), Every: 5 * time.Millisecond, Timeout: 3 * time.Second}
	l.ps = append(l.ps, c.Lab.ProbeWith(ctx, cfg))
	cfg.KeepAlive = true
	for range 4 {
		l.ps = append(l.ps, c.Lab.ProbeWith(ctx, cfg))
	}
	return l
}

// Stop ends the load and returns the number of requests and a line per
// failed one.
func (l *Load) Stop() (total int, failed []string) {
	for i, p := range l.ps {
		p.Stop()
		kind := "new connection"
		if i > 0 {
			kind = fmt.Sprintf("keep-alive %d", i)
		}
		for _, r := range p.Results() {
			total++
			if !r.OK() {
				failed = append(failed, fmt.Sprintf("%s %s: status %d %s", kind, r.Start.Format("15:04:05.000"), r.Status, r.Err))
			}
		}
	}
	return total, failed
}

// Results are the finished requests of every stream so far, in start
// order.
func (l *Load) Results() lab.ProbeResults { return lab.Merged(l.ps...) }

// Handover methods.
const (
	ByCommand = "hbd handover"
	BySIGTERM = "SIGTERM"
)

// HandoverMethod is how the i-th of a series of handovers is made: pairs of
// each, so that each method moves the VIP both ways.
func HandoverMethod(i int) string {
	if (i/2)%2 == 1 {
		return BySIGTERM
	}
	return ByCommand
}

// MoveVIP hands the VIP from master to standby, by `hbd handover` or by
// SIGTERM to master's daemon (which hands over on its way out; it is then
// started again), and waits until standby alone holds it.
func (c *Cluster) MoveVIP(ctx context.Context, master, standby, method string) error {
	switch method {
	case BySIGTERM:
		p := c.Nodes[master].Hbd
		if err := p.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		if err := p.Wait(15 * time.Second); err != nil {
			return fmt.Errorf("cluster: %s did not exit after SIGTERM: %w", master, err)
		}
		if code := p.ExitCode(); code != 0 {
			return fmt.Errorf("cluster: %s exited with %d after SIGTERM; see %s", master, code, p.LogPath())
		}
		if err := c.StartHbd(ctx, master); err != nil {
			return err
		}
	default:
		r, err := c.Handover(ctx, master, standby, 10*time.Second)
		if err != nil {
			return err
		}
		if !r.OK {
			return fmt.Errorf("cluster: handover %s → %s: %s", master, standby, r.Error)
		}
	}
	_, err := c.WaitOnlyHolder(standby, 5*time.Second)
	return err
}

// WaitReadyStandby waits until master is a ready MASTER and sees standby as
// a ready BACKUP (heard, every check passing), bounded by limit.
func (c *Cluster) WaitReadyStandby(ctx context.Context, master, standby string, limit time.Duration) error {
	return c.waitStatus(ctx, master, limit, standby+" to be a ready standby of "+master, func(st *control.Status) bool {
		return st.State == "MASTER" && st.Ready && slices.ContainsFunc(st.Peers, func(p control.Peer) bool {
			return p.Node == standby && p.Alive && p.State == "BACKUP" && p.Ready
		})
	})
}

// WaitReadyStandbyIn is WaitReadyStandby for one VIP group: master is the
// group's ready MASTER and sees standby, heard, as a ready BACKUP in it.
func (c *Cluster) WaitReadyStandbyIn(ctx context.Context, group, master, standby string, limit time.Duration) error {
	return c.waitStatus(ctx, master, limit, standby+" to be a ready standby of "+master+" in group "+group, func(st *control.Status) bool {
		i := slices.IndexFunc(st.Groups, func(g control.Group) bool { return g.Name == group })
		return i >= 0 && st.Groups[i].State == "MASTER" && st.Groups[i].Ready &&
			slices.ContainsFunc(st.Peers, func(p control.Peer) bool { return p.Node == standby && p.Alive }) &&
			slices.ContainsFunc(st.Groups[i].Peers, func(p control.GroupPeer) bool {
				return p.Node == standby && p.State == "BACKUP" && p.Ready
			})
	})
}

// waitStatus polls node's status until ok says yes, bounded by limit (0:
// one look).
func (c *Cluster) waitStatus(ctx context.Context, node string, limit time.Duration, what string, ok func(*control.Status) bool) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := c.Status(ctx, node)
		if err == nil && ok(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: waited %s for %s (last status %+v, %v)", limit, what, st, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
