package vip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultLifetime is the kernel valid lifetime of a claimed VIP when
// Options.Lifetime is zero.
const DefaultLifetime = 2 * time.Second

// maxLabelLen is the longest IPv4 address label the kernel keeps
// (IFNAMSIZ - 1).
const maxLabelLen = unix.IFNAMSIZ - 1

// labelSuffix marks the IPv4 addresses hbd added, as in "eth0:hbd".
const labelSuffix = ":hbd"

// ErrNotAnnounced is matched (errors.Is) by the error of a Claim that added
// every address but could not send the first announcement. The VIPs are held
// then; the caller's later Announce calls retry.
var ErrNotAnnounced = errors.New("VIP claimed but not announced")

// ErrClosed is returned by the methods of a Manager after Close.
var ErrClosed = errors.New("vip: manager closed")

// Options tunes a Manager. The zero value is ready to use.
type Options struct {
	// Lifetime is the kernel valid lifetime (valid_lft) of a claimed VIP.
	// The kernel counts whole seconds, so it is rounded up to the next whole
	// second. The master must call Refresh well within it (see
	// Manager.RefreshInterval); a killed or frozen daemon loses the VIP
	// within Lifetime plus the kernel's lifetime-check slack (up to about
	// one second). Default DefaultLifetime (2 s); must not be negative.
	Lifetime time.Duration

	// Label is the label of the IPv4 VIPs (IFA_LABEL). It must start with
	// the interface name and have at most 15 bytes. Default
	// "<ifname>:hbd", cut to 15 bytes. IPv6 addresses have no labels.
	Label string

	// Logger receives the claims, releases and oddities. Default: discard.
	Logger *slog.Logger
}

// A Manager holds the VIPs of one interface. Its methods are safe for
// concurrent use. It starts no goroutines; the caller schedules Refresh and
// the Announce burst.
type Manager struct {
	ifname   string
	vips     []netip.Prefix
	label    string
	validLft int // seconds
	log      *slog.Logger

	mu      sync.Mutex
	closed  bool
	claimed bool // between Claim and Release or Handoff: Refresh renews only then
	ann     announcer
	nl     *netlink.Handle // kept open for the Manager's life (Close keeps it, so Held works after): the master renews its VIPs several times a second
}

// New returns a Manager for the VIPs vips on the interface ifname. It checks
// that the interface exists and the options are valid; it opens no sockets
// and changes nothing.
func New(ifname string, vips []netip.Prefix, opts Options) (*Manager, error) {
	if err := checkVIPs(vips); err != nil {
		return nil, fmt.Errorf("vip: %w", err)
	}
	lft, err := lifetimeSeconds(opts.Lifetime)
	if err != nil {
		return nil, fmt.Errorf("vip: %w", err)
	}
	label, err := chooseLabel(ifname, opts.Label)
	if err != nil {
		return nil, fmt.Errorf("vip: %w", err)
	}
	if _, err := netlink.LinkByName(ifname); err != nil {
		return nil, fmt.Errorf("vip: looking up interface %s: %w", ifname, err)
	}
	nl, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vip: opening a netlink socket: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		ifname:   ifname,
		vips:     slices.Clone(vips),
		label:    label,
		validLft: lft,
		log:      log.With("iface", ifname),
		nl:       nl,
	}, nil
}

// RefreshInterval is how often the master should call Refresh: a quarter of
// the lifetime, so three refreshes in a row may be late or fail before the
// kernel drops the VIP.
func (m *Manager) RefreshInterval() time.Duration {
	return time.Duration(m.validLft) * time.Second / 4
}

