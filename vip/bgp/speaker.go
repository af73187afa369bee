package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// DefaultHoldTime is a neighbour's hold time when Neighbor.HoldTime is
// zero: the backstop that withdraws a dead host's routes. 9 s, three
// keepalives of 3 s, is a common data-centre setting (RFC 4271 suggests
// 90 s, far too long for a VIP; FRR's datacenter profile uses 9 s).
const DefaultHoldTime = 9 * time.Second

// connectRetry is how often a neighbour that is not established is dialled
// again, in seconds: GoBGP's smallest. After a router restarts, the VIP's
// route is back within this (hbd does not listen for BGP: it always dials).
// RFC 4271's suggested 120 s would leave the VIP unannounced for minutes.
const connectRetry = 2

// idleHoldAfterReset is how long, in seconds, a session stays idle after
// the router resets it administratively (GoBGP's default is 30 s): a
// router restart must not cost the VIP half a minute.
const idleHoldAfterReset = 1

// ErrClosed is returned by the methods of a Speaker after Close.
var ErrClosed = errors.New("bgp: speaker closed")

// Neighbor is one upstream router.
type Neighbor struct {
	Addr     netip.Addr
	AS       uint32
	Password string        // TCP MD5 signature key (RFC 2385); empty: none
	HoldTime time.Duration // whole seconds, 0 (DefaultHoldTime) or 3s and more
	Port     uint16        // 0: 179
}

// Route is one VIP announced as a host route.
type Route struct {
	Prefix      netip.Prefix // /32 or /128
	Communities []uint32
}

// Config configures a Speaker.
type Config struct {
	LocalAS   uint32
	RouterID  netip.Addr // IPv4
	Neighbors []Neighbor
	Routes    []Route
	// NextHop4 and NextHop6 are the next hops of the IPv4 and IPv6 routes;
	// unset: the session's local address (an IPv6 route then needs an IPv6
	// session).
	NextHop4, NextHop6 netip.Addr
	// Prepend is how many extra copies of LocalAS every path carries.
	Prepend int
	// StandbyPrepend is how many more a Standby or Demoted path carries;
	// 0 means DefaultStandbyPrepend.
	StandbyPrepend int
	// MED, when set, is the fixed MED of Primary and Demoted paths;
	// unset: MaxMED − epoch.
	MED *uint32
	// StandbyAnnounce makes a backup announce a Standby path.
	StandbyAnnounce bool
	Logger          *slog.Logger
}

func (c *Config) standbyPrepend() int {
	if c.StandbyPrepend == 0 {
		return DefaultStandbyPrepend
	}
	return c.StandbyPrepend
}

func (c *Config) check() error {
	if c.LocalAS == 0 {
		return errors.New("no local AS")
	}
	if !c.RouterID.Is4() {
		return fmt.Errorf("router id %v is not an IPv4 address", c.RouterID)
	}
	if len(c.Neighbors) == 0 || len(c.Routes) == 0 {
		return errors.New("no neighbours or no routes")
	}
	for _, r := range c.Routes {
		if !r.Prefix.IsValid() || r.Prefix.Bits() != r.Prefix.Addr().BitLen() {
			return fmt.Errorf("route %v is not a host route (/32 or /128)", r.Prefix)
		}
	}
	for _, n := range c.Neighbors {
		if h := n.HoldTime; h != 0 && (h < 3*time.Second || h%time.Second != 0) {
			return fmt.Errorf("neighbour %s: hold time %v is not whole seconds of at least 3s", n.Addr, h)
		}
	}
	return nil
}

// state is what the daemon told the Speaker.
type state struct {
	master     bool
	handingOff bool
	backup     bool
	epoch      uint64
}

// role is what to announce in state st.
func (st state) role(standbyAnnounce bool) Role {
	switch {
	case st.master:
		return Primary
	case st.handingOff:
		return Demoted
	case st.backup && standbyAnnounce:
		return Standby
	}
	return Withdrawn
}

