package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hbdproject/hbd/heartbeat"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/health"
	"github.com/hbdproject/hbd/internal/notify"
)

// reload re-reads the config on SIGHUP and applies what can change live:
// peers, priority (a group's too), tracks (and which count in each group),
// notify hooks, drain, log level and the shared key (a new auth_key_file,
// or the same file rotated in place: its contents are compared). A change
// to anything else (node, cluster, interface, VIPs, the groups' names,
// ids, VIPs and preemption, listen address, timing, control socket,
// metrics address) is refused as
// needing a restart. A broken config is refused with a log line and the old
// one keeps running; the VIP stays where it is either way. The log line
// says what changed.
func (d *Daemon) reload() {
	notifyReloading()
	defer func() { notifyReady(d.stateSummary()) }()
	res, err := config.Load(d.opts.ConfigPath, config.Options{NoBGP: NoBGP})
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
	changed := liveChanges(d.cfg, d.key, nc, res.Key)
	signer, err := heartbeat.NewSigner(res.Key)
	if err != nil { // config.Load refuses empty keys: not reached
		d.log.Error("reload refused: the key cannot sign", "err", err)
		return
	}
	if slices.Contains(changed, "peers") {
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
		for _, g := range d.groups {
			g.act(g.m.SetPeerCount(now, len(nc.Peers)))
		}
	}
	if slices.Contains(changed, "auth key") {
		// Frames signed with the old key fail the new one's tag check, so
		// a fresh receiver (empty replay windows) cannot be fooled by them.
		d.log.Warn("shared key changed: frames are now signed and checked with the new key; peers still on the old one are rejected (bad_tag) until they reload too",
			"old", keyID(d.key), "new", keyID(res.Key), "file", nc.AuthKeyFile)
		d.key, d.signer = res.Key, signer
		d.rx.Store(heartbeat.NewReceiver(res.Key, nc.ClusterID, nc.Node, d.boot))
	}
	elections := nc.Elections() // in the groups' order: needsRestart saw the same groups
	for i, g := range d.groups {
		if e := elections[i]; e.Priority != g.e.Priority {
			g.act(g.m.SetPriority(now, e.Priority))
		}
	}
	if slices.Contains(changed, "tracks") {
		d.stopChecks()
		for i, g := range d.groups {
			for _, t := range g.e.Tracks {
				if !slices.ContainsFunc(elections[i].Tracks, func(n config.Track) bool { return n.Name == t.Name }) {
					g.act(g.m.RemoveCheck(now, t.Name))
				}
			}
		}
		for _, t := range d.cfg.Tracks {
			if !slices.ContainsFunc(nc.Tracks, func(n config.Track) bool { return n.Name == t.Name }) {
				d.metrics.checkUp.Delete(t.Name)
			}
		}
		d.checks = health.New(nc.Tracks, d.log)
		d.startChecks()
	}
	for i, g := range d.groups {
		g.e = elections[i]
	}
	hooks := notify.New(nc.Notify, d.log)
	old := d.hooks
	d.hooks = hooks
	go hooks.Run(d.runCtx)
	_ = old // the old runner ends with the daemon's context; its queue drains first
	d.level.Set(parseLevel(nc.LogLevel))
	d.cfg = nc
	if len(changed) == 0 {
		d.log.Info("config reloaded: nothing changed")
		return
	}
	d.log.Info("config reloaded", "changed", strings.Join(changed, ", "), "priority", nc.Priority, "tracks", len(nc.Tracks))
}

// liveChanges names the settings that differ between the running config
// (a, with its key) and the reloaded one (b), among those a reload
// applies. The key is compared by contents, so a key file rotated in place
// counts.
func liveChanges(a *config.Config, aKey []byte, b *config.Config, bKey []byte) []string {
	var out []string
	ea, eb := a.Elections(), b.Elections()
	for _, c := range []struct {
		name    string
		differs bool
	}{
		{"peers", !slices.Equal(a.Peers, b.Peers)},
		{"auth key", !bytes.Equal(aKey, bKey)},
		{"priority", a.Priority != b.Priority || !slices.EqualFunc(ea, eb, func(x, y config.Election) bool { return x.Priority == y.Priority })},
		{"tracks", !slices.EqualFunc(a.Tracks, b.Tracks, tracksEqual) || !slices.EqualFunc(ea, eb, func(x, y config.Election) bool {
			return slices.EqualFunc(x.Tracks, y.Tracks, func(s, t config.Track) bool { return s.Name == t.Name })
		})},
		{"notify", !reflect.DeepEqual(a.Notify, b.Notify)},
		{"drain", !reflect.DeepEqual(a.Drain, b.Drain) || !slices.EqualFunc(ea, eb, func(x, y config.Election) bool { return reflect.DeepEqual(x.Drain, y.Drain) })},
		{"log_level", a.LogLevel != b.LogLevel},
	} {
		if c.differs {
			out = append(out, c.name)
		}
	}
	return out
}

// keyID names a key in logs without giving it away: the first 8 hex
// digits of its SHA-256.
func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
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
	case a.ControlSocket != b.ControlSocket:
		return "control_socket"
	case a.MetricsAddr() != b.MetricsAddr():
		return "metrics"
	case !reflect.DeepEqual(a.BGP, b.BGP):
		return "bgp"
	case !slices.EqualFunc(a.Elections(), b.Elections(), sameGroup):
		return "groups (their names, ids, VIPs or preemption)"
	}
	return ""
}

// sameGroup reports whether two elections are the same group with the same
// VIPs and preemption: what a reload cannot change.
func sameGroup(x, y config.Election) bool {
	return x.Name == y.Name && x.ID == y.ID && slices.Equal(x.VIPs, y.VIPs) && x.Preempt == y.Preempt && x.PreemptDelay == y.PreemptDelay
}

func tracksEqual(a, b config.Track) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}
