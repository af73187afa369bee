package config

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BGP announces VIPs as host routes (/32, /128) to upstream routers over
// eBGP, for routed networks where the hosts share no L2 segment with their
// clients. The master adds these VIPs to the loopback or a dummy interface (no
// ARP) and
// announces them; the election is the same as for the L2 VIPs.
type BGP struct {
	// LocalAS is this node's AS number. Required with bgp.
	LocalAS uint32 `yaml:"local_as"`
	// RouterID is the BGP identifier, an IPv4 address unique among the
	// router's neighbours. Default: the listen address when it is IPv4.
	RouterID string `yaml:"router_id"`
	// Interface is the local interface the BGP VIPs are added to: the
	// loopback, or a dummy interface that hbd creates when it is missing
	// (e.g. hbd0). Not the interface. Default: lo.
	Interface string `yaml:"interface"`
	// VIPs are the addresses announced over BGP, each a /32 or /128.
	// Required with bgp, at least one.
	VIPs []BGPVIP `yaml:"vips"`
	// Neighbours are the upstream routers. Required with bgp, at least one.
	Neighbours []Neighbour `yaml:"neighbours"`
	// NextHop is the next hop of the IPv4 routes. Default: the session's
	// own address.
	NextHop string `yaml:"next_hop"`
	// NextHop6 is the next hop of the IPv6 routes; with it, IPv6 VIPs can
	// go over an IPv4 session. Default: the session's own address.
	NextHop6 string `yaml:"next_hop6"`
	// MED is the fixed MULTI_EXIT_DISC of the master's routes, 0 to
	// 4294967294. Default: 4294967295 minus the election epoch, so the
	// newest master's route is preferred over a dead master's that the
	// router has not yet timed out.
	MED *uint32 `yaml:"med"`
	// Prepend is how many extra copies of local_as every route's AS path
	// carries, 0 to 10. Default: 0.
	Prepend int `yaml:"prepend"`
	// StandbyAnnounce makes a backup announce the VIPs with a worse path
	// (standby_prepend more AS path copies, the worst MED), so the router
	// already knows it when the master's route goes. Default: false (a
	// backup announces nothing).
	StandbyAnnounce bool `yaml:"standby_announce"`
	// StandbyPrepend is how many more AS path copies a backup's route
	// and an old master's route during a hand-off carry, 1 to 10.
	// Default: 3.
	StandbyPrepend int `yaml:"standby_prepend"`
}

// BGPVIP is one VIP announced over BGP.
type BGPVIP struct {
	// Address is the VIP as a host route, e.g. 198.51.100.200/32. Required.
	Address Prefix `yaml:"address"`
	// Communities are standard communities (AS:VALUE, or no-export,
	// no-advertise) attached to its route. Default: none.
	Communities []string `yaml:"communities"`
}

// Neighbour is one upstream router.
type Neighbour struct {
	// Address is the router's address on a network this host is on (eBGP,
	// one hop). Required.
	Address string `yaml:"address"`
	// AS is the router's AS number; it must differ from local_as (eBGP).
	// Required.
	AS uint32 `yaml:"as"`
	// PasswordFile names a file holding the TCP MD5 key (RFC 2385) of the
	// session, 1 to 80 bytes, mode 0600 or stricter. Default: none.
	PasswordFile string `yaml:"password_file"`
	// HoldTime is the session's hold time, whole seconds, at least 3s: a
	// dead host's routes are withdrawn by the router after it. Default: 9s.
	HoldTime Duration `yaml:"hold_time"`
	// Port is the router's BGP port. Default: 179.
	Port uint16 `yaml:"port"`
}

// InterfaceName is the dummy interface's name, defaulted when unset
// (for a config read without defaults).
func (b *BGP) InterfaceName() string {
	if b.Interface == "" {
		return defaultBGPInterface
	}
	return b.Interface
}

// Enabled reports whether a bgp section is configured.
func (b *BGP) Enabled() bool { return b.LocalAS != 0 || len(b.VIPs) > 0 || len(b.Neighbours) > 0 }