// A Speaker is an embedded BGP speaker announcing the VIP routes for the
// role the daemon sets. Its methods are safe for concurrent use.
type Speaker struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	srv       *server.BgpServer
	st        state
	announced Role
	annEpoch  uint64
	paths     []*apiutil.Path // as last added, for the withdrawal
	closed    bool
}

// New checks cfg and returns a Speaker that has not started.
func New(cfg Config) (*Speaker, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Speaker{cfg: cfg, log: log}, nil
}

// Start runs the BGP server (it listens on no port: it dials every
// neighbour) and configures the neighbours. It announces nothing until a
// role is set.
func (s *Speaker) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.srv != nil {
		return nil
	}
	// GoBGP logs session events (peer up, peer down and why) through the
	// daemon's logger, marked component=gobgp.
	srv := server.NewBgpServer(server.LoggerOption(s.log.With("component", "gobgp"), nil))
	go srv.Serve()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        s.cfg.LocalAS,
		RouterId:   s.cfg.RouterID.String(),
		ListenPort: -1,
	}})
	if err != nil {
		srv.Stop()
		return fmt.Errorf("bgp: starting the speaker: %w", err)
	}
	for _, n := range s.cfg.Neighbors {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.peer(n)}); err != nil {
			srv.Stop()
			return fmt.Errorf("bgp: adding neighbour %s: %w", n.Addr, err)
		}
	}
	s.srv = srv
	s.log.Info("BGP speaker started", "as", s.cfg.LocalAS, "router_id", s.cfg.RouterID.String(), "neighbours", len(s.cfg.Neighbors))
	return s.apply()
}

// peer is GoBGP's configuration of neighbour n.
func (s *Speaker) peer(n Neighbor) *api.Peer {
	hold := n.HoldTime
	if hold == 0 {
		hold = DefaultHoldTime
	}
	secs := uint64(hold / time.Second)
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Addr.String(), PeerAsn: n.AS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: secs, KeepaliveInterval: max(1, secs/3),
			ConnectRetry: connectRetry, IdleHoldTimeAfterReset: idleHoldAfterReset,
		}},
		Transport: &api.Transport{RemotePort: uint32(n.Port)},
	}
	for _, fam := range s.families(n.Addr) {
		afi := api.Family_AFI_IP
		if fam == bgp.RF_IPv6_UC {
			afi = api.Family_AFI_IP6
		}
		p.AfiSafis = append(p.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true,
		}})
	}
	return p
}

// families are the address families a session with addr carries: those
// of the routes whose next hop it can supply (its own family) or that
// have a configured next hop.
func (s *Speaker) families(addr netip.Addr) []bgp.Family {
	var out []bgp.Family
	for _, r := range s.cfg.Routes {
		fam, nh := bgp.RF_IPv4_UC, s.cfg.NextHop4
		if r.Prefix.Addr().Is6() {
			fam, nh = bgp.RF_IPv6_UC, s.cfg.NextHop6
		}
		if (nh.IsValid() || r.Prefix.Addr().Is4() == addr.Unmap().Is4()) && !slices.Contains(out, fam) {
			out = append(out, fam)
		}
	}
	return out
}

// Claim announces the Primary path: this node is master at epoch.
func (s *Speaker) Claim(epoch uint64) error {
	return s.set(func(st *state) { st.master, st.handingOff, st.epoch = true, false, epoch })
}

// Handoff demotes the path for a planned handover: it stays announced,
// worse than the new master's, until EndHandoff.
func (s *Speaker) Handoff() error {
	return s.set(func(st *state) { st.handingOff = st.master || st.handingOff; st.master = false })
}

// EndHandoff ends the hand-off window: the Demoted path is withdrawn (or
// becomes a Standby one).
func (s *Speaker) EndHandoff() error { return s.set(func(st *state) { st.handingOff = false }) }

// Release withdraws the path at once (or makes it a Standby one).
func (s *Speaker) Release() error {
	return s.set(func(st *state) { st.master, st.handingOff = false, false })
}

