package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// router is a second, independent GoBGP on loopback standing in for the
// upstream router: it accepts the Speaker's session and shows what it
// received. (The namespace e2e tests use FRR.)
type router struct {
	srv  *server.BgpServer
	port uint16
}

func startRouter(t *testing.T, peerAS uint32, password string) *router {
	return startRouterOn(t, "127.0.0.1", peerAS, password)
}

// startRouterOn is startRouter on a loopback address of either family.
func startRouterOn(t *testing.T, addr string, peerAS uint32, password string) *router {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := server.NewBgpServer()
	go srv.Serve()
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "198.51.100.254", ListenPort: int32(port), ListenAddresses: []string{addr},
	}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	fams := []*api.AfiSafi{
		{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: addr, PeerAsn: peerAS, AuthPassword: password},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis:  fams,
	}}); err != nil {
		t.Fatal(err)
	}
	return &router{srv: srv, port: uint16(port)}
}

// routes lists what the router has received for fam, one line a path:
// "prefix as-path med communities".
func (r *router) routes(t *testing.T, fam bgp.Family) []string {
	t.Helper()
	var out []string
	err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam}, func(p bgp.NLRI, paths []*apiutil.Path) {
		for _, path := range paths {
			var asPath, med, comms string
			for _, a := range path.Attrs {
				switch a := a.(type) {
				case *bgp.PathAttributeAsPath:
					asPath = strings.TrimSuffix(strings.TrimPrefix(a.String(), "{AsPath: "), "}")
				case *bgp.PathAttributeMultiExitDisc:
					med = fmt.Sprint(a.Value)
				case *bgp.PathAttributeCommunities:
					var cs []string
					for _, c := range a.Value {
						cs = append(cs, FormatCommunity(c))
					}
					comms = strings.Join(cs, ",")
				}
			}
			out = append(out, strings.TrimSpace(fmt.Sprintf("%s [%s] med=%s %s", p, asPath, med, comms)))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// waitRoutes waits until the router's routes for fam are want.
func (r *router) waitRoutes(t *testing.T, fam bgp.Family, want ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := r.routes(t, fam)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("router has %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSpeakerAgainstGoBGP(t *testing.T) {
	const password = "hbd-md5-secret"
	rt := startRouter(t, 65001, password)
	s, err := New(Config{
		LocalAS:         65001,
		RouterID:        netip.MustParseAddr("198.51.100.11"),
		Neighbors:       []Neighbor{{Addr: netip.MustParseAddr("127.0.0.1"), AS: 65000, Port: rt.port, Password: password, HoldTime: 3 * time.Second}},
		Routes:          []Route{{Prefix: netip.MustParsePrefix("198.51.100.200/32"), Communities: []uint32{65001<<16 | 100}}},
		StandbyAnnounce: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ipv4 := bgp.RF_IPv4_UC

	rt.waitRoutes(t, ipv4) // started: nothing announced
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("backup", s.SetBackup(true))
	rt.waitRoutes(t, ipv4, "198.51.100.200/32 [65001 65001 65001 65001] med=4294967295 65001:100")
	step("claim", s.Claim(5))
	rt.waitRoutes(t, ipv4, "198.51.100.200/32 [65001] med=4294967290 65001:100")
	step("handoff", s.Handoff())
	rt.waitRoutes(t, ipv4, "198.51.100.200/32 [65001 65001 65001 65001] med=4294967290 65001:100")
	if r := s.Role(); r != Demoted {
		t.Errorf("role during hand-off = %s", r)
	}
	step("end handoff", s.EndHandoff())
	rt.waitRoutes(t, ipv4, "198.51.100.200/32 [65001 65001 65001 65001] med=4294967295 65001:100")
	step("fault", s.SetBackup(false))
	rt.waitRoutes(t, ipv4)
	step("claim again", s.Claim(9))
	rt.waitRoutes(t, ipv4, "198.51.100.200/32 [65001] med=4294967286 65001:100")
	step("release", s.Release())
	rt.waitRoutes(t, ipv4)

	peers, err := s.Peers(context.Background())
	if err != nil || len(peers) != 1 || !peers[0].Established {
		t.Errorf("Peers = %+v, %v; want one established", peers, err)
	}
	step("claim before close", s.Claim(10))
	rt.waitRoutes(t, ipv4, "198.51.100.200/32 [65001] med=4294967285 65001:100")
	step("close", s.Close())
	rt.waitRoutes(t, ipv4) // Close withdraws and ends the session
	if err := s.Claim(11); err != ErrClosed {
		t.Errorf("Claim after Close = %v, want ErrClosed", err)
	}
}

// Over an IPv6 session the IPv6 VIP goes out with the session's own
// address as its next hop, and the IPv4 one not at all (no next hop for it).
func TestSpeakerIPv6Session(t *testing.T) {
	rt := startRouterOn(t, "::1", 65001, "")
	s, err := New(Config{
		LocalAS:   65001,
		RouterID:  netip.MustParseAddr("198.51.100.11"),
		Neighbors: []Neighbor{{Addr: netip.MustParseAddr("::1"), AS: 65000, Port: rt.port}},
		Routes:    []Route{{Prefix: netip.MustParsePrefix("198.51.100.200/32")}, {Prefix: netip.MustParsePrefix("2001:db8:200::1/128")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Claim(3); err != nil {
		t.Fatal(err)
	}
	rt.waitRoutes(t, bgp.RF_IPv6_UC, "2001:db8:200::1/128 [65001] med=4294967292")
	if got := rt.routes(t, bgp.RF_IPv4_UC); len(got) != 0 {
		t.Errorf("IPv4 routes over the IPv6 session without a next hop: %q", got)
	}
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	rt.waitRoutes(t, bgp.RF_IPv6_UC)
}

// A wrong TCP MD5 key keeps the session down: nothing is announced.
func TestSpeakerWrongPassword(t *testing.T) {
	rt := startRouter(t, 65001, "right-key")
	s, err := New(Config{
		LocalAS:   65001,
		RouterID:  netip.MustParseAddr("198.51.100.11"),
		Neighbors: []Neighbor{{Addr: netip.MustParseAddr("127.0.0.1"), AS: 65000, Port: rt.port, Password: "wrong-key"}},
		Routes:    []Route{{Prefix: netip.MustParsePrefix("198.51.100.200/32")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Claim(1); err != nil {
		t.Fatal(err)
	}
	// Two connect attempts' worth: the session must not come up.
	time.Sleep(5 * time.Second)
	if got := rt.routes(t, bgp.RF_IPv4_UC); len(got) != 0 {
		t.Fatalf("router accepted routes over a session with the wrong key: %q", got)
	}
	peers, _ := s.Peers(context.Background())
	for _, p := range peers {
		if p.Established {
			t.Fatalf("session established with the wrong key: %+v", p)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	good := Config{
		LocalAS: 65001, RouterID: netip.MustParseAddr("198.51.100.11"),
		Neighbors: []Neighbor{{Addr: netip.MustParseAddr("198.51.100.1"), AS: 65000}},
		Routes:    []Route{{Prefix: netip.MustParsePrefix("198.51.100.200/32")}},
	}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no AS":            func(c *Config) { c.LocalAS = 0 },
		"IPv6 router id":   func(c *Config) { c.RouterID = netip.MustParseAddr("2001:db8::1") },
		"not a host route": func(c *Config) { c.Routes = []Route{{Prefix: netip.MustParsePrefix("198.51.100.0/24")}} },
		"short hold time":  func(c *Config) { c.Neighbors = []Neighbor{{Addr: c.Neighbors[0].Addr, AS: 1, HoldTime: time.Second}} },
		"no neighbours":    func(c *Config) { c.Neighbors = nil },
	} {
		c := good
		mutate(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
