package vip

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

func TestChooseLabel(t *testing.T) {
	tests := []struct {
		ifname, label string
		want          string
		wantErr       bool
	}{
		{ifname: "eth0", want: "eth0:hbd"},
		{ifname: "enp0s31f6", want: "enp0s31f6:hbd"},
		{ifname: "abcdefghijk", want: "abcdefghijk:hbd"},     // exactly 15
		{ifname: "abcdefghijkl", want: "abcdefghijkl:hb"},    // cut to 15
		{ifname: "abcdefghijklmno", want: "abcdefghijklmno"}, // 15-byte name: only the name fits
		{ifname: "eth0", label: "eth0:vip", want: "eth0:vip"},
		{ifname: "eth0", label: "eth0", want: "eth0"},
		{ifname: "eth0", label: "eth1:hbd", wantErr: true},
		{ifname: "eth0", label: "eth0:0123456789a", wantErr: true}, // 16 bytes
		{ifname: "", wantErr: true},
		{ifname: "abcdefghijklmnop", wantErr: true}, // 16-byte name
	}
	for _, tt := range tests {
		got, err := chooseLabel(tt.ifname, tt.label)
		if (err != nil) != tt.wantErr {
			t.Errorf("chooseLabel(%q, %q) error = %v, want error %v", tt.ifname, tt.label, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want {
			t.Errorf("chooseLabel(%q, %q) = %q, want %q", tt.ifname, tt.label, got, tt.want)
		}
		if len(got) > 15 || !strings.HasPrefix(got, tt.ifname) {
			t.Errorf("chooseLabel(%q, %q) = %q: longer than 15 bytes or not starting with the name", tt.ifname, tt.label, got)
		}
	}
}

func TestLifetimeSeconds(t *testing.T) {
	tests := []struct {
		in      time.Duration
		want    int
		wantErr bool
	}{
		{in: 0, want: 2},
		{in: time.Second, want: 1},
		{in: 500 * time.Millisecond, want: 1},
		{in: 1500 * time.Millisecond, want: 2},
		{in: 3 * time.Second, want: 3},
		{in: time.Nanosecond, want: 1},
		{in: -time.Second, wantErr: true},
		{in: 48 * time.Hour, wantErr: true},
	}
	for _, tt := range tests {
		got, err := lifetimeSeconds(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("lifetimeSeconds(%v) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCheckVIPs(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name    string
		vips    []netip.Prefix
		wantErr bool
	}{
		{"v4 and v6", []netip.Prefix{p("198.51.100.10/24"), p("2001:db8::10/64")}, false},
		{"host route", []netip.Prefix{p("198.51.100.10/32")}, false},
		{"none", nil, true},
		{"zero prefix", []netip.Prefix{{}}, true},
		{"unspecified", []netip.Prefix{p("0.0.0.0/0")}, true},
		{"multicast", []netip.Prefix{p("ff02::1/128")}, true},
		{"loopback", []netip.Prefix{p("127.0.0.2/8")}, true},
		{"link-local", []netip.Prefix{p("fe80::10/64")}, true},
		{"v4-mapped", []netip.Prefix{p("::ffff:198.51.100.10/120")}, true},
		{"twice", []netip.Prefix{p("198.51.100.10/24"), p("198.51.100.10/32")}, true},
	}
	for _, tt := range tests {
		if err := checkVIPs(tt.vips); (err != nil) != tt.wantErr {
			t.Errorf("%s: checkVIPs(%v) = %v, want error %v", tt.name, tt.vips, err, tt.wantErr)
		}
	}
}

func TestNew(t *testing.T) {
	// "lo" exists in every namespace and New changes nothing, so this runs
	// without root.
	vips := []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24")}
	m, err := New("lo", vips, Options{})
	if err != nil {
		t.Fatalf("New(lo): %v", err)
	}
	if m.label != "lo:hbd" || m.validLft != 2 {
		t.Errorf("New(lo) label %q lifetime %d s, want lo:hbd and 2 s", m.label, m.validLft)
	}
	if got, want := m.RefreshInterval(), 500*time.Millisecond; got != want {
		t.Errorf("RefreshInterval() = %v, want %v", got, want)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Claim(); err != ErrClosed {
		t.Errorf("Claim after Close = %v, want ErrClosed", err)
	}

	if _, err := New("hbdv-nosuchif", vips, Options{}); err == nil {
		t.Error("New on a missing interface: no error")
	}
	if _, err := New("lo", nil, Options{}); err == nil {
		t.Error("New without VIPs: no error")
	}
	if _, err := New("lo", vips, Options{Lifetime: -time.Second}); err == nil {
		t.Error("New with a negative lifetime: no error")
	}
	if _, err := New("lo", vips, Options{Label: "eth0:hbd"}); err == nil {
		t.Error("New with a label not starting with the interface name: no error")
	}
}

func TestBurstSchedule(t *testing.T) {
	s := BurstSchedule()
	if len(s) < 3 || s[0] != 0 {
		t.Fatalf("BurstSchedule() = %v: want at least 3 steps starting at 0", s)
	}
	for i := 1; i < len(s); i++ {
		if s[i] <= s[i-1] {
			t.Errorf("BurstSchedule() = %v: not strictly increasing at %d", s, i)
		}
	}
	// The last round must come after a frozen old master's VIP expired:
	// its lifetime plus a second of kernel timer rounding.
	if last := s[len(s)-1]; last <= DefaultLifetime+time.Second || last > 10*time.Second {
		t.Errorf("last step %v: want after %v and within 10 s", last, DefaultLifetime+time.Second)
	}
	// A pure function: the caller may keep and modify its copy.
	s[1] = time.Hour
	if BurstSchedule()[1] == time.Hour {
		t.Error("BurstSchedule returns a shared slice")
	}
}

func TestGratuitousARP(t *testing.T) {
	hw := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	ip := netip.MustParseAddr("198.51.100.10")
	pkts, err := gratuitousARP(hw, ip)
	if err != nil {
		t.Fatal(err)
	}
	var ops []arp.Operation
	for _, p := range pkts {
		ops = append(ops, p.Operation)
		if !bytes.Equal(p.SenderHardwareAddr, hw) || p.SenderIP != ip || p.TargetIP != ip {
			t.Errorf("%v: sender %v %v target IP %v; want sender %v %v, target IP the VIP", p.Operation, p.SenderHardwareAddr, p.SenderIP, p.TargetIP, hw, ip)
		}
		want := zeroMAC // RFC 5227 §2.3 announcement
		if p.Operation == arp.OperationReply {
			want = ethernet.Broadcast // what Linux counts as a gratuitous reply
		}
		if !bytes.Equal(p.TargetHardwareAddr, want) {
			t.Errorf("%v: target hardware address %v, want %v", p.Operation, p.TargetHardwareAddr, want)
		}
		// It must survive the wire format.
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var q arp.Packet
		if err := q.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if q.Operation != p.Operation || q.SenderIP != ip || q.TargetIP != ip {
			t.Errorf("round trip of %v: got %+v", p.Operation, q)
		}
	}
	if !slices.Equal(ops, []arp.Operation{arp.OperationRequest, arp.OperationReply}) {
		t.Errorf("operations %v, want a request and a reply", ops)
	}
	if _, err := gratuitousARP(hw, netip.MustParseAddr("2001:db8::10")); err == nil {
		t.Error("gratuitous ARP for an IPv6 address: no error")
	}
}

func TestUnsolicitedNA(t *testing.T) {
	hw := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	ip := netip.MustParseAddr("2001:db8::10")
	b, err := ndp.MarshalMessage(unsolicitedNA(hw, ip))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	na, ok := m.(*ndp.NeighborAdvertisement)
	if !ok {
		t.Fatalf("parsed %T, want a neighbour advertisement", m)
	}
	if !na.Override || na.Solicited || na.Router || na.TargetAddress != ip {
		t.Errorf("got %+v: want Override, not Solicited, not Router, target %v", na, ip)
	}
	if len(na.Options) != 1 {
		t.Fatalf("options %v, want one target link-layer address", na.Options)
	}
	lla, ok := na.Options[0].(*ndp.LinkLayerAddress)
	if !ok || lla.Direction != ndp.Target || !bytes.Equal(lla.Addr, hw) {
		t.Errorf("option %+v, want target link-layer address %v", na.Options[0], hw)
	}
}
