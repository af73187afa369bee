package witness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/witness/lease"

	"github.com/redis/go-redis/v9"
)

// ErrUnreachable is wrapped by every error that means "the witness gave no
// answer": a network error, a timeout (the call budget or the caller's
// context ran out), or a Redis that cannot serve writes right now (loading,
// read-only replica, master down, cluster down). The daemon applies its
// witness policy (safe or available) on it. Other errors are bugs or
// misconfiguration (a wrong password, the key holding a non-string).
var ErrUnreachable = errors.New("witness: unreachable")

// KeyPrefix is the lease key's prefix; the cluster id follows.
const KeyPrefix = "hbd:lease:"

// Config configures a Client.
type Config struct {
	// ClusterID names the cluster; the lease key is KeyPrefix+ClusterID.
	// Required unless Key is set.
	ClusterID string
	// Key overrides the lease key. Default KeyPrefix+ClusterID.
	Key string
	// Timing is the cluster's lease timing; it must pass Validate. Zero
	// fields take their defaults.
	Timing lease.Timing
}

// Grant is the answer to Acquire or Renew.
type Grant struct {
	// Won is true when this node holds the lease now.
	Won bool
	// Holder is the node that holds the lease: this node when Won, the
	// other holder when not, or "" when nobody holds it (Renew of a lapsed
	// lease). A value in the key that hbd did not write is reported whole.
	Holder string
	// Epoch is the epoch in the lease: ours when Won, the holder's when not
	// (0 when unknown).
	Epoch uint64
	// Sent is the local (monotonic) time taken just before the request was
	// sent. Redis starts the TTL only after it, which is what makes
	// ValidUntil safe whatever the request's delay.
	Sent time.Time
	// ValidUntil is the end of the holder's conservative belief, on the
	// same monotonic clock: Sent + TTL×(1−ρ)/(1+ρ) − margin. Zero unless Won.
	// Compare it with time.Now(), never with a wall-clock time.
	ValidUntil time.Time
}

// Client holds and checks the lease of one cluster in Redis. It is safe for
// concurrent use, but the daemon should keep one call in flight and keep the
// latest ValidUntil of its won grants: an answer never extends a belief
// beyond what its own Sent allows, so out-of-order answers are harmless, but
// overlapping calls only add load.
type Client struct {
	rdb redis.UniversalClient
	key string
	t   lease.Timing
}

// New returns a client that keeps the lease in rdb, typically built by
// redisconn.New from the app's own Redis settings (standalone URL,
// Sentinel or Cluster). It does not connect.
func New(rdb redis.UniversalClient, cfg Config) (*Client, error) {
	if rdb == nil {
		return nil, errors.New("witness: no redis client")
	}
	key := cfg.Key
	if key == "" {
		if cfg.ClusterID == "" {
			return nil, errors.New("witness: neither a cluster id nor a lease key given")
		}
		key = KeyPrefix + cfg.ClusterID
	}
	if err := lease.Validate(cfg.Timing); err != nil {
		return nil, err
	}
	return &Client{rdb: rdb, key: key, t: cfg.Timing.WithDefaults()}, nil
}

// Key returns the lease key.
func (c *Client) Key() string { return c.key }

// Timing returns the timing in use, defaults set.
func (c *Client) Timing() lease.Timing { return c.t }

// The lease value is "node/epoch"; the node is everything before the last
// slash, so node names may contain slashes. Each script reads the key and
// writes it in one atomic step: KEYS[1] the key, ARGV[1] our node, ARGV[2]
// our new value, ARGV[3] the TTL in milliseconds. They return {won, value
// now in the key or ""}.
var (
	// Acquire: take the lease if it is free or already ours (any epoch).
	acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(.*)/%d+$') ~= ARGV[1] then
	return {0, v}
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, ARGV[2]}
`)
	// Renew: extend the lease only if it is ours; never re-create it.
	renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
	return {0, ''}
end
if string.match(v, '^(.*)/%d+$') ~= ARGV[1] then
	return {0, v}
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, ARGV[2]}
`)
	// Release: delete the lease only if it is ours. Returns 1 if deleted.
	releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(.*)/%d+$') == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)
)

