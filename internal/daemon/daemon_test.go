package daemon

import (
	"slices"
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

func TestLiveChanges(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{Node: "pc01", Priority: 100, AuthKeyFile: "/etc/hbd/key", LogLevel: "info"}
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	rotated := []byte("fedcba9876543210fedcba9876543210")
	for _, tc := range []struct {
		name   string
		change func(c *config.Config)
		newKey []byte
		want   []string
	}{
		{"nothing", func(*config.Config) {}, key, nil},
		{"key rotated in place", func(*config.Config) {}, rotated, []string{"auth key"}},
		{"key file moved, same key", func(c *config.Config) { c.AuthKeyFile = "/etc/hbd/key2" }, key, nil},
		{"priority and log level", func(c *config.Config) { c.Priority = 120; c.LogLevel = "debug" }, key, []string{"priority", "log_level"}},
		{"peers and key", func(c *config.Config) { c.Peers = []config.Endpoint{{}} }, rotated, []string{"peers", "auth key"}},
	} {
		b := base()
		tc.change(b)
		if got := liveChanges(base(), key, b, tc.newKey); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if needsRestart(base(), func() *config.Config { c := base(); c.AuthKeyFile = "/etc/hbd/key2"; return c }()) != "" {
		t.Error("a new auth_key_file needs a restart")
	}
	if keyID(key) == keyID(rotated) || len(keyID(key)) != 8 {
		t.Errorf("key ids %q %q", keyID(key), keyID(rotated))
	}
}