// Claim adds every VIP to the interface with the finite lifetime (re-adding
// renews it) and sends the first announcement round at once: one gratuitous
// ARP request and one reply per IPv4 VIP, one unsolicited neighbour
// advertisement per IPv6 VIP. Claiming VIPs already held is harmless. It
// does not wait for anything on the network.
//
// If the addresses were added but the announcement failed, the error
// matches ErrNotAnnounced.
func (m *Manager) Claim() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.claimed = true // even if this attempt fails: Refresh retries
	link, err := m.link()
	if err != nil {
		return fmt.Errorf("vip: claiming on %s: %w", m.ifname, err)
	}
	if _, err := m.replaceAll(link, "claiming"); err != nil {
		return err
	}
	m.log.Info("claimed VIPs", "vip", m.vips, "lifetime_s", m.validLft)
	if err := m.ann.announce(link, m.vips); err != nil {
		return fmt.Errorf("vip: announcing on %s: %w: %w", m.ifname, ErrNotAnnounced, err)
	}
	return nil
}

// Refresh re-adds every VIP, which renews its lifetime, and puts it back if
// something removed it (logged as a warning). It does not announce. It
// does nothing unless the VIPs are claimed (after Claim, before Release or
// Handoff), so a refresh running beside the caller's release (hbd refreshes
// off its loop) never brings the VIPs back.
func (m *Manager) Refresh() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if !m.claimed {
		return nil // released meanwhile: a refresh must never bring the VIPs back
	}
	link, err := m.link()
	if err != nil {
		return fmt.Errorf("vip: refreshing on %s: %w", m.ifname, err)
	}
	missing, err := m.replaceAll(link, "refreshing")
	for _, p := range missing {
		m.log.Warn("VIP was missing at refresh; added it again", "vip", p)
	}
	return err
}

// replaceAll adds or renews every VIP on link and returns those that were
// not there before. An IPv6 VIP that is there but tentative or failed DAD
// (added by someone else without IFA_F_NODAD) is deleted first: replacing it
// would keep it tentative, and a tentative address neither receives packets
// nor can be the source of an advertisement.
func (m *Manager) replaceAll(link netlink.Link, verb string) (missing []netip.Prefix, err error) {
	addrs, err := m.nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("vip: %s on %s: listing addresses: %w", verb, m.ifname, err)
	}
	for _, p := range m.vips {
		i := slices.IndexFunc(addrs, func(a netlink.Addr) bool {
			q, ok := prefixOf(a)
			return ok && q == p
		})
		if i < 0 {
			missing = append(missing, p)
		} else if a := addrs[i]; p.Addr().Is6() && a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			m.log.Warn("VIP is tentative or failed duplicate address detection; adding it again without DAD", "vip", p)
			if err := m.nl.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return missing, fmt.Errorf("vip: %s %s on %s: deleting tentative copy: %w", verb, p, m.ifname, err)
			}
		}
		if err := m.nl.AddrReplace(link, m.addr(p)); err != nil {
			return missing, fmt.Errorf("vip: %s %s on %s: %w", verb, p, m.ifname, err)
		}
	}
	return missing, nil
}

// Announce sends one announcement round for the VIPs that are on the
// interface now (see Claim). It never announces an address this host does
// not hold, so a burst step that fires after Release sends nothing.
func (m *Manager) Announce() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	link, held, err := m.linkAndHeld()
	if err != nil {
		return fmt.Errorf("vip: announcing on %s: %w", m.ifname, err)
	}
	if err := m.ann.announce(link, held); err != nil {
		return fmt.Errorf("vip: announcing on %s: %w", m.ifname, err)
	}
	return nil
}

// Release deletes every configured VIP from the interface, whatever prefix
// length it carries there. It is not an error if a VIP is absent or the
// interface no longer exists. Release works after Close too.
func (m *Manager) Release() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claimed = false
	removed, err := RemoveStale(m.ifname, m.vips)
	if len(removed) > 0 {
		m.log.Info("released VIPs", "vip", removed)
	}
	return err
}

// Held reports which configured VIPs are on the interface now, with the
// configured prefix length.
func (m *Manager) Held() ([]netip.Prefix, error) {
	_, held, err := m.linkAndHeld()
	if err != nil {
		return nil, fmt.Errorf("vip: listing VIPs on %s: %w", m.ifname, err)
	}
	return held, nil
}

// linkAndHeld looks the interface up and lists the VIPs on it.
func (m *Manager) linkAndHeld() (netlink.Link, []netip.Prefix, error) {
	link, err := m.link()
	if err != nil {
		return nil, nil, err
	}
	held, err := m.held(link)
	return link, held, err
}

