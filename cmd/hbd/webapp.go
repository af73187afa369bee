package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/journal"
	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/webapp"
)

func init() {
	register(command{name: "webapp", summary: "run the co-located web app (sessions in Redis)", run: runWebapp})
}

// redisPasswordEnv is read when --redis-password is not given, so that the
// password need not appear in the process list.
const redisPasswordEnv = "HBD_REDIS_PASSWORD"

func runWebapp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("webapp", "Usage: hbd webapp [flags]\n\n"+
		"Runs the web app that sits beside hbd: a demo page and JSON API whose\n"+
		"sessions live in Redis, /healthz, and an admin listener (a unix socket\n"+
		"only root and the hbd group reach) with /admin/drain, /admin/undrain\n"+
		"and /admin/inflight. SIGTERM drains, then shuts down gracefully.\n")
	var (
		cfg          webapp.Config
		sentinelList string
		clusterList  string
		logLevel     string
		tokenFile    string
	)
	fs.StringVar(&cfg.Listen, "listen", webapp.DefaultListen, "`address` of the page, API and /healthz")
	fs.StringVar(&cfg.Admin, "admin", webapp.DefaultAdmin, "`address` of the admin endpoints (drain, undrain, inflight): unix:PATH (mode 0660), or loopback host:port with --admin-token-file")
	fs.StringVar(&cfg.AdminGroup, "admin-group", webapp.DefaultAdminGroup, "`group` of the admin socket: the group hbd runs in")
	fs.StringVar(&tokenFile, "admin-token-file", "", "`file` with a token every admin request must carry (Authorization: Bearer); required with a TCP --admin")
	fs.StringVar(&cfg.Node, "node", "", "`name` of this node in answers and the X-Served-By header (default: the hostname)")
	fs.StringVar(&cfg.Version, "version", webapp.DefaultVersion, "app `version` shown in answers and the X-App-Version header")
	fs.StringVar(&cfg.Redis.URL, "redis", redisconn.DefaultRedisURL, "standalone Redis `URL`: redis://[user:pass@]host:port/db, rediss:// for TLS, unix:///path")
	fs.StringVar(&cfg.Redis.SentinelMaster, "sentinel-master", "", "Sentinel mode: the monitored master's `name`")
	fs.StringVar(&sentinelList, "sentinel-addrs", "", "Sentinel mode: comma-separated sentinel `host:port` list")
	fs.StringVar(&clusterList, "cluster-addrs", "", "Cluster mode: comma-separated `host:port` list of cluster nodes")
	fs.StringVar(&cfg.Redis.Password, "redis-password", "", "Redis `password` (default: $"+redisPasswordEnv+", else the URL's)")
	fs.StringVar(&cfg.Redis.Username, "redis-user", "", "Redis ACL `user` (default: the URL's)")
	fs.BoolVar(&cfg.Redis.TLS, "redis-tls", false, "use TLS to Redis in Sentinel and Cluster mode (standalone: use rediss://)")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", webapp.DefaultSessionTTL, "sliding lifetime of an unused session")
	fs.BoolVar(&cfg.CookieSecure, "cookie-secure", false, "mark the session cookie Secure (when served over HTTPS)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", webapp.DefaultDrainTimeout, "on SIGTERM, how long to wait for requests in flight")
	fs.StringVar(&logLevel, "log-level", "info", "`level` of log lines: debug (one per request), info, warn, error")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q (webapp takes only flags)", pos[0])
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
	}
	if cfg.SessionTTL < time.Second {
		return fmt.Errorf("--session-ttl %v: must be at least 1s", cfg.SessionTTL)
	}
	if cfg.DrainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout %v: must be positive", cfg.DrainTimeout)
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("--admin-token-file: %w", err)
		}
		if cfg.AdminToken = strings.TrimSpace(string(b)); cfg.AdminToken == "" {
			return fmt.Errorf("--admin-token-file %s is empty", tokenFile)
		}
	}
	if cfg.Redis.SentinelAddrs, err = hostPortList("--sentinel-addrs", sentinelList); err != nil {
		return err
	}
	if cfg.Redis.ClusterAddrs, err = hostPortList("--cluster-addrs", clusterList); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	r := cfg.Redis
	switch {
	case r.SentinelMaster != "" && len(r.ClusterAddrs) > 0:
		return errors.New("--sentinel-master and --cluster-addrs exclude each other")
	case r.SentinelMaster != "" && len(r.SentinelAddrs) == 0:
		return errors.New("--sentinel-master needs --sentinel-addrs")
	case r.SentinelMaster == "" && len(r.SentinelAddrs) > 0:
		return errors.New("--sentinel-addrs needs --sentinel-master")
	case set["redis"] && (r.SentinelMaster != "" || len(r.ClusterAddrs) > 0):
		return errors.New("--redis (standalone) excludes --sentinel-master and --cluster-addrs")
	}
	if cfg.Redis.Password == "" {
		cfg.Redis.Password = os.Getenv(redisPasswordEnv)
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if journal.StderrIsJournal() {
		log = slog.New(journal.New(level))
	}
	redisconn.SetLogger(log)
	srv, err := webapp.New(cfg, nil, log)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// hostPortList splits a comma-separated list of host:port, skipping blanks.
func hostPortList(flagName, list string) ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("%s: %q is not host:port: %w", flagName, a, err)
		}
		out = append(out, a)
	}
	return out, nil
}
