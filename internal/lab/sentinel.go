package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/resp"
)

// Ports of the Sentinel setup on the redis host, beside StartRedis's master.
const (
	ReplicaPort  = 6380
	SentinelPort = 26379
)

// StartSentinel adds, on the redis host, a replica of the StartRedis master
// (port ReplicaPort) and one sentinel (port SentinelPort, quorum 1) that
// monitors it as master under name, with down-after downAfter. It waits
// until the replica is in sync. It returns the sentinel's host:port. Close
// stops both.
func (l *Lab) StartSentinel(ctx context.Context, name string, downAfter time.Duration) (string, error) {
	h, err := l.host(RedisHost)
	if err != nil {
		return "", err
	}
	ip := h.IPv4.String()
	master := net.JoinHostPort(ip, strconv.Itoa(RedisPort))
	replica := net.JoinHostPort(ip, strconv.Itoa(ReplicaPort))
	dir := filepath.Join(l.dir, "redis-replica")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("lab: replica dir: %w", err)
	}
	if _, err := l.Start(RedisHost, []string{"redis-server", "--bind", ip, "--port", strconv.Itoa(ReplicaPort),
		"--protected-mode", "no", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir,
		"--replicaof", ip, strconv.Itoa(RedisPort)}, ProcOptions{Name: "redis-replica", Dir: dir}); err != nil {
		return "", err
	}
	conf := filepath.Join(l.dir, "sentinel.conf")
	text := fmt.Sprintf("bind %s\nport %d\nprotected-mode no\ndir %s\n"+
		"sentinel monitor %s %s %d 1\nsentinel down-after-milliseconds %s %d\nsentinel failover-timeout %s %d\n",
		ip, SentinelPort, l.dir, name, ip, RedisPort, name, downAfter.Milliseconds(), name, (10 * downAfter).Milliseconds())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("lab: writing %s: %w", conf, err)
	}
	if _, err := l.Start(RedisHost, []string{"redis-server", conf, "--sentinel"}, ProcOptions{Name: "redis-sentinel", Dir: l.dir}); err != nil {
		return "", err
	}
	sentinel := net.JoinHostPort(ip, strconv.Itoa(SentinelPort))
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := l.RedisCommand(ctx, replica, "INFO", "replication")
		if err == nil && strings.Contains(info, "master_link_status:up") {
			if reps, err := l.RedisCommand(ctx, sentinel, "SENTINEL", "REPLICAS", name); err == nil && strings.Contains(reps, strconv.Itoa(ReplicaPort)) {
				return sentinel, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("lab: replica of %s or sentinel not ready within 15s (last: %q, %v)", master, info, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitReplicated waits until the replica StartSentinel started has
// acknowledged every write the master at addr had taken when it was
// called. (WAIT would not do: it counts the acknowledgements of the
// calling connection's own writes, and the lab's connection has none; and
// a master streams to a freshly synced replica only after its first
// acknowledgement.)
func (l *Lab) WaitReplicated(ctx context.Context, addr string, limit time.Duration) error {
	info, err := l.RedisCommand(ctx, addr, "INFO", "replication")
	if err != nil {
		return fmt.Errorf("lab: INFO replication on %s: %w", addr, err)
	}
	want, ok := infoField(info, "master_repl_offset")
	if !ok {
		return fmt.Errorf("lab: %s gives no master_repl_offset:\n%s", addr, info)
	}
	deadline := time.Now().Add(limit)
	for {
		// slave0:ip=…,port=6380,state=online,offset=N,lag=0
		if line, ok := infoLine(info, "slave0"); ok && strings.Contains(line, "state=online") {
			for _, kv := range strings.Split(line, ",") {
				if v, ok := strings.CutPrefix(kv, "offset="); ok {
					if got, err := strconv.ParseInt(v, 10, 64); err == nil && got >= want {
						return nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: the replica has not acknowledged offset %d of %s within %s:\n%s", want, addr, limit, info)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if info, err = l.RedisCommand(ctx, addr, "INFO", "replication"); err != nil {
			return fmt.Errorf("lab: INFO replication on %s: %w", addr, err)
		}
	}
}

// infoLine is the value of field in an INFO reply.
func infoLine(info, field string) (string, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, true
		}
	}
	return "", false
}

// infoField is the integer value of field in an INFO reply.
func infoField(info, field string) (int64, bool) {
	v, ok := infoLine(info, field)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// RedisCommand sends one command (as a RESP array) to addr from the client
// host and returns the reply as text: simple strings, errors, integers and
// bulk strings as they are, arrays as their elements, one a line. An error
// reply is returned as an error.
func (l *Lab) RedisCommand(ctx context.Context, addr string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, "client", "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	return resp.Do(c, args...)
}
