// Package config reads hbd's YAML configuration strictly, fills in defaults
// and validates it, naming the line and the field of every mistake.
package config

import "time"

// DefaultPort is the UDP and TCP port heartbeats use when the config names
// none.
const DefaultPort = 8707

// Config is one node's configuration file. Field comments are the reference:
// docs/config.md is checked against them by a test.
type Config struct {
	// Node is this node's name, carried in every frame and shown in logs and
	// status. Default: the host name.
	Node string `yaml:"node"`
	// ClusterID separates clusters sharing a network, like VRRP's
	// virtual_router_id; frames of another cluster are rejected. Range 1 to
	// 4294967295. Default: 1.
	ClusterID uint32 `yaml:"cluster_id"`
	// Priority is this node's configured priority; the highest effective
	// priority (priority minus the weights of failing tracks) is master.
	// Range 1 to 255. Default: 100.
	Priority int `yaml:"priority"`
	// Interface is the network interface that carries the VIPs and whose link
	// state is watched. Required.
	Interface string `yaml:"interface"`
	// VIPs are the virtual addresses, in CIDR form, IPv4 and IPv6, that the
	// master holds and announces at L2 (gratuitous ARP, unsolicited NA). At
	// least one is required, here or in bgp.vips.
	VIPs []Prefix `yaml:"vips"`
	// VIPLifetime is the kernel lifetime (valid_lft) the VIPs are added with
	// and that the master keeps renewing, so a killed or frozen daemon loses
	// them by itself. Whole seconds, 1s to 60s. Default: 2s.
	VIPLifetime Duration `yaml:"vip_lifetime"`
	// Listen is the address and port heartbeats are received on, over UDP and
	// TCP, and sent from. Use this host's own address on the heartbeat
	// network, never a VIP. Required; the port defaults to 8707.
	Listen Endpoint `yaml:"listen"`
	// Peers are the other nodes' heartbeat addresses, with optional ports
	// (default: the listen port). At least one is required. With two or
	// more peers (three or more nodes) a node holds the VIP only while in
	// contact with a majority of the cluster, itself included.
	Peers []Endpoint `yaml:"peers"`
	// Interval is the time between two heartbeats to every peer. 5ms to 10s.
	// Default: 5ms (see dead_after).
	Interval Duration `yaml:"interval"`
	// DeadAfter is how long a peer may stay silent on every path before it
	// is declared dead; at least 2 × interval. Default: 300ms. With the
	// 5ms interval this rides out 20% random loss plus a 250ms blackout
	// (the soak test); 50ms/300ms did not (false failovers measured).
	DeadAfter Duration `yaml:"dead_after"`
	// AuthKeyFile is the file holding the shared key (at least 32 bytes,
	// mode 0600 or stricter) that signs every frame. `hbd keygen` writes one.
	// Required.
	AuthKeyFile string `yaml:"auth_key_file"`
	// Preempt lets a node that outranks the current master take the VIP back
	// (by a handover, without two holders). Default: true.
	Preempt *bool `yaml:"preempt"`
	// PreemptDelay is how long a node that outranks the master waits, healthy
	// and in contact, before it preempts. Default: 0s.
	PreemptDelay Duration `yaml:"preempt_delay"`
	// HoldDown is how long a node that has just lost mastership waits before
	// it may preempt again (flap damping); it doubles, up to 16 times, each
	// time mastership is lost soon after it was won. Default: 1s.
	HoldDown Duration `yaml:"hold_down"`
	// ControlSocket is the unix socket `hbd status`, `hbd handover` and
	// `hbd maintenance` talk to (mode 0600). Default: /run/hbd/hbd.sock.
	ControlSocket string `yaml:"control_socket"`
	// Metrics is the address Prometheus metrics are served on, at /metrics.
	// Empty turns them off. Default: 127.0.0.1:9707.
	Metrics *string `yaml:"metrics"`
	// LogLevel is one of debug, info, warn, error. Default: info.
	LogLevel string `yaml:"log_level"`
	// Tracks are health checks whose failures lower this node's priority or
	// put it in FAULT. Default: none.
	Tracks []Track `yaml:"tracks"`
	// Notify names commands run on state transitions. Default: none.
	Notify Notify `yaml:"notify"`
	// Drain says how to drain the local app before a planned handover.
	// Default: none (the VIP moves without draining).
	Drain Drain `yaml:"drain"`
	// Witness is an optional lease in Redis that makes two masters
	// impossible in a two-node cluster (with three or more nodes the
	// majority does that; a witness then adds its lease on top). Default:
	// none (heartbeats alone).
	Witness Witness `yaml:"witness"`
	// Groups are VIP groups, each with its own VIPs and its own election
	// (its own master), all carried by the same heartbeat paths: for
	// active-active, group web1 prefers one node and group web2 the other.
	// With groups, vips stays empty and every VIP belongs to a group. At
	// most 8. Default: none (one election, for vips).
	Groups []Group `yaml:"groups"`
	// BGP announces VIPs as host routes to upstream routers, for routed
	// networks. Default: none (L2 only).
	BGP BGP `yaml:"bgp"`
}

