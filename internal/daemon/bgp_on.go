//go:build !nobgp

package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/metrics"
	"github.com/hbdproject/hbd/vip"
	"github.com/hbdproject/hbd/vip/bgp"
)

var _ speaker = (*bgp.Speaker)(nil)

// NoBGP is config.Options.NoBGP for this build: empty, it has BGP.
const NoBGP = ""

// ensureLocal makes the BGP VIPs' interface (vip.EnsureLocal).
var ensureLocal = vip.EnsureLocal

// newSpeaker is the BGP speaker of the config's bgp section.
func newSpeaker(cfg *config.Config, configPath string, log *slog.Logger) (speaker, error) {
	sc, err := speakerConfig(cfg, configPath)
	if err != nil {
		return nil, err
	}
	sc.Logger = log
	return bgp.New(sc)
}

// registerBGPMetrics adds the BGP speaker's series, read at each scrape.
func registerBGPMetrics(reg *metrics.Registry, sp speaker) {
	s := sp.(*bgp.Speaker)
	reg.NewGaugeFunc("hbd_bgp_sessions_established", "BGP sessions to the neighbours that are established.", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		peers, err := s.Peers(ctx)
		if err != nil {
			return 0
		}
		n := 0
		for _, p := range peers {
			if p.Established {
				n++
			}
		}
		return float64(n)
	})
	reg.NewGaugeFunc("hbd_bgp_announced", "What this node announces for its BGP VIPs: 0 nothing, 1 a standby route, 2 a demoted route (hand-off), 3 the master's route.",
		func() float64 { return float64(s.Role()) })
}

// bgpStatus is the speaker's part of `hbd status`.
func bgpStatus(sp speaker) *control.BGP {
	s := sp.(*bgp.Speaker)
	st := &control.BGP{Announced: s.Role().String(), Neighbours: []control.BGPNeighbour{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	peers, err := s.Peers(ctx)
	if err != nil {
		return st
	}
	for _, p := range peers {
		st.Neighbours = append(st.Neighbours, control.BGPNeighbour{Address: p.Addr.String(), State: p.State})
	}
	return st
}

// speakerConfig is the vip/bgp form of the config's bgp section; the TCP
// MD5 key files are read here (config.Load checked them).
func speakerConfig(cfg *config.Config, configPath string) (bgp.Config, error) {
	b := &cfg.BGP
	out := bgp.Config{
		LocalAS:         b.LocalAS,
		Prepend:         b.Prepend,
		StandbyPrepend:  b.StandbyPrepend,
		MED:             b.MED,
		StandbyAnnounce: b.StandbyAnnounce,
	}
	out.RouterID, _ = netip.ParseAddr(b.RouterID) // all validated
	out.NextHop4, _ = netip.ParseAddr(b.NextHop)
	out.NextHop6, _ = netip.ParseAddr(b.NextHop6)
	for _, v := range b.VIPs {
		r := bgp.Route{Prefix: v.Address.Prefix}
		for _, s := range v.Communities {
			c, _ := config.ParseCommunity(s)
			r.Communities = append(r.Communities, c)
		}
		out.Routes = append(out.Routes, r)
	}
	for _, n := range b.Neighbours {
		addr, _ := netip.ParseAddr(n.Address)
		nb := bgp.Neighbor{Addr: addr, AS: n.AS, HoldTime: n.HoldTime.D(), Port: n.Port}
		if n.PasswordFile != "" {
			pw, err := config.ReadPassword(config.RelTo(configPath, n.PasswordFile))
			if err != nil {
				return bgp.Config{}, fmt.Errorf("bgp neighbour %s: %w", n.Address, err)
			}
			nb.Password = pw
		}
		out.Neighbors = append(out.Neighbors, nb)
	}
	return out, nil
}
