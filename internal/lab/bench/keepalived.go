package bench

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// KeepalivedTiming is the VRRP timing of the keepalived side.
type KeepalivedTiming struct {
	Version int           // VRRP version: 2 (keepalived's default) or 3 (sub-second adverts)
	Advert  time.Duration // advert_int: 1s by default; VRRPv3 allows 10ms steps
}

// MasterDown is RFC 5798's Master_Down_Interval for a backup of the given
// priority: 3 × advert + skew, skew = (256 − priority) / 256 × advert
// (RFC 3768's skew, (256 − priority) / 256 s, for VRRPv2, with advert 1s).
func (t KeepalivedTiming) MasterDown(priority int) time.Duration {
	skew := time.Duration(256-priority) * t.Advert / 256
	if t.Version == 2 {
		skew = time.Duration(256-priority) * time.Second / 256
	}
	return 3*t.Advert + skew
}

func (t KeepalivedTiming) String() string {
	return fmt.Sprintf("VRRPv%d advert %s", t.Version, seconds(t.Advert))
}

// seconds writes a duration as keepalived's decimal seconds ("1", "0.05").
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// KeepalivedConf is what one host's keepalived.conf says.
type KeepalivedConf struct {
	RouterID  string       // router_id, the host name
	Interface string       // e.g. eth0
	Priority  int          // 1..254
	Self      netip.Addr   // unicast_src_ip
	Peers     []netip.Addr // unicast_peer
	VIP       netip.Prefix // virtual_ipaddress
	RouterNum int          // virtual_router_id; default 51
	Timing    KeepalivedTiming
}

// Render writes the keepalived.conf text: one VRRP instance, unicast to
// the peers (hbd too sends unicast), both sides starting as BACKUP so the
// priority decides, preemption on (keepalived's default, like hbd's), and
// keepalived's defaults for everything else (gratuitous ARP bursts included).
func (c KeepalivedConf) Render() (string, error) {
	if c.Timing.Version != 2 && c.Timing.Version != 3 {
		return "", fmt.Errorf("bench: VRRP version %d: want 2 or 3", c.Timing.Version)
	}
	if c.Timing.Version == 2 && c.Timing.Advert%time.Second != 0 {
		return "", fmt.Errorf("bench: VRRPv2 advert interval %s: want whole seconds", c.Timing.Advert)
	}
	if c.Timing.Advert < 10*time.Millisecond || c.Timing.Advert%(10*time.Millisecond) != 0 {
		return "", fmt.Errorf("bench: advert interval %s: want a multiple of 10ms", c.Timing.Advert)
	}
	if c.Priority < 1 || c.Priority > 254 {
		return "", fmt.Errorf("bench: priority %d: want 1..254", c.Priority)
	}
	if !c.VIP.IsValid() || !c.Self.IsValid() || len(c.Peers) == 0 {
		return "", fmt.Errorf("bench: keepalived config for %s: VIP, own address and peers are required", c.RouterID)
	}
	vrid := c.RouterNum
	if vrid == 0 {
		vrid = 51
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# written by hbd-lab bench\nglobal_defs {\n    router_id %s\n    vrrp_version %d\n}\n\n", c.RouterID, c.Timing.Version)
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n    state BACKUP\n    interface %s\n    virtual_router_id %d\n    priority %d\n    advert_int %s\n",
		c.Interface, vrid, c.Priority, seconds(c.Timing.Advert))
	fmt.Fprintf(&b, "    unicast_src_ip %s\n    unicast_peer {\n", c.Self)
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "        %s\n", p)
	}
	fmt.Fprintf(&b, "    }\n    virtual_ipaddress {\n        %s dev %s\n    }\n}\n", c.VIP, c.Interface)
	return b.String(), nil
}

// KeepalivedArgs is the command line of one keepalived: in the foreground
// (-n), logging to the console only (-l -G: nothing reaches the machine's
// syslog), only the VRRP subsystem (-P), with this config and its own pid
// files for the parent (-p) and the VRRP child (-r), never /etc/keepalived.
func KeepalivedArgs(bin, conf, pid, vrrpPid string) []string {
	// Short options: their arguments are plain separate words in every
	// keepalived 2.x, where the long forms want "--opt=VALUE".
	return []string{bin, "-n", "-l", "-G", "-P", "-f", conf, "-p", pid, "-r", vrrpPid}
}