// Witness configures the lease a master must hold in Redis. With it, a
// standby claims only after winning the lease, and a master that cannot
// renew it drops the VIP by itself. Every node of a cluster must use the
// same witness and timing.
type Witness struct {
	// Redis is the standalone Redis URL of the witness, e.g.
	// redis://198.51.100.20:6379/0 (rediss:// for TLS). Either redis or
	// sentinel_master with sentinel_addrs. Default: none (no witness).
	Redis string `yaml:"redis"`
	// SentinelMaster is the name of the master Sentinel monitors.
	// Default: none.
	SentinelMaster string `yaml:"sentinel_master"`
	// SentinelAddrs are the Sentinels' host:port addresses. Default: none.
	SentinelAddrs []string `yaml:"sentinel_addrs"`
	// Key is the lease's key in Redis. Default: hbd:lease:<cluster_id>.
	Key string `yaml:"key"`
	// TTL is the lease's time to live; it must cover the VIP lifetime, the
	// kernel's expiry slack (1.5s), the renew period and one call's budget,
	// with clock drift allowed for: `hbd check` refuses less. A standby
	// waits about one TTL after the master goes silent. Default: the
	// shortest safe TTL (4s with the other defaults).
	TTL Duration `yaml:"ttl"`
	// Renew is how often the master renews the lease. Default: 250ms.
	Renew Duration `yaml:"renew"`
	// Policy is what to do when the witness cannot be reached: safe (never
	// claim without the lease: no split brain, but no failover while Redis
	// is down) or available (fall back to heartbeats alone, logged loudly
	// and counted). Default: safe.
	Policy string `yaml:"policy"`
}

// Enabled reports whether a witness is configured.
func (w *Witness) Enabled() bool { return w.Redis != "" || w.SentinelMaster != "" }

// Track is one health check.
type Track struct {
	// Name identifies the check in logs, status and metrics. Required, unique.
	Name string `yaml:"name"`
	// Type is http, exec or interface. Required.
	Type string `yaml:"type"`
	// URL is the address an http check GETs. Required for http.
	URL string `yaml:"url"`
	// ExpectStatus is the HTTP status an http check expects. Default: 200.
	ExpectStatus int `yaml:"expect_status"`
	// Command is the program and arguments an exec check runs, without a
	// shell; exit status 0 is healthy. Required for exec.
	Command []string `yaml:"command"`
	// Interface is the interface whose link an interface check watches.
	// Required for interface.
	Interface string `yaml:"interface"`
	// Interval is the time between two runs. Default: 200ms.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one run; an exec check is killed when it expires. At
	// most the interval. Default: the interval.
	Timeout Duration `yaml:"timeout"`
	// Rise is how many passes in a row make a failing check healthy.
	// Default: 2.
	Rise int `yaml:"rise"`
	// Fall is how many failures in a row make a healthy check fail.
	// Default: 2.
	Fall int `yaml:"fall"`
	// Weight is subtracted from the priority while the check fails. Either
	// weight or fault, not both. Default: 0.
	Weight int `yaml:"weight"`
	// Fault puts the node in FAULT (never holding the VIP) while the check
	// fails. Default: false.
	Fault bool `yaml:"fault"`
}