// SetBackup tells the Speaker whether this node is a backup, which
// announces a Standby path when Config.StandbyAnnounce is on.
func (s *Speaker) SetBackup(backup bool) error { return s.set(func(st *state) { st.backup = backup }) }

// Sync announces again what the state says if an earlier update failed
// (the daemon calls it with every refresh); it does nothing when the
// announcement is in line.
func (s *Speaker) Sync() error { return s.set(func(*state) {}) }

// Role is what the Speaker announces now.
func (s *Speaker) Role() Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.announced
}

func (s *Speaker) set(change func(*state)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	change(&s.st)
	return s.apply()
}

// apply brings the announcement in line with the state; a Speaker not
// started only remembers it.
func (s *Speaker) apply() error {
	start := time.Now()
	defer func() {
		if took := time.Since(start); took > 50*time.Millisecond { // the daemon's loop waited that long
			s.log.Warn("updating the BGP routes was slow", "took", took)
		}
	}()
	role := s.st.role(s.cfg.StandbyAnnounce)
	if s.srv == nil || (role == s.announced && (role == Withdrawn || s.annEpoch == s.st.epoch)) {
		return nil
	}
	if role == Withdrawn {
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: s.paths}); err != nil {
			return fmt.Errorf("bgp: withdrawing the VIP routes: %w", err)
		}
		s.log.Info("BGP routes withdrawn", "vip", s.prefixes(), "was", s.announced.String())
		s.paths, s.announced = nil, Withdrawn
		return nil
	}
	paths := make([]*apiutil.Path, 0, len(s.cfg.Routes))
	for _, r := range s.cfg.Routes {
		p, err := buildPath(&s.cfg, r, Attributes(&s.cfg, r, role, s.st.epoch))
		if err != nil {
			return fmt.Errorf("bgp: building the path of %s: %w", r.Prefix, err)
		}
		paths = append(paths, p)
	}
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
		return fmt.Errorf("bgp: announcing the VIP routes: %w", err)
	}
	s.log.Info("BGP routes announced", "vip", s.prefixes(), "role", role.String(), "epoch", s.st.epoch)
	s.paths, s.announced, s.annEpoch = paths, role, s.st.epoch
	return nil
}

func (s *Speaker) prefixes() []string {
	out := make([]string, len(s.cfg.Routes))
	for i, r := range s.cfg.Routes {
		out[i] = r.Prefix.String()
	}
	return out
}

// buildPath is GoBGP's form of route r with attributes a.
func buildPath(c *Config, r Route, a Attrs) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, err
	}
	fam := bgp.RF_IPv4_UC
	if r.Prefix.Addr().Is6() {
		fam = bgp.RF_IPv6_UC
	}
	nh, err := bgp.NewPathAttributeNextHop(a.NextHop)
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		nh,
		bgp.NewPathAttributeMultiExitDisc(a.MED),
	}
	if len(a.ASPath) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, a.ASPath),
		}))
	}
	if len(a.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(a.Communities))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs}, nil
}

// Peer is one session's state.
type Peer struct {
	Addr        netip.Addr
	Established bool
	State       string // GoBGP's session state, e.g. "established", "active"
}

// Peers reports the sessions' states.
func (s *Speaker) Peers(ctx context.Context) ([]Peer, error) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil, nil
	}
	var out []Peer
	err := srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil {
			return
		}
		a, _ := netip.ParseAddr(p.State.NeighborAddress)
		out = append(out, Peer{
			Addr:        a,
			Established: p.State.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED,
			State:       p.State.SessionState.String(),
		})
	})
	return out, err
}

// Close withdraws every route and closes every session with a Cease
// NOTIFICATION, so the routers drop the routes at once.
func (s *Speaker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.srv == nil {
		return nil
	}
	var err error
	if s.announced != Withdrawn {
		err = s.srv.DeletePath(apiutil.DeletePathRequest{Paths: s.paths})
	}
	s.srv.Stop()
	s.srv = nil
	s.log.Info("BGP speaker stopped")
	if err != nil {
		return fmt.Errorf("bgp: withdrawing at close: %w", err)
	}
	return nil
}
