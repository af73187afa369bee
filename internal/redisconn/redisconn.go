// Package redisconn opens go-redis clients from one set of options (standalone
// URL, Sentinel or Cluster), for the web app and the witness alike.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// Default Redis timeouts. They are short because a web request waits on
// them: a Redis that does not answer within them is reported as 503, and the
// page says so, rather than hanging the browser.
const (
	DefaultDialTimeout  = 2 * time.Second
	DefaultReadTimeout  = 1 * time.Second
	DefaultWriteTimeout = 1 * time.Second
	DefaultPoolTimeout  = 2 * time.Second

	// Retries are few and quick: while Redis is down a request should get
	// its 503 well within the store timeout, and a Sentinel failover is
	// ridden out by the client's next request, not by one long retry loop.
	maxRetries         = 2
	maxRetryBackoff    = 200 * time.Millisecond
	dialerRetries      = 2
	dialerRetryBackoff = 50 * time.Millisecond
)

// Options says how to reach Redis, in one of three modes:
//
//   - Sentinel, when SentinelMaster is set: SentinelAddrs are asked for the
//     current master of SentinelMaster (redis.NewFailoverClient).
//   - Cluster, when ClusterAddrs is set: a Redis Cluster seeded from them.
//   - Standalone otherwise: URL, e.g. redis://user:pass@host:6379/0,
//     rediss://host:6380/0 (TLS) or unix:///run/redis.sock.
type Options struct {
	// URL is the standalone server. Default "redis://127.0.0.1:6379/0".
	URL string
	// SentinelMaster is the master name the sentinels monitor.
	SentinelMaster string
	// SentinelAddrs are host:port of the sentinels.
	SentinelAddrs []string
	// SentinelPassword authenticates to the sentinels themselves, if they
	// require it. Default none.
	SentinelPassword string
	// ClusterAddrs are host:port of some cluster nodes.
	ClusterAddrs []string
	// Username and Password authenticate to the data nodes (ACL user when
	// Username is set, else requirepass). In standalone mode they override
	// the URL's user info when non-empty.
	Username string
	Password string
	// DB selects the database in sentinel mode (standalone takes it from the
	// URL path; cluster has only database 0). Default 0.
	DB int
	// TLS turns on TLS in sentinel and cluster mode (standalone uses the
	// rediss:// scheme). Default false.
	TLS bool
	// DialTimeout, ReadTimeout, WriteTimeout and PoolTimeout bound each step
	// of a command. Defaults 2s, 1s, 1s, 2s.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolTimeout  time.Duration
}

// DefaultRedisURL is the standalone server used when no URL or sentinel or
// cluster addresses are given.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// New builds a client for opts with all timeouts set. It does not
// connect: the first command does, so an unreachable Redis at start-up makes
// the app answer 503 rather than refuse to start.
func New(opts Options) (redis.UniversalClient, error) {
	dial := orDefault(opts.DialTimeout, DefaultDialTimeout)
	read := orDefault(opts.ReadTimeout, DefaultReadTimeout)
	write := orDefault(opts.WriteTimeout, DefaultWriteTimeout)
	pool := orDefault(opts.PoolTimeout, DefaultPoolTimeout)
	var tlsConf *tls.Config
	if opts.TLS {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}

	switch {
	case opts.SentinelMaster != "" && len(opts.ClusterAddrs) > 0:
		return nil, errors.New("webapp: redis: choose sentinel or cluster, not both")
	case opts.SentinelMaster != "":
		if len(opts.SentinelAddrs) == 0 {
			return nil, errors.New("webapp: redis: sentinel master given without sentinel addresses")
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            opts.SentinelMaster,
			SentinelAddrs:         opts.SentinelAddrs,
			SentinelPassword:      opts.SentinelPassword,
			Username:              opts.Username,
			Password:              opts.Password,
			DB:                    opts.DB,
			TLSConfig:             tlsConf,
			DialTimeout:           dial,
			ReadTimeout:           read,
			WriteTimeout:          write,
			PoolTimeout:           pool,
			ContextTimeoutEnabled: true,
			MaxRetries:            maxRetries,
			MaxRetryBackoff:       maxRetryBackoff,
			DialerRetries:         dialerRetries,
			DialerRetryTimeout:    dialerRetryBackoff,
		}), nil
	case len(opts.SentinelAddrs) > 0:
		return nil, errors.New("webapp: redis: sentinel addresses given without a master name")
	case len(opts.ClusterAddrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 opts.ClusterAddrs,
			Username:              opts.Username,
			Password:              opts.Password,
			TLSConfig:             tlsConf,
			DialTimeout:           dial,
			ReadTimeout:           read,
			WriteTimeout:          write,
			PoolTimeout:           pool,
			ContextTimeoutEnabled: true,
			MaxRetries:            maxRetries,
			MaxRetryBackoff:       maxRetryBackoff,
			DialerRetries:         dialerRetries,
			DialerRetryTimeout:    dialerRetryBackoff,
		}), nil
	}

	u := opts.URL
	if u == "" {
		u = DefaultRedisURL
	}
	o, err := redis.ParseURL(u)
	if err != nil {
		// The URL may hold a password: name the problem, not the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("webapp: parsing redis URL: %w", err)
	}
	if opts.Username != "" {
		o.Username = opts.Username
	}
	if opts.Password != "" {
		o.Password = opts.Password
	}
	// Timeouts given in the URL's query (dial_timeout=…) win over the
	// defaults, explicit options win over both.
	o.DialTimeout = pick(opts.DialTimeout, o.DialTimeout, dial)
	o.ReadTimeout = pick(opts.ReadTimeout, o.ReadTimeout, read)
	o.WriteTimeout = pick(opts.WriteTimeout, o.WriteTimeout, write)
	o.PoolTimeout = pick(opts.PoolTimeout, o.PoolTimeout, pool)
	o.ContextTimeoutEnabled = true
	if o.MaxRetries == 0 {
		o.MaxRetries = maxRetries
	}
	if o.MaxRetryBackoff == 0 {
		o.MaxRetryBackoff = maxRetryBackoff
	}
	o.DialerRetries, o.DialerRetryTimeout = dialerRetries, dialerRetryBackoff
	return redis.NewClient(o), nil
}

func pick(explicit, fromURL, def time.Duration) time.Duration {
	switch {
	case explicit != 0:
		return explicit
	case fromURL != 0:
		return fromURL
	}
	return def
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// SetLogger sends go-redis's own log lines (dial failures, sentinel
// switches) to log at warn level instead of the standard logger. go-redis
// keeps one logger per process, so only a command's main should call it.
func SetLogger(log *slog.Logger) {
	redis.SetLogger(redisLogger{log})
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
