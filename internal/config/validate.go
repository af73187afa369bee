package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/witness/lease"
)

// MinKeyLen is the shortest shared key accepted, in bytes.
const MinKeyLen = 32

type validator struct {
	idx      *index
	opts     Options
	path     string
	errs     Errors
	warnings []*FieldError
}

func (v *validator) fail(field, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Field: field, Line: v.idx.line(field), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warn(field, format string, args ...any) {
	v.warnings = append(v.warnings, &FieldError{Field: field, Line: v.idx.line(field), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) defaults(c *Config) {
	if c.Node == "" {
		host := os.Hostname
		if v.opts.Hostname != nil {
			host = v.opts.Hostname
		}
		if h, err := host(); err == nil {
			c.Node = h
		}
	}
	if c.ClusterID == 0 && v.idx.line("cluster_id") == 0 {
		c.ClusterID = 1
	}
	if c.Priority == 0 && v.idx.line("priority") == 0 {
		c.Priority = defaultPriority
	}
	setDur(&c.VIPLifetime, defaultLifetime)
	setDur(&c.Interval, defaultInterval)
	setDur(&c.DeadAfter, defaultDeadAfter)
	if v.idx.line("hold_down") == 0 {
		c.HoldDown = Duration(defaultHoldDown)
	}
	if c.ControlSocket == "" {
		c.ControlSocket = defaultSocket
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Listen.IsValid() && c.Listen.Port() == 0 {
		c.Listen = Endpoint{netip.AddrPortFrom(c.Listen.Addr(), DefaultPort)}
	}
	for i, p := range c.Peers {
		if p.IsValid() && p.Port() == 0 {
			c.Peers[i] = Endpoint{netip.AddrPortFrom(p.Addr(), c.Listen.Port())}
		}
	}
	for i := range c.Tracks {
		t := &c.Tracks[i]
		setDur(&t.Interval, defaultTrackIvl)
		setDur(&t.Timeout, t.Interval.D())
		if t.Rise == 0 {
			t.Rise = 2
		}
		if t.Fall == 0 {
			t.Fall = 2
		}
		if t.Type == "http" && t.ExpectStatus == 0 {
			t.ExpectStatus = 200
		}
	}
	setDur(&c.Notify.Timeout, defaultNotifyTO)
	if c.Witness.Enabled() {
		setDur(&c.Witness.Renew, defaultWitnessRenew)
		if c.Witness.Policy == "" {
			c.Witness.Policy = "safe"
		}
		if c.Witness.Key == "" {
			c.Witness.Key = fmt.Sprintf("hbd:lease:%d", c.ClusterID)
		}
		if c.Witness.TTL == 0 {
			c.Witness.TTL = Duration(c.witnessTiming().WithDefaults().TTL)
		}
	}
	setDur(&c.Drain.Timeout, defaultDrainTO)
	v.defaultsBGP(c)
	if c.Preempt == nil {
		t := true
		c.Preempt = &t
	}
	if c.Metrics == nil {
		m := defaultMetrics
		c.Metrics = &m
	}
	v.defaultsGroups(c)
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// validate checks c and returns the shared key when its file is good.
func (v *validator) validate(c *Config) []byte {
	if c.Node == "" {
		v.fail("node", "required (and the host name could not be read)")
	} else if len(c.Node) > 64 {
		v.fail("node", "%d bytes long; at most 64", len(c.Node))
	}
	if c.ClusterID == 0 {
		v.fail("cluster_id", "must be 1 or more")
	}
	if c.Priority < 1 || c.Priority > 255 {
		v.fail("priority", "%d is out of range 1..255", c.Priority)
	}
	v.validateInterface("interface", c.Interface, true)
	if len(c.VIPs) == 0 && len(c.Groups) == 0 && !c.BGP.Enabled() {
		v.fail("vips", "at least one VIP is required, e.g. [198.51.100.10/24] (or groups, or bgp.vips)")
	}
	seenVIP := map[netip.Addr]string{}
	for i, p := range c.VIPs {
		v.checkVIP(fmt.Sprintf("vips[%d]", i), p.Addr(), seenVIP)
	}
	v.validateGroups(c, seenVIP)
	if lt := c.VIPLifetime.D(); lt < time.Second || lt > time.Minute || lt%time.Second != 0 {
		v.fail("vip_lifetime", "%s: must be whole seconds from 1s to 60s (the kernel counts whole seconds)", lt)
	}
	if !c.Listen.IsValid() {
		v.fail("listen", "required: this host's heartbeat address, e.g. 198.51.100.11:%d", DefaultPort)
	} else if _, isVIP := seenVIP[c.Listen.Addr()]; isVIP {
		v.fail("listen", "%s is a VIP; listen on this host's own address", c.Listen.Addr())
	}
	if len(c.Peers) == 0 {
		v.fail("peers", "at least one peer is required, e.g. [198.51.100.12]")
	}
	seenPeer := map[netip.AddrPort]int{}
	for i, p := range c.Peers {
		f := fmt.Sprintf("peers[%d]", i)
		switch {
		case !p.IsValid():
			v.fail(f, "empty address")
		case c.Listen.IsValid() && p.Addr() == c.Listen.Addr():
			v.fail(f, "%s is this node's own listen address: a peer must be another host", p.Addr())
		case p.Addr().IsUnspecified() || p.Addr().IsMulticast():
			v.fail(f, "%s cannot be a peer (unspecified or multicast)", p.Addr())
		}
		if _, isVIP := seenVIP[p.Addr()]; isVIP {
			v.fail(f, "%s is a VIP, not a peer's own address", p.Addr())
		}
		if j, dup := seenPeer[p.AddrPort]; dup {
			v.fail(f, "%s is listed twice (also peers[%d])", p, j)
		}
		seenPeer[p.AddrPort] = i
	}
	iv, da := c.Interval.D(), c.DeadAfter.D()
	if iv < 5*time.Millisecond || iv > 10*time.Second {
		v.fail("interval", "%s is out of range 5ms..10s", iv)
	}
	if da < 2*iv {
		v.fail("dead_after", "%s is less than 2 × interval (%s): one lost frame would cause a failover", da, 2*iv)
	}
	if c.PreemptDelay < 0 {
		v.fail("preempt_delay", "must not be negative")
	}
	if c.HoldDown < 0 {
		v.fail("hold_down", "must not be negative")
	}
	if !filepath.IsAbs(c.ControlSocket) {
		v.fail("control_socket", "%q must be an absolute path", c.ControlSocket)
	}
	if m := c.MetricsAddr(); m != "" {
		if _, _, err := net.SplitHostPort(m); err != nil {
			v.fail("metrics", "%q is not host:port (empty turns metrics off)", m)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		v.fail("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}
	v.validateTracks(c)
	v.validateCommand("notify.master", c.Notify.Master)
	v.validateCommand("notify.backup", c.Notify.Backup)
	v.validateCommand("notify.fault", c.Notify.Fault)
	v.validateCommand("notify.any", c.Notify.Any)
	v.validateDrain("drain", &c.Drain)
	v.validateWitness(c)
	v.validateBGP(c, seenVIP)
	return v.validateKey(c)
}

// checkVIP checks one VIP address written at field, and that no other
// field (recorded in seen) names it too.
func (v *validator) checkVIP(field string, a netip.Addr, seen map[netip.Addr]string) {
	switch {
	case a.IsLoopback(), a.IsMulticast(), a.IsUnspecified(), a.IsLinkLocalUnicast():
		v.fail(field, "%s cannot be a VIP (loopback, multicast, unspecified or link-local)", a)
	case a.Is4In6():
		v.fail(field, "%s is an IPv4-mapped IPv6 address; write the IPv4 form", a)
	}
	if other, dup := seen[a]; dup {
		v.fail(field, "%s is listed twice (also %s)", a, other)
		return
	}
	seen[a] = field
}

func (v *validator) validateDrain(f string, d *Drain) {
	v.validateURL(f+".url", d.URL)
	v.validateURL(f+".inflight_url", d.InflightURL)
	v.validateURL(f+".undrain_url", d.UndrainURL)
	v.validateCommand(f+".command", d.Command)
	if d.Socket != "" && !filepath.IsAbs(d.Socket) {
		v.fail(f+".socket", "%q must be an absolute path", d.Socket)
	}
	if d.TokenFile != "" && !filepath.IsAbs(d.TokenFile) {
		v.fail(f+".token_file", "%q must be an absolute path", d.TokenFile)
	}
}

func (v *validator) validateWitness(c *Config) {
	w := &c.Witness
	if !w.Enabled() {
		if w.Key != "" || w.TTL != 0 || w.Renew != 0 || w.Policy != "" || len(w.SentinelAddrs) > 0 {
			v.fail("witness", "set redis (a URL) or sentinel_master with sentinel_addrs, or remove the witness section")
		}
		return
	}
	if w.Redis != "" && w.SentinelMaster != "" {
		v.fail("witness.redis", "set either redis or sentinel_master, not both")
	}
	if w.Redis != "" && !strings.HasPrefix(w.Redis, "redis://") && !strings.HasPrefix(w.Redis, "rediss://") {
		v.fail("witness.redis", "%q: want a redis:// or rediss:// URL", w.Redis)
	}
	if w.SentinelMaster != "" && len(w.SentinelAddrs) == 0 {
		v.fail("witness.sentinel_addrs", "required with sentinel_master: the Sentinels' host:port addresses")
	}
	for i, a := range w.SentinelAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			v.fail(fmt.Sprintf("witness.sentinel_addrs[%d]", i), "%q is not host:port", a)
		}
	}
	switch w.Policy {
	case "safe", "available":
	default:
		v.fail("witness.policy", "%q: want safe or available", w.Policy)
	}
	if w.Renew.D() < 10*time.Millisecond || w.Renew.D() > time.Second {
		v.fail("witness.renew", "%s is out of range 10ms..1s", w.Renew)
	}
	if err := lease.Validate(c.witnessTiming()); err != nil {
		v.fail("witness.ttl", "%v", err)
	}
}

// witnessTiming is the lease timing the config implies.
func (c *Config) witnessTiming() lease.Timing {
	return lease.Timing{
		Interval:  c.Interval.D(),
		DeadAfter: c.DeadAfter.D(),
		Lifetime:  c.VIPLifetime.D(),
		TTL:       c.Witness.TTL.D(),
		Renew:     c.Witness.Renew.D(),
	}
}

// WitnessTiming is the lease timing of a loaded config, defaults filled in.
func (c *Config) WitnessTiming() lease.Timing { return c.witnessTiming().WithDefaults() }

func (v *validator) validateInterface(field, name string, required bool) {
	if name == "" {
		if required {
			v.fail(field, "required: the interface that carries the VIPs, e.g. eth0")
		}
		return
	}
	exists := v.opts.InterfaceExists
	if exists == nil {
		exists = func(n string) bool { _, err := net.InterfaceByName(n); return err == nil }
	}
	if !exists(name) {
		if v.opts.InterfaceMayBeMissing {
			v.warn(field, "interface %q does not exist on this machine (an error for hbd run)", name)
		} else {
			v.fail(field, "interface %q does not exist", name)
		}
	}
}

func (v *validator) validateTracks(c *Config) {
	names := map[string]int{}
	for i := range c.Tracks {
		t := &c.Tracks[i]
		f := fmt.Sprintf("tracks[%d]", i)
		if t.Name == "" {
			v.fail(f+".name", "required")
		} else if j, dup := names[t.Name]; dup {
			v.fail(f+".name", "%q is used twice (also tracks[%d])", t.Name, j)
		}
		names[t.Name] = i
		switch t.Type {
		case "http":
			if t.URL == "" {
				v.fail(f+".url", "required for an http check")
			} else {
				v.validateURL(f+".url", t.URL)
			}
			if t.ExpectStatus < 100 || t.ExpectStatus > 599 {
				v.fail(f+".expect_status", "%d is not an HTTP status", t.ExpectStatus)
			}
		case "exec":
			if len(t.Command) == 0 {
				v.fail(f+".command", "required for an exec check: a program and its arguments")
			}
			v.validateCommand(f+".command", t.Command)
		case "interface":
			if t.Interface == "" {
				v.fail(f+".interface", "required for an interface check")
			} else {
				v.validateInterface(f+".interface", t.Interface, true)
			}
		case "":
			v.fail(f+".type", "required: http, exec or interface")
		default:
			v.fail(f+".type", "%q: want http, exec or interface", t.Type)
		}
		if t.Interval.D() < 10*time.Millisecond {
			v.fail(f+".interval", "%s is shorter than 10ms", t.Interval)
		}
		if t.Timeout.D() <= 0 || t.Timeout > t.Interval {
			v.fail(f+".timeout", "%s must be positive and at most the interval (%s)", t.Timeout, t.Interval)
		}
		if t.Rise < 1 {
			v.fail(f+".rise", "must be 1 or more")
		}
		if t.Fall < 1 {
			v.fail(f+".fall", "must be 1 or more")
		}
		if t.Weight < 0 || t.Weight > 254 {
			v.fail(f+".weight", "%d is out of range 0..254", t.Weight)
		}
		if t.Weight != 0 && t.Fault {
			v.fail(f+".fault", "set either weight or fault, not both")
		}
		if t.Weight == 0 && !t.Fault {
			v.fail(f+".weight", "a track needs a weight (subtracted while failing) or fault: true")
		}
	}
}

func (v *validator) validateCommand(field string, argv []string) {
	if len(argv) == 0 {
		return
	}
	if !filepath.IsAbs(argv[0]) {
		v.fail(field, "%q: the program must be an absolute path (commands run without a shell or PATH)", argv[0])
	}
}

func (v *validator) validateURL(field, u string) {
	if u == "" {
		return
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		v.fail(field, "%q: want an http:// or https:// URL", u)
	}
}

func (v *validator) validateKey(c *Config) []byte {
	if c.AuthKeyFile == "" {
		v.fail("auth_key_file", "required: a file with the shared key (hbd keygen > /etc/hbd/key)")
		return nil
	}
	key, err := ReadKey(RelTo(v.path, c.AuthKeyFile))
	if err != nil {
		v.fail("auth_key_file", "%v", err)
		return nil
	}
	return key
}

// suggest proposes the known field closest to a misspelt one.
func suggest(name string) string {
	best, bestD := "", 3
	for _, f := range knownFields() {
		if d := editDistance(name, f); d < bestD {
			best, bestD = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func knownFields() []string {
	var out []string
	for _, t := range []reflect.Type{reflect.TypeOf(Config{}), reflect.TypeOf(Track{}), reflect.TypeOf(Notify{}), reflect.TypeOf(Drain{}),
		reflect.TypeOf(Witness{}), reflect.TypeOf(Group{}), reflect.TypeOf(BGP{}), reflect.TypeOf(BGPVIP{}), reflect.TypeOf(Neighbour{})} {
		for i := 0; i < t.NumField(); i++ {
			if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" {
				out = append(out, tag)
			}
		}
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
