package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

func TestAttributes(t *testing.T) {
	med := uint32(50)
	v4 := Route{Prefix: netip.MustParsePrefix("198.51.100.200/32"), Communities: []uint32{65001<<16 | 100}}
	v6 := Route{Prefix: netip.MustParsePrefix("2001:db8:200::1/128")}
	base := Config{LocalAS: 65001}
	withNH := Config{LocalAS: 65001, NextHop4: netip.MustParseAddr("198.51.100.11"), Prepend: 1, StandbyPrepend: 2, MED: &med}
	tests := []struct {
		name  string
		cfg   Config
		r     Route
		role  Role
		epoch uint64
		want  Attrs
	}{
		{"primary derives the MED from the epoch", base, v4, Primary, 7,
			Attrs{MED: MaxMED - 7, Communities: v4.Communities, NextHop: netip.IPv4Unspecified()}},
		{"a later epoch is a better MED", base, v4, Primary, 8,
			Attrs{MED: MaxMED - 8, Communities: v4.Communities, NextHop: netip.IPv4Unspecified()}},
		{"demoted keeps the epoch's MED, prepended", base, v4, Demoted, 7,
			Attrs{ASPath: []uint32{65001, 65001, 65001}, MED: MaxMED - 7, Communities: v4.Communities, NextHop: netip.IPv4Unspecified()}},
		{"standby is the worst MED, prepended", base, v6, Standby, 7,
			Attrs{ASPath: []uint32{65001, 65001, 65001}, MED: MaxMED, NextHop: netip.IPv6Unspecified()}},
		{"configured next hop, prepend and MED", withNH, v4, Primary, 7,
			Attrs{ASPath: []uint32{65001}, MED: 50, Communities: v4.Communities, NextHop: netip.MustParseAddr("198.51.100.11")}},
		{"configured standby prepend adds to prepend", withNH, v4, Demoted, 7,
			Attrs{ASPath: []uint32{65001, 65001, 65001}, MED: 50, Communities: v4.Communities, NextHop: netip.MustParseAddr("198.51.100.11")}},
		{"an IPv6 route ignores the IPv4 next hop", withNH, v6, Primary, 7,
			Attrs{ASPath: []uint32{65001}, MED: 50, NextHop: netip.IPv6Unspecified()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Attributes(&tt.cfg, tt.r, tt.role, tt.epoch)
			if !slices.Equal(got.ASPath, tt.want.ASPath) || got.MED != tt.want.MED ||
				!slices.Equal(got.Communities, tt.want.Communities) || got.NextHop != tt.want.NextHop {
				t.Errorf("Attributes = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEpochMEDNeverTiesTheStandby(t *testing.T) {
	for _, e := range []uint64{0, 1, 2, MaxMED - 1, MaxMED, MaxMED + 5} {
		if m := epochMED(e); m == MaxMED {
			t.Errorf("epochMED(%d) = MaxMED: a master would tie a standby", e)
		}
	}
	if epochMED(3) >= epochMED(2) {
		t.Error("a later epoch must have a lower MED")
	}
}

func TestRole(t *testing.T) {
	tests := []struct {
		st      state
		standby bool
		want    Role
	}{
		{state{}, false, Withdrawn},
		{state{backup: true}, false, Withdrawn},
		{state{backup: true}, true, Standby},
		{state{master: true, backup: true}, true, Primary},
		{state{handingOff: true}, false, Demoted},
		{state{handingOff: true, backup: true}, true, Demoted},
	}
	for _, tt := range tests {
		if got := tt.st.role(tt.standby); got != tt.want {
			t.Errorf("%+v.role(%v) = %s, want %s", tt.st, tt.standby, got, tt.want)
		}
	}
}

func TestFormatCommunity(t *testing.T) {
	if s := FormatCommunity(65001<<16 | 100); s != "65001:100" {
		t.Errorf("FormatCommunity = %q", s)
	}
}

// A session carries the families whose next hop it can supply: its own,
// and the other one when that family's next hop is configured.
func TestFamilies(t *testing.T) {
	routes := []Route{{Prefix: netip.MustParsePrefix("198.51.100.200/32")}, {Prefix: netip.MustParsePrefix("2001:db8:200::1/128")}}
	v4, v6 := netip.MustParseAddr("198.51.100.30"), netip.MustParseAddr("2001:db8::30")
	tests := []struct {
		name string
		cfg  Config
		addr netip.Addr
		want []bgp.Family
	}{
		{"IPv4 session, no next hops", Config{Routes: routes}, v4, []bgp.Family{bgp.RF_IPv4_UC}},
		{"IPv4 session with next_hop6", Config{Routes: routes, NextHop6: netip.MustParseAddr("2001:db8::11")}, v4, []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC}},
		{"IPv6 session, no next hops", Config{Routes: routes}, v6, []bgp.Family{bgp.RF_IPv6_UC}},
		{"IPv6 session, IPv4 routes only", Config{Routes: routes[:1]}, v6, nil},
	}
	for _, tt := range tests {
		s := &Speaker{cfg: tt.cfg}
		if got := s.families(tt.addr); !slices.Equal(got, tt.want) {
			t.Errorf("%s: families = %v, want %v", tt.name, got, tt.want)
		}
	}
}