// Notify holds the commands run on transitions, like keepalived's
// notify_master, notify_backup and notify_fault. Each is a program and its
// arguments, run without a shell, with HBD_STATE, HBD_PREVIOUS_STATE,
// HBD_NODE, HBD_VIPS, HBD_REASON and HBD_EPOCH in its environment.
type Notify struct {
	// Master runs on becoming master. Default: none.
	Master []string `yaml:"master"`
	// Backup runs on becoming backup. Default: none.
	Backup []string `yaml:"backup"`
	// Fault runs on entering FAULT. Default: none.
	Fault []string `yaml:"fault"`
	// Any runs on every transition, after the state's own command.
	// Default: none.
	Any []string `yaml:"any"`
	// Timeout bounds each command; it is killed when it expires.
	// Default: 10s.
	Timeout Duration `yaml:"timeout"`
}

// Drain says how `hbd handover` drains the local app before it releases
// the VIP.
type Drain struct {
	// URL is POSTed to put the app in drain mode, e.g.
	// http://localhost/admin/drain with Socket. Default: none.
	URL string `yaml:"url"`
	// InflightURL is polled until it reports {"inflight": 0}, e.g.
	// http://localhost/admin/inflight. Default: none.
	InflightURL string `yaml:"inflight_url"`
	// UndrainURL is POSTed when a handover fails, to put the app back in
	// service. Default: none.
	UndrainURL string `yaml:"undrain_url"`
	// Socket, when set, is the unix socket the URLs are requested
	// through (their host is then only the Host header), e.g.
	// /run/hbd-webapp/admin.sock, the web app's default. Default: none.
	Socket string `yaml:"socket"`
	// TokenFile, when set, names a file whose content is sent with each
	// request as "Authorization: Bearer TOKEN" (the web app's
	// --admin-token-file). Default: none.
	TokenFile string `yaml:"token_file"`
	// Command is run instead of (or after) the URLs; exit 0 means drained.
	// Default: none.
	Command []string `yaml:"command"`
	// Timeout bounds the whole drain step. Default: 5s.
	Timeout Duration `yaml:"timeout"`
}

// Defaults, each with its reason.
const (
	defaultPriority  = 100
	defaultInterval  = 5 * time.Millisecond   // many small beats: a burst of loss rarely eats them all
	defaultDeadAfter = 300 * time.Millisecond // a 250ms blackout plus 9 more lost beats at 20% loss
	defaultLifetime  = 2 * time.Second        // the kernel counts whole seconds; 1s would expire between renewals under load
	defaultHoldDown  = time.Second
	defaultSocket    = "/run/hbd/hbd.sock"
	defaultMetrics   = "127.0.0.1:9707"
	defaultTrackIvl  = 200 * time.Millisecond
	defaultNotifyTO  = 10 * time.Second
	defaultDrainTO   = 5 * time.Second
	// defaultWitnessRenew keeps Redis traffic low (4 calls a second) while
	// leaving the lease most of its TTL as a buffer against a slow Redis.
	defaultWitnessRenew = 250 * time.Millisecond
)

// PreemptEnabled reports the effective preempt setting.
func (c *Config) PreemptEnabled() bool { return c.Preempt == nil || *c.Preempt }

// MetricsAddr returns the metrics address, "" when turned off.
func (c *Config) MetricsAddr() string {
	if c.Metrics == nil {
		return defaultMetrics
	}
	return *c.Metrics
}