// Close closes the announcement sockets. It does not release the VIPs: they
// expire by themselves unless refreshed, or call Release first.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.ann.close()
}

// RemoveStale deletes from the interface ifname every address equal to one
// of vips (compared by IP, whatever its prefix length there) and returns the
// addresses it deleted as they were on the interface. A missing interface
// or address is not an error. hbd calls it at start, to drop a VIP a crashed
// run left behind, and in `hbd release`.
func RemoveStale(ifname string, vips []netip.Prefix) (removed []netip.Prefix, err error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		if isLinkNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("vip: removing VIPs from %s: %w", ifname, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("vip: removing VIPs from %s: listing addresses: %w", ifname, err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a)
		if !ok || !slices.ContainsFunc(vips, func(v netip.Prefix) bool { return v.Addr() == p.Addr() }) {
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return removed, fmt.Errorf("vip: releasing %s on %s: %w", p, ifname, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// link looks the interface up afresh on every call, so a recreated
// interface (new index, new MAC) is followed.
func (m *Manager) link() (netlink.Link, error) {
	link, err := m.nl.LinkByName(m.ifname)
	if err != nil {
		return nil, fmt.Errorf("looking up interface: %w", err)
	}
	return link, nil
}

// held returns the configured VIPs present on link with their configured
// prefix length.
func (m *Manager) held(link netlink.Link) ([]netip.Prefix, error) {
	addrs, err := m.nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	var held []netip.Prefix
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok && slices.Contains(m.vips, p) && !slices.Contains(held, p) {
			held = append(held, p)
		}
	}
	return held, nil
}

// addr is the netlink form of a VIP as Claim and Refresh add it.
func (m *Manager) addr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{
		IPNet:       prefixNet(p),
		ValidLft:    m.validLft,
		PreferedLft: 0, // deprecated at once: never chosen as a source address
	}
	if p.Addr().Is4() {
		a.Label = m.label
	} else {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// checkVIPs rejects what cannot be a VIP on a host.
func checkVIPs(vips []netip.Prefix) error {
	if len(vips) == 0 {
		return errors.New("no VIPs given")
	}
	for i, p := range vips {
		a := p.Addr()
		switch {
		case !p.IsValid():
			return fmt.Errorf("invalid VIP %v", p)
		case a.Is4In6():
			return fmt.Errorf("VIP %s: IPv4-mapped IPv6 address; write it as IPv4", p)
		case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback(), a.IsLinkLocalUnicast():
			return fmt.Errorf("VIP %s: not a unicast address a VIP can use", p)
		case slices.ContainsFunc(vips[:i], func(q netip.Prefix) bool { return q.Addr() == a }):
			return fmt.Errorf("VIP %s given twice", a)
		}
	}
	return nil
}

// lifetimeSeconds turns Options.Lifetime into the kernel's whole seconds,
// rounding up.
func lifetimeSeconds(d time.Duration) (int, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("negative lifetime %v", d)
	case d == 0:
		d = DefaultLifetime
	case d > 24*time.Hour:
		return 0, fmt.Errorf("lifetime %v longer than a day; a VIP must expire soon after its daemon dies", d)
	}
	return int((d + time.Second - 1) / time.Second), nil
}

// chooseLabel returns the IPv4 label: label if given and valid, else
// "<ifname>:hbd" cut to the kernel's 15 bytes.
func chooseLabel(ifname, label string) (string, error) {
	if ifname == "" || len(ifname) > maxLabelLen {
		return "", fmt.Errorf("invalid interface name %q", ifname)
	}
	if label == "" {
		label = ifname + labelSuffix
		return label[:min(len(label), maxLabelLen)], nil
	}
	if !strings.HasPrefix(label, ifname) {
		return "", fmt.Errorf("label %q must start with the interface name %q", label, ifname)
	}
	if len(label) > maxLabelLen {
		return "", fmt.Errorf("label %q longer than %d bytes", label, maxLabelLen)
	}
	return label, nil
}
