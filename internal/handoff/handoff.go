// Package handoff makes a planned handover straddle-proof with "daisy
// chaining" (Beamer, NSDI 2018): for a moment after it claims the VIP, the
// new master forwards at L2 to the previous master every packet to the VIP
// that belongs to no connection of its own (not a SYN, no socket), and the
// previous master, which still routes the VIP locally for that moment
// (vip.Manager.Handoff), accepts it. So a TCP handshake whose SYN reached
// the old master before the clients' ARP caches flipped, or a keep-alive
// connection still open there, completes instead of being reset.
//
// It is a tc classifier in direct-action mode (an eBPF program written with
// the package's own small assembler, so no compiler is needed, and loaded
// with three raw bpf(2) calls), attached to the VIP interface's ingress through TCX (Linux 6.6)
// or, on older kernels, a cls_bpf filter on the clsact qdisc. The program
// stays attached for the daemon's life and does nothing until Forward
// turns it on; a map update turns it on and off.
//
// On a kernel without eBPF, TCX or cls_bpf, New fails; the daemon logs it
// and runs without daisy chaining: handovers still work, only a handshake
// straddling one may be reset, as before.
package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNotEthernet is matched (errors.Is) by New's error for an interface
// without an Ethernet address (loopback, a tunnel): there is no L2 to
// forward over, and nothing is wrong.
var ErrNotEthernet = errors.New("handoff: not an Ethernet interface")

// Chain is the daisy-chaining program attached to one interface. Its
// methods are safe for concurrent use.
type Chain struct {
	ifindex int
	mac     net.HardwareAddr
	vip4    netip.Addr
	vip6    netip.Addr
	how     string // "tcx" or "cls_bpf"
	log     *slog.Logger

	cfg    int                // the configuration map's descriptor
	prog   int                // the program's descriptor
	tcx    int                // the TCX link's descriptor, or -1
	filter *netlink.BpfFilter // with cls_bpf
}

// New loads the program and attaches it to ifname's ingress, turned off.
// vips gives the VIP addresses (at most one IPv4 and one IPv6 address are
// forwarded; others are not).
func New(ifname string, vips []netip.Prefix, log *slog.Logger) (*Chain, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("handoff: looking up %s: %w", ifname, err)
	}
	c := &Chain{ifindex: ifi.Index, mac: ifi.HardwareAddr, log: log, tcx: -1}
	if len(c.mac) != 6 {
		return nil, fmt.Errorf("%w: %s has no Ethernet address", ErrNotEthernet, ifname)
	}
	for _, p := range vips {
		a := p.Addr().Unmap()
		switch {
		case a.Is4() && !c.vip4.IsValid():
			c.vip4 = a
		case a.Is6() && !c.vip6.IsValid():
			c.vip6 = a
		}
	}
	c.cfg, err = newArrayMap("hbd_handoff", cfgSize, 1)
	if err != nil {
		return nil, fmt.Errorf("handoff: creating the configuration map: %w", err)
	}
	c.prog, err = loadSchedCLS("hbd_handoff", program(c.cfg))
	if err != nil {
		unix.Close(c.cfg)
		return nil, fmt.Errorf("handoff: loading the program: %w", err)
	}
	if err := c.attach(); err != nil {
		unix.Close(c.prog)
		unix.Close(c.cfg)
		return nil, err
	}
	return c, nil
}

// How names the attachment in use: "tcx" or "cls_bpf".
func (c *Chain) How() string { return c.how }

func (c *Chain) attach() error {
	l, tcxErr := attachTCXIngress(c.prog, c.ifindex)
	if tcxErr == nil {
		c.tcx, c.how = l, "tcx"
		return nil
	}
	// Older kernels: a clsact qdisc and a direct-action cls_bpf filter.
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: c.ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscReplace(qdisc); err != nil {
		return fmt.Errorf("handoff: attaching: TCX: %w; clsact qdisc: %w", tcxErr, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: c.ifindex, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 0xbd},
		Fd:          c.prog, Name: "hbd_handoff", DirectAction: true,
	}
	if err := netlink.FilterReplace(f); err != nil {
		return fmt.Errorf("handoff: attaching: TCX: %w; cls_bpf: %w", tcxErr, err)
	}
	c.filter, c.how = f, "cls_bpf"
	return nil
}

// Forward turns forwarding on: packets to the VIPs that belong to no local
// connection go to the host with hardware address prev.
func (c *Chain) Forward(prev net.HardwareAddr) error {
	if len(prev) != 6 {
		return fmt.Errorf("handoff: forwarding to %v: not an Ethernet address", prev)
	}
	if err := mapPut(c.cfg, 0, c.config(true, prev)); err != nil {
		return fmt.Errorf("handoff: turning forwarding on: %w", err)
	}
	return nil
}

// Stop turns forwarding off; the program stays attached.
func (c *Chain) Stop() error {
	if err := mapPut(c.cfg, 0, c.config(false, nil)); err != nil {
		return fmt.Errorf("handoff: turning forwarding off: %w", err)
	}
	return nil
}

// Close detaches and unloads the program.
func (c *Chain) Close() error {
	var errs []error
	if c.tcx >= 0 {
		errs = append(errs, unix.Close(c.tcx))
	}
	if c.filter != nil {
		if err := netlink.FilterDel(c.filter); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("handoff: removing the filter: %w", err))
		}
	}
	errs = append(errs, unix.Close(c.prog), unix.Close(c.cfg))
	return errors.Join(errs...)
}

// config is the map value the program reads (see the cfg* offsets).
func (c *Chain) config(active bool, prev net.HardwareAddr) []byte {
	b := make([]byte, cfgSize)
	if active {
		binary.NativeEndian.PutUint32(b[cfgActive:], 1)
	}
	binary.NativeEndian.PutUint32(b[cfgIfindex:], uint32(c.ifindex))
	copy(b[cfgDstMAC:cfgDstMAC+6], prev)
	copy(b[cfgSrcMAC:cfgSrcMAC+6], c.mac)
	if c.vip4.IsValid() {
		a := c.vip4.As4()
		copy(b[cfgVIP4:], a[:])
	}
	if c.vip6.IsValid() {
		a := c.vip6.As16()
		copy(b[cfgVIP6:], a[:])
	}
	return b
}

// PeerMAC returns the hardware address this host's neighbour table holds
// for peer on ifname (the heartbeats keep that entry fresh).
func PeerMAC(ifname string, peer netip.Addr) (net.HardwareAddr, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("handoff: looking up %s: %w", ifname, err)
	}
	family := netlink.FAMILY_V4
	if peer.Unmap().Is6() {
		family = netlink.FAMILY_V6
	}
	ns, err := netlink.NeighList(l.Attrs().Index, family)
	if err != nil {
		return nil, fmt.Errorf("handoff: listing neighbours on %s: %w", ifname, err)
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == peer.Unmap() && len(n.HardwareAddr) == 6 &&
			n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			return n.HardwareAddr, nil
		}
	}
	return nil, fmt.Errorf("handoff: no neighbour entry for %s on %s", peer, ifname)
}
