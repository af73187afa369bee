package vip

import (
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Handoff leaves no address but one local route per VIP; a claim during the
// hand-off works; EndHandoff removes the routes and leaves the claim alone.
func TestHandoffKeepsLocalRoutesOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.enterHost(t)
	m := newManager(t, testVIPs)
	if err := m.Claim(); err != nil {
		t.Fatal(err)
	}
	if err := m.Handoff(); err != nil {
		t.Fatal(err)
	}
	if held, _ := m.Held(); len(held) != 0 {
		t.Errorf("after Handoff the VIPs are still held: %v", held)
	}
	if n := handoffRoutes(t); n != len(testVIPs) {
		t.Errorf("%d hand-off routes, want %d", n, len(testVIPs))
	}
	if err := m.Claim(); err != nil {
		t.Fatalf("claiming during a hand-off: %v", err)
	}
	if err := m.EndHandoff(); err != nil {
		t.Fatal(err)
	}
	if n := handoffRoutes(t); n != 0 {
		t.Errorf("%d hand-off routes left", n)
	}
	if held, _ := m.Held(); len(held) != len(testVIPs) {
		t.Errorf("EndHandoff took the claimed VIPs: held %v", held)
	}
	if err := m.EndHandoff(); err != nil {
		t.Errorf("EndHandoff twice: %v", err)
	}
}

func handoffRoutes(t *testing.T) int {
	t.Helper()
	n := 0
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Protocol == handoffProto {
				n++
			}
		}
	}
	return n
}
