package vip

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNotLocal is matched by the error of EnsureLocal for an interface that
// is neither the loopback nor a dummy.
var ErrNotLocal = errors.New("vip: not a loopback or dummy interface")

// EnsureLocal makes sure the interface name can hold VIPs announced as
// routes (vip/bgp): the loopback, or a dummy interface, created when
// missing and set up. Neither has a link anyone listens on, so a VIP there
// is never announced at L2 (Claim sends nothing on them). It reports
// whether it created the interface. An existing interface of another kind
// is refused (ErrNotLocal).
func EnsureLocal(name string) (created bool, err error) {
	link, err := netlink.LinkByName(name)
	if err != nil && !isLinkNotFound(err) {
		return false, fmt.Errorf("vip: looking up interface %s: %w", name, err)
	}
	if link == nil {
		d := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(d); err != nil {
			return false, fmt.Errorf("vip: creating dummy interface %s (a kernel without the dummy driver can use lo): %w", name, err)
		}
		created = true
		if link, err = netlink.LinkByName(name); err != nil {
			return created, fmt.Errorf("vip: looking up interface %s: %w", name, err)
		}
	}
	if link.Type() != "dummy" && link.Attrs().RawFlags&unix.IFF_LOOPBACK == 0 {
		return false, fmt.Errorf("vip: interface %s is a %s: %w", name, link.Type(), ErrNotLocal)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return created, fmt.Errorf("vip: setting %s up: %w", name, err)
	}
	return created, nil
}
