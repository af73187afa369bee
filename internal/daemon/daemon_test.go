package daemon

import (
	"testing"
	"time"

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
