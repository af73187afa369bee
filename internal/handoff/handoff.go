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
// with raw bpf(2) calls), attached to the VIP interface's ingress through TCX (Linux 6.6)
// or, on older kernels, a cls_bpf filter on the clsact qdisc. The program
// stays attached for the daemon's life and does nothing until Forward
// turns it on for some VIPs; map updates turn it on and off, VIP by VIP, so
// that each VIP group forwards to its own previous master for its own
// window.
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
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"

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
	how     string // "tcx" or "cls_bpf"
	log     *slog.Logger

	mu  sync.Mutex
	fwd map[netip.Addr]bool // the VIPs forwarded now

	cfg    int                // the configuration map's descriptor
	vips   int                // the VIP map's descriptor
	prog   int                // the program's descriptor
	tcx    int                // the TCX link's descriptor, or -1
	filter *netlink.BpfFilter // with cls_bpf
}

// New loads the program and attaches it to ifname's ingress, turned off.
func New(ifname string, log *slog.Logger) (*Chain, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("handoff: looking up %s: %w", ifname, err)
	}
	c := &Chain{ifindex: ifi.Index, mac: ifi.HardwareAddr, log: log, tcx: -1, fwd: map[netip.Addr]bool{}}
	if len(c.mac) != 6 {
		return nil, fmt.Errorf("%w: %s has no Ethernet address", ErrNotEthernet, ifname)
	}
	if c.cfg, err = newMap("hbd_handoff", mapTypeArray, 4, cfgSize, 1); err != nil {
		return nil, fmt.Errorf("handoff: creating the configuration map: %w", err)
	}
	if c.vips, err = newMap("hbd_handoff_vip", mapTypeHash, vipKeySize, vipValueSize, maxVIPs); err != nil {
		unix.Close(c.cfg)
		return nil, fmt.Errorf("handoff: creating the VIP map: %w", err)
	}
	if err := c.setActive(); err != nil {
		c.closeMaps()
		return nil, err
	}
	c.prog, err = loadSchedCLS("hbd_handoff", program(c.cfg, c.vips))
	if err != nil {
		c.closeMaps()
		return nil, fmt.Errorf("handoff: loading the program: %w", err)
	}
	if err := c.attach(); err != nil {
		unix.Close(c.prog)
		c.closeMaps()
		return nil, err
	}
	return c, nil
}

func (c *Chain) closeMaps() {
	unix.Close(c.vips)
	unix.Close(c.cfg)
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

// Forward turns forwarding on for vips: packets to them that belong to no
// local connection go to the host with hardware address prev. A VIP
// forwarded already is pointed at prev instead.
func (c *Chain) Forward(vips []netip.Addr, prev net.HardwareAddr) error {
	if len(prev) != 6 {
		return fmt.Errorf("handoff: forwarding to %v: not an Ethernet address", prev)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	value := append(slices.Clone(prev), c.mac...)
	var errs []error
	for _, a := range vips {
		a = a.Unmap() // as vipKey keys the kernel's map
		if !c.fwd[a] && len(c.fwd) >= maxVIPs {
			errs = append(errs, fmt.Errorf("handoff: forwarding %s: at most %d VIPs", a, maxVIPs))
			continue
		}
		if err := mapPut(c.vips, vipKey(a), value); err != nil {
			errs = append(errs, fmt.Errorf("handoff: forwarding %s: %w", a, err))
			continue
		}
		c.fwd[a] = true
	}
	errs = append(errs, c.setActive())
	return errors.Join(errs...)
}

// Stop turns forwarding off for vips; the program stays attached.
func (c *Chain) Stop(vips []netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, a := range vips {
		a = a.Unmap()
		if !c.fwd[a] {
			continue
		}
		if err := mapDelete(c.vips, vipKey(a)); err != nil {
			errs = append(errs, fmt.Errorf("handoff: no longer forwarding %s: %w", a, err))
			continue
		}
		delete(c.fwd, a)
	}
	errs = append(errs, c.setActive())
	return errors.Join(errs...)
}

// Forwarding lists the VIPs forwarded now.
func (c *Chain) Forwarding() []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Collect(maps.Keys(c.fwd))
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// setActive writes the configuration: the number of VIPs forwarded (the
// program passes every frame at once when it is 0) and the interface.
func (c *Chain) setActive() error {
	b := make([]byte, cfgSize)
	binary.NativeEndian.PutUint32(b[cfgActive:], uint32(len(c.fwd)))
	binary.NativeEndian.PutUint32(b[cfgIfindex:], uint32(c.ifindex))
	if err := mapPut(c.cfg, u32(0), b); err != nil {
		return fmt.Errorf("handoff: writing the configuration: %w", err)
	}
	return nil
}

// vipKey is a's key in the VIP map.
func vipKey(a netip.Addr) []byte {
	a = a.Unmap()
	k := make([]byte, vipKeySize)
	if a.Is4() {
		binary.NativeEndian.PutUint32(k, 4)
		b := a.As4()
		copy(k[4:], b[:])
	} else {
		binary.NativeEndian.PutUint32(k, 6)
		b := a.As16()
		copy(k[4:], b[:])
	}
	return k
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
	errs = append(errs, unix.Close(c.prog), unix.Close(c.vips), unix.Close(c.cfg))
	return errors.Join(errs...)
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