// BGP defaults, each with its reason.
const (
	// defaultBGPInterface: every kernel has one, and nothing ARPs there.
	defaultBGPInterface = "lo"
	// defaultHoldTime: three keepalives of 3 s, a common data-centre
	// setting (RFC 4271 suggests 90 s, far too long for a VIP); the
	// router's backstop when a host dies.
	defaultHoldTime = 9 * time.Second
	// defaultStandbyPrepend makes a standby's route clearly worse than a
	// master's even when the master prepends a little itself.
	defaultStandbyPrepend = 3
	// bgpPort is BGP's well-known port (RFC 4271).
	bgpPort = 179
	// standbyMED is the MED of a standby's route, the worst there is.
	standbyMED = math.MaxUint32
)

func (v *validator) defaultsBGP(c *Config) {
	b := &c.BGP
	if !b.Enabled() {
		return
	}
	if b.Interface == "" {
		b.Interface = defaultBGPInterface
	}
	if b.RouterID == "" && c.Listen.Addr().Is4() {
		b.RouterID = c.Listen.Addr().String()
	}
	if _, set := v.idx.lines["bgp.standby_prepend"]; !set {
		b.StandbyPrepend = defaultStandbyPrepend
	}
	for i := range b.Neighbours {
		setDur(&b.Neighbours[i].HoldTime, defaultHoldTime)
		if b.Neighbours[i].Port == 0 {
			b.Neighbours[i].Port = bgpPort
		}
	}
}

func (v *validator) validateBGP(c *Config, l2 map[netip.Addr]string) {
	b := &c.BGP
	if !b.Enabled() {
		return
	}
	if v.opts.NoBGP != "" {
		v.fail("bgp", "%s", v.opts.NoBGP)
		return
	}
	if b.LocalAS == 0 {
		v.fail("bgp.local_as", "required: this node's AS number, e.g. 65001")
	}
	if a, err := netip.ParseAddr(b.RouterID); b.RouterID == "" {
		v.fail("bgp.router_id", "required when listen is not IPv4: an IPv4 address unique among the router's neighbours")
	} else if err != nil || !a.Is4() {
		v.fail("bgp.router_id", "%q: want an IPv4 address", b.RouterID)
	}
	if b.Interface == c.Interface {
		v.fail("bgp.interface", "%q is the interface: the BGP VIPs go on the loopback (the default, %s) or a dummy interface", b.Interface, defaultBGPInterface)
	} else if len(b.Interface) > 15 || strings.ContainsAny(b.Interface, "/ :") {
		v.fail("bgp.interface", "%q is not an interface name (at most 15 bytes, no '/', ':' or space)", b.Interface)
	}
	if len(b.VIPs) == 0 {
		v.fail("bgp.vips", "at least one VIP is required, e.g. [{address: 198.51.100.200/32}]")
	}
	seen := map[netip.Addr]int{}
	for i, vp := range b.VIPs {
		f := fmt.Sprintf("bgp.vips[%d]", i)
		p := vp.Address.Prefix
		a := p.Addr()
		switch {
		case !p.IsValid():
			v.fail(f+".address", "required: the VIP as a host route, e.g. 198.51.100.200/32")
			continue
		case p.Bits() != a.BitLen():
			v.fail(f+".address", "%s: announce a host route (/%d)", p, a.BitLen())
		case a.IsLoopback(), a.IsMulticast(), a.IsUnspecified(), a.IsLinkLocalUnicast(), a.Is4In6():
			v.fail(f+".address", "%s cannot be a VIP", a)
		}
		if j, dup := seen[a]; dup {
			v.fail(f+".address", "%s is listed twice (also bgp.vips[%d])", a, j)
		}
		if other, dup := l2[a]; dup {
			v.fail(f+".address", "%s is also %s: a VIP is announced either at L2 or over BGP", a, other)
		}
		if c.Listen.IsValid() && a == c.Listen.Addr() {
			v.fail(f+".address", "%s is the listen address", a)
		}
		seen[a] = i
		for j, s := range vp.Communities {
			if _, err := ParseCommunity(s); err != nil {
				v.fail(fmt.Sprintf("%s.communities[%d]", f, j), "%v", err)
			}
		}
	}
	if len(b.Neighbours) == 0 {
		v.fail("bgp.neighbours", "at least one neighbour is required, e.g. [{address: 198.51.100.1, as: 65000}]")
	}
	seenN := map[netip.Addr]int{}
	for i, n := range b.Neighbours {
		f := fmt.Sprintf("bgp.neighbours[%d]", i)
		a, err := netip.ParseAddr(n.Address)
		switch {
		case n.Address == "":
			v.fail(f+".address", "required: the router's address")
		case err != nil:
			v.fail(f+".address", "%q is not an IP address", n.Address)
		case a.IsUnspecified() || a.IsMulticast():
			v.fail(f+".address", "%s cannot be a neighbour", a)
		default:
			if j, dup := seenN[a]; dup {
				v.fail(f+".address", "%s is listed twice (also bgp.neighbours[%d])", a, j)
			}
			seenN[a] = i
		}
		if n.AS == 0 {
			v.fail(f+".as", "required: the router's AS number")
		} else if n.AS == b.LocalAS {
			v.fail(f+".as", "%d is local_as: hbd speaks eBGP only", n.AS)
		}
		if h := n.HoldTime.D(); h < 3*time.Second || h > 65535*time.Second || h%time.Second != 0 {
			v.fail(f+".hold_time", "%s: must be whole seconds, at least 3s (RFC 4271)", h)
		}
		if n.PasswordFile != "" {
			if _, err := ReadPassword(RelTo(v.path, n.PasswordFile)); err != nil {
				v.fail(f+".password_file", "%v", err)
			}
		}
	}
	for _, nh := range []struct {
		field, val string
		v4         bool
	}{{"bgp.next_hop", b.NextHop, true}, {"bgp.next_hop6", b.NextHop6, false}} {
		if nh.val == "" {
			continue
		}
		if a, err := netip.ParseAddr(nh.val); err != nil || a.Is4() != nh.v4 || a.IsUnspecified() {
			want := "an IPv6"
			if nh.v4 {
				want = "an IPv4"
			}
			v.fail(nh.field, "%q: want %s address", nh.val, want)
		}
	}
	if b.MED != nil && *b.MED == standbyMED {
		v.fail("bgp.med", "4294967295 is the standby's MED; at most 4294967294")
	}
	if b.Prepend < 0 || b.Prepend > 10 {
		v.fail("bgp.prepend", "%d is out of range 0..10", b.Prepend)
	}
	if b.StandbyPrepend < 1 || b.StandbyPrepend > 10 {
		v.fail("bgp.standby_prepend", "%d is out of range 1..10: a standby's route must be worse than the master's", b.StandbyPrepend)
	}
}

