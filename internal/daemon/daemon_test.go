package daemon

import (
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/internal/config"
)

func TestNeedsRestart(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{Node: "pc01", Priority: 100, Interface: "eth0", Interval: config.Duration(5 * time.Millisecond)}
	}
	a, b := base(), base()
	b.Priority = 120
	b.Peers = []config.Endpoint{{}}
	if why := needsRestart(a, b); why != "" {
		t.Errorf("priority and peers change live, got %q", why)
	}
	b = base()
	b.Interval = config.Duration(10 * time.Millisecond)
	if why := needsRestart(a, b); why != "interval/dead_after" {
		t.Errorf("interval: %q", why)
	}
	b = base()
	b.Interface = "eth1"
	if why := needsRestart(a, b); why != "interface" {
		t.Errorf("interface: %q", why)
	}
}

func TestFreshnessPerPath(t *testing.T) {
	f := freshness{peers: map[string]*pathSeen{}}
	t0 := time.Now()
	f.note("pc02", heartbeat.PathUDP, t0)
	f.note("pc02", heartbeat.PathTCP, t0.Add(time.Millisecond))
	f.note("pc02", heartbeat.PathUDP, t0.Add(-time.Millisecond)) // late copy: not newer
	s := f.get("pc02")
	if !s.last[heartbeat.PathUDP].Equal(t0) || s.received[heartbeat.PathUDP] != 2 || s.received[heartbeat.PathTCP] != 1 {
		t.Errorf("freshness: %+v", s)
	}
	if got := f.get("nobody"); got.received[heartbeat.PathUDP] != 0 {
		t.Errorf("unknown peer: %+v", got)
	}
}