// Acquire takes the lease for node at epoch if nobody else holds it
// (SET NX PX, atomically with the check): if it already holds our node's
// value, whatever the epoch, it is renewed with the new epoch. A standby
// calls it before claiming the VIP; a claim is allowed only when Won and
// MayRefreshVIP(time.Now(), g.ValidUntil, lifetime).
func (c *Client) Acquire(ctx context.Context, node string, epoch uint64) (Grant, error) {
	return c.grant(ctx, "acquiring", acquireScript, node, epoch)
}

// Renew extends the lease if node holds it, and sets its epoch. When
// another node holds it, or nobody does (it lapsed), Won is false and the
// caller must act as if its belief had ended (it has, by then: see (a)).
func (c *Client) Renew(ctx context.Context, node string, epoch uint64) (Grant, error) {
	return c.grant(ctx, "renewing", renewScript, node, epoch)
}

// Release deletes the lease if node holds it, so that the target of a
// planned handover can win it at once; if another node holds it, nothing
// happens. Release the VIP first: the lease guards it.
func (c *Client) Release(ctx context.Context, node string) error {
	if err := checkNode(node); err != nil {
		return err
	}
	_, err := c.call(ctx, releaseScript, node)
	if err != nil {
		return fmt.Errorf("witness: releasing lease %s for %s: %w", c.key, node, err)
	}
	return nil
}

func (c *Client) grant(ctx context.Context, verb string, s *redis.Script, node string, epoch uint64) (Grant, error) {
	if err := checkNode(node); err != nil {
		return Grant{}, err
	}
	value := node + "/" + strconv.FormatUint(epoch, 10)
	sent := time.Now()
	res, err := c.call(ctx, s, node, value, c.t.TTL.Milliseconds())
	if err != nil {
		return Grant{Sent: sent}, fmt.Errorf("witness: %s lease %s for %s: %w", verb, c.key, node, err)
	}
	won, held, err := parseReply(res)
	if err != nil {
		return Grant{Sent: sent}, fmt.Errorf("witness: %s lease %s for %s: %w", verb, c.key, node, err)
	}
	g := Grant{Won: won, Sent: sent}
	g.Holder, g.Epoch = splitValue(held)
	if won {
		g.ValidUntil = c.t.ValidUntil(sent)
	}
	return g, nil
}

// call runs s within the call budget: it returns by the earlier of the
// caller's deadline and Timing.Delay, even if the Redis client would block
// longer (a client built without ContextTimeoutEnabled ignores deadlines on
// reads). A command abandoned that way finishes in the background; whatever
// it did is safe, since its caller never learns of it.
func (c *Client) call(ctx context.Context, s *redis.Script, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.t.Delay)
	defer cancel()
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := s.Run(ctx, c.rdb, []string{c.key}, args...).Result()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, classify(r.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err())
	}
}

// classify wraps the errors that mean "no answer" in ErrUnreachable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err) // network, timeout, closed client
	}
	if redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsNoReplicasError(err) ||
		redis.HasErrorPrefix(err, "BUSY") {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

func parseReply(v any) (won bool, held string, err error) {
	a, ok := v.([]any)
	if !ok || len(a) != 2 {
		return false, "", fmt.Errorf("unexpected reply %#v", v)
	}
	n, ok1 := a[0].(int64)
	s, ok2 := a[1].(string)
	if !ok1 || !ok2 {
		return false, "", fmt.Errorf("unexpected reply %#v", v)
	}
	return n == 1, s, nil
}

// splitValue parses "node/epoch". A value hbd did not write is returned
// whole as the holder, with epoch 0.
func splitValue(v string) (node string, epoch uint64) {
	i := strings.LastIndexByte(v, '/')
	if i < 0 {
		return v, 0
	}
	e, err := strconv.ParseUint(v[i+1:], 10, 64)
	if err != nil {
		return v, 0
	}
	return v[:i], e
}

func checkNode(node string) error {
	if node == "" {
		return errors.New("witness: empty node name")
	}
	return nil
}
