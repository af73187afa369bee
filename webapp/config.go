package webapp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hbdproject/hbd/internal/redisconn"
)

// Defaults for Config; Config.withDefaults applies them to zero fields.
const (
	DefaultListen       = ":8080"
	DefaultAdmin        = "unix:/run/hbd-webapp/admin.sock"
	DefaultAdminGroup   = "hbd"
	DefaultVersion      = "dev"
	DefaultSessionTTL   = 30 * time.Minute
	DefaultDrainTimeout = 15 * time.Second
	DefaultStoreTimeout = 2 * time.Second
	DefaultKeyPrefix    = "hbd:sess:"

	// MaxNameBytes is the longest name, in bytes of UTF-8, a session holds.
	MaxNameBytes = 256
	// maxBodyBytes bounds every request body; larger bodies get 413.
	maxBodyBytes = 4 << 10
)

// Config configures a Server. The zero value of every field means its default.
type Config struct {
	// Listen is the address of the main listener (page, API, /healthz).
	// Default ":8080".
	Listen string
	// Admin is the address of the admin listener (/admin/drain,
	// /admin/undrain, /admin/inflight): "unix:PATH" for a unix socket of
	// mode 0660 in AdminGroup, which only root and that group can reach,
	// or a loopback host:port, which any local user (or an SSRF bug in
	// another app) could reach, so it needs AdminToken. Default
	// "unix:/run/hbd-webapp/admin.sock".
	Admin string
	// AdminGroup is the group the admin socket is given, the group hbd
	// runs in. If the group does not exist the socket keeps the process's
	// group. Default "hbd".
	AdminGroup string
	// AdminToken, when set, must come with every admin request as
	// "Authorization: Bearer TOKEN". Required with a TCP admin address.
	AdminToken string
	// Node names this host in every answer and in the X-Served-By header.
	// Default: the hostname.
	Node string
	// Version is the app version in whoami/JSON answers and the X-App-Version
	// header. Default "dev".
	Version string
	// Redis says how to reach Redis. New uses it only when it is given a nil
	// client; see NewRedisClient.
	Redis redisconn.Options
	// SessionTTL is how long an unused session lives in Redis; every read or
	// save restarts it (sliding expiry). Default 30 minutes.
	SessionTTL time.Duration
	// CookieSecure sets the Secure attribute on the session cookie; turn it on
	// when the app is reached over HTTPS. Default false.
	CookieSecure bool
	// DrainTimeout bounds graceful shutdown: how long Run waits for in-flight
	// requests after its context ends before closing connections.
	// Default 15 seconds.
	DrainTimeout time.Duration
	// StoreTimeout bounds each request's Redis work; past it the request gets
	// 503. Default 2 seconds.
	StoreTimeout time.Duration
	// KeyPrefix prefixes every session key in Redis. Default "hbd:sess:".
	KeyPrefix string
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Admin == "" {
		c.Admin = DefaultAdmin
	}
	if c.AdminGroup == "" {
		c.AdminGroup = DefaultAdminGroup
	}
	if c.Node == "" {
		if h, err := os.Hostname(); err == nil {
			c.Node = h
		}
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = DefaultStoreTimeout
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	return c
}

// validate reports the first invalid field of a Config that has its defaults.
func (c Config) validate() error {
	if c.Node == "" {
		return errors.New("webapp: node name is empty and the hostname is unknown")
	}
	if !printable(c.Node) || len(c.Node) > 64 {
		return fmt.Errorf("webapp: node name %q must be 1-64 printable characters", c.Node)
	}
	if !printable(c.Version) || len(c.Version) > 64 {
		return fmt.Errorf("webapp: version %q must be 1-64 printable characters", c.Version)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("webapp: listen address %q: %w", c.Listen, err)
	}
	if path, ok := AdminSocket(c.Admin); ok {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("webapp: admin socket %q must be an absolute path", path)
		}
	} else {
		if err := checkLoopback(c.Admin); err != nil {
			return err
		}
		if c.AdminToken == "" {
			return fmt.Errorf("webapp: admin address %q is TCP, which every local user can reach: give it a token (--admin-token-file) or use a unix socket (--admin unix:/run/hbd-webapp/admin.sock)", c.Admin)
		}
	}
	if c.SessionTTL < time.Second {
		return fmt.Errorf("webapp: session TTL %v is shorter than 1s", c.SessionTTL)
	}
	if c.DrainTimeout < 0 {
		return fmt.Errorf("webapp: drain timeout %v is negative", c.DrainTimeout)
	}
	if c.StoreTimeout < 0 {
		return fmt.Errorf("webapp: store timeout %v is negative", c.StoreTimeout)
	}
	return nil
}

// AdminSocket returns the socket path of a "unix:PATH" admin address.
func AdminSocket(addr string) (string, bool) { return strings.CutPrefix(addr, "unix:") }

// checkLoopback accepts host:port whose host is a loopback IP or "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("webapp: admin address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("webapp: admin address %q must be a loopback address or unix:PATH", addr)
	}
	return nil
}

// printable reports whether s is non-empty valid UTF-8 without control
// characters, so it can go into a header and a log line as is.
func printable(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
