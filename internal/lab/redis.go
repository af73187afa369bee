package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RedisHost is the host StartRedis runs redis-server on; RedisPort its port.
const (
	RedisHost = "redis"
	RedisPort = 6379
)

// StartRedis runs redis-server on the "redis" host, bound to its IPv4 and IPv6
// addresses on RedisPort, without protected mode or persistence, working in
// a directory under the lab's Dir, and waits until it answers PING (bounded
// by ctx, default 10s). It returns "198.51.100.20:6379". Close stops it;
// Redis returns the process to stop it earlier.
func (l *Lab) StartRedis(ctx context.Context) (string, error) {
	h, err := l.host(RedisHost)
	if err != nil {
		return "", fmt.Errorf("lab: starting redis: %w", err)
	}
	if err := checkCommands(Prereqs[2:3]); err != nil {
		return "", err
	}
	l.mu.Lock()
	running := l.redis != nil && !l.redis.Exited()
	l.mu.Unlock()
	if running {
		return "", errors.New("lab: redis already running")
	}
	dir := filepath.Join(l.dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("lab: redis dir: %w", err)
	}
	p, err := l.Start(RedisHost, []string{
		"redis-server",
		"--bind", h.IPv4.String(), h.IPv6.String(),
		"--port", fmt.Sprint(RedisPort),
		"--protected-mode", "no",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", dir,
	}, ProcOptions{Name: "redis-server", Dir: dir})
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	l.redis = p
	l.mu.Unlock()

	addr := net.JoinHostPort(h.IPv4.String(), fmt.Sprint(RedisPort))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	var last error
	for range 400 {
		if p.Exited() {
			return "", fmt.Errorf("lab: redis-server exited: %w: %s", p.Wait(0), p.tail(2048))
		}
		if last = l.redisPing(ctx, addr); last == nil {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("lab: waiting for redis at %s: %w (last: %w)", addr, ctx.Err(), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("lab: waiting for redis at %s: %w", addr, last)
}

// Redis is the redis-server process StartRedis started, or nil.
func (l *Lab) Redis() *Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.redis
}

// redisPing sends an inline PING from the client host (or the redis host if
// there is no client) and expects +PONG.
func (l *Lab) redisPing(ctx context.Context, addr string) error {
	line, err := l.redisInline(ctx, addr, "PING")
	if err == nil && line != "+PONG" {
		err = fmt.Errorf("unexpected reply %q", line)
	}
	return err
}

// RedisSave makes the running redis-server write its snapshot (SAVE), so
// that a restart by StartRedis, which works in the same directory, comes
// back with the data: what a persistent production Redis does.
func (l *Lab) RedisSave(ctx context.Context) error {
	h, err := l.host(RedisHost)
	if err != nil {
		return err
	}
	line, err := l.redisInline(ctx, net.JoinHostPort(h.IPv4.String(), fmt.Sprint(RedisPort)), "SAVE")
	if err == nil && line != "+OK" {
		err = fmt.Errorf("unexpected reply %q", line)
	}
	if err != nil {
		return fmt.Errorf("lab: redis SAVE: %w", err)
	}
	return nil
}

// redisInline sends one inline command from the client host (or the redis
// host if there is no client) and returns the first line of the reply.
func (l *Lab) redisInline(ctx context.Context, addr, cmd string) (string, error) {
	from := "client"
	if l.hosts[from] == nil {
		from = RedisHost
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, from, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
