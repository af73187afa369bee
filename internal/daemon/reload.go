package daemon

import (
	"fmt"
	"slices"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/health"
	"github.com/hbdproject/hbd/internal/notify"
)

// reload re-reads the config on SIGHUP and applies what can change live:
// peers, priority, tracks, notify hooks, drain and log level. A change to
// anything else (node, cluster, interface, VIPs, listen address, timing,
// key file, control socket, metrics address) is refused as needing a
// restart. A broken
// config is refused with a log line and the old one keeps running; the
// VIP stays where it is either way.
func (d *Daemon) reload() {
	notifyReloading()
	defer notifyReady(d.m.State().String())
	res, err := config.Load(d.opts.ConfigPath, config.Options{})
	if err != nil {
		d.log.Error("reload refused: the config has errors; still running the old one", "err", err)
		return
	}
	nc := res.Config
	if why := needsRestart(d.cfg, nc); why != "" {
		d.log.Error("reload refused: "+why+" can only change with a restart; still running the old config", "err", why)
		return
	}
	now := time.Now()
	if !slices.Equal(nc.Peers, d.cfg.Peers) {
		// New peers: reopen both paths on the same address. Heartbeats
		// pause for the milliseconds this takes, far below dead_after.
		d.paths.close()
		if err := d.openPaths(peerAddrs(nc)); err != nil {
			d.log.Error("reopening the heartbeat paths for the new peers; keeping the old peers", "err", err)
			if err2 := d.openPaths(peerAddrs(d.cfg)); err2 != nil {
				d.log.Error("reopening the heartbeat paths for the old peers", "err", err2)
			}
			return
		}
		d.act(d.m.SetPeerCount(now, len(nc.Peers)))
		d.log.Info("peers changed", "peers", len(nc.Peers))
	}
	if nc.Priority != d.cfg.Priority {
		d.act(d.m.SetPriority(now, nc.Priority))
	}
	if !slices.EqualFunc(nc.Tracks, d.cfg.Tracks, tracksEqual) {
		d.stopChecks()
		for _, t := range d.cfg.Tracks {
			if !slices.ContainsFunc(nc.Tracks, func(n config.Track) bool { return n.Name == t.Name }) {
				d.act(d.m.RemoveCheck(now, t.Name))
				d.metrics.checkUp.DeleteLabelValues(t.Name)
			}
		}
		d.checks = health.New(nc.Tracks, d.log)
		d.startChecks()
	}
	hooks := notify.New(nc.Notify, d.log)
	old := d.hooks
	d.hooks = hooks
	go hooks.Run(d.runCtx)
	_ = old // the old runner ends with the daemon's context; its queue drains first
	d.level.Set(parseLevel(nc.LogLevel))
	d.cfg = nc
	d.log.Info("config reloaded", "priority", nc.Priority, "tracks", len(nc.Tracks))
}

// needsRestart names the first setting that differs and cannot change live.
func needsRestart(a, b *config.Config) string {
	switch {
	case a.Node != b.Node:
		return "node"
	case a.ClusterID != b.ClusterID:
		return "cluster_id"
	case a.Interface != b.Interface:
		return "interface"
	case !slices.Equal(a.VIPs, b.VIPs):
		return "vips"
	case a.VIPLifetime != b.VIPLifetime:
		return "vip_lifetime"
	case a.Listen != b.Listen:
		return "listen"
	case a.Interval != b.Interval || a.DeadAfter != b.DeadAfter:
		return "interval/dead_after"
	case a.PreemptEnabled() != b.PreemptEnabled() || a.PreemptDelay != b.PreemptDelay || a.HoldDown != b.HoldDown:
		return "preempt/preempt_delay/hold_down"
	case a.AuthKeyFile != b.AuthKeyFile:
		return "auth_key_file"
	case a.ControlSocket != b.ControlSocket:
		return "control_socket"
	case a.MetricsAddr() != b.MetricsAddr():
		return "metrics"
	}
	return ""
}

func tracksEqual(a, b config.Track) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}
