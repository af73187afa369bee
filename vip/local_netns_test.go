package vip

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VIPs announced as routes live on the loopback (or a dummy): EnsureLocal
// accepts those and refuses a real link, and a Manager there claims,
// refreshes and releases without trying to announce anything (no ARP or
// NDP socket on the loopback: Claim does not fail with ErrNotAnnounced).
func TestLocalInterface(t *testing.T) {
	f := newFixture(t)
	f.enterHost(t)
	if created, err := EnsureLocal("lo"); err != nil || created {
		t.Fatalf("EnsureLocal(lo) = %v, %v; want false, nil", created, err)
	}
	if _, err := EnsureLocal(hostIf); !errors.Is(err, ErrNotLocal) {
		t.Errorf("EnsureLocal(%s) = %v, want ErrNotLocal", hostIf, err)
	}
	switch created, err := EnsureLocal("hbdtest0"); {
	case errors.Is(err, unix.EOPNOTSUPP):
		t.Logf("this kernel has no dummy driver: %v", err)
	case err != nil || !created:
		t.Errorf("EnsureLocal(hbdtest0) = %v, %v; want a new dummy", created, err)
	default:
		link, err := netlink.LinkByName("hbdtest0")
		if err != nil || link.Type() != "dummy" || link.Attrs().Flags&unix.IFF_UP == 0 {
			t.Errorf("hbdtest0: %v, %v; want a dummy that is up", link, err)
		}
		if created, err := EnsureLocal("hbdtest0"); err != nil || created {
			t.Errorf("EnsureLocal(hbdtest0) again = %v, %v; want false, nil", created, err)
		}
	}

	vips := []netip.Prefix{netip.MustParsePrefix("198.51.100.200/32"), netip.MustParsePrefix("2001:db8:200::1/128")}
	m, err := New("lo", vips, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Claim(); err != nil {
		t.Fatalf("Claim on lo: %v (nothing to announce there)", err)
	}
	if err := m.Announce(); err != nil {
		t.Fatalf("Announce on lo: %v", err)
	}
	if err := m.Refresh(); err != nil {
		t.Fatalf("Refresh on lo: %v", err)
	}
	held, err := m.Held()
	if err != nil || !slices.Equal(held, vips) {
		t.Fatalf("Held = %v, %v; want %v", held, err, vips)
	}
	if err := m.Release(); err != nil {
		t.Fatal(err)
	}
	if held, _ := m.Held(); len(held) != 0 {
		t.Errorf("after Release, held %v", held)
	}
}