// RelTo makes a relative path p relative to the directory of the config
// file at path.
func RelTo(path, p string) string {
	if p == "" || filepath.IsAbs(p) || path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(path), p)
}

// ReadPassword reads a TCP MD5 key file: 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN)
// after trimming the line end, readable by its owner only.
func ReadPassword(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("reading the TCP MD5 key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o: a TCP MD5 key must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the TCP MD5 key: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if len(s) == 0 || len(s) > 80 {
		return "", fmt.Errorf("%s holds %d bytes: a TCP MD5 key has 1 to 80", path, len(s))
	}
	return s, nil
}

// BGPPrefixes are the BGP VIPs.
func (c *Config) BGPPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, len(c.BGP.VIPs))
	for i, vp := range c.BGP.VIPs {
		out[i] = vp.Address.Prefix
	}
	return out
}

// ParseCommunity parses a standard BGP community (RFC 1997): "AS:VALUE"
// with both halves 0..65535, or one of the well-known names no-export,
// no-advertise, no-export-subconfed, blackhole.
func ParseCommunity(s string) (uint32, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "no-export":
		return 0xFFFFFF01, nil
	case "no-advertise":
		return 0xFFFFFF02, nil
	case "no-export-subconfed":
		return 0xFFFFFF03, nil
	case "blackhole":
		return 0xFFFF029A, nil
	}
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return 0, fmt.Errorf("community %q: want AS:VALUE, e.g. 65001:100", s)
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("community %q: both halves must be numbers from 0 to 65535", s)
	}
	return uint32(h)<<16 | uint32(l), nil
}
