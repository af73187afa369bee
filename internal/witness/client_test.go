package witness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/witness/lease"

	"github.com/redis/go-redis/v9"

	"github.com/hbdproject/hbd/internal/redistest"
)

// Generous bounds: the machine is small and noisy.
const (
	testTTL    = 300 * time.Millisecond
	testBudget = time.Second
	slowBound  = 5 * time.Second // anything that should take about a TTL or a budget
)

// testTiming has a 300 ms TTL so expiry tests are quick. Validate refuses it
// (it leaves no room for a VIP lifetime), so tests build clients with
// newTestClient, which skips Validate: these tests exercise Redis semantics,
// the property tests the timing.
var testTiming = lease.Timing{
	Interval: 50 * ms, DeadAfter: 300 * ms, Lifetime: time.Second,
	TTL: testTTL, Delay: testBudget,
}.WithDefaults()

func newTestClient(t *testing.T, rdb redis.UniversalClient, key string) *Client {
	t.Helper()
	return &Client{rdb: rdb, key: key, t: testTiming}
}

func newRedis(t *testing.T, opts redisconn.Options) redis.UniversalClient {
	t.Helper()
	rdb, err := redisconn.New(opts)
	if err != nil {
		t.Fatalf("NewRedisClient: %v", err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func testKey(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return KeyPrefix + strings.ReplaceAll(t.Name(), "/", "-") + "-" + hex.EncodeToString(b)
}

func mustGrant(t *testing.T, what string, g Grant, err error, won bool, holder string, epoch uint64) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if g.Won != won || g.Holder != holder || g.Epoch != epoch {
		t.Fatalf("%s = won %v holder %q epoch %d, want won %v holder %q epoch %d", what, g.Won, g.Holder, g.Epoch, won, holder, epoch)
	}
	if g.Sent.IsZero() {
		t.Fatalf("%s: Sent not set", what)
	}
	if won != !g.ValidUntil.IsZero() {
		t.Fatalf("%s: won %v but ValidUntil %v", what, won, g.ValidUntil)
	}
	if won && g.ValidUntil.Sub(g.Sent) != testTiming.Belief() {
		t.Fatalf("%s: ValidUntil - Sent = %v, want %v", what, g.ValidUntil.Sub(g.Sent), testTiming.Belief())
	}
}

func wantValue(t *testing.T, srv *redistest.Server, key, want string) {
	t.Helper()
	got, err := srv.Do("GET", key)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	if got != want {
		t.Fatalf("lease value %q, want %q", got, want)
	}
}

func TestAcquireRenewRelease(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newRedis(t, redisconn.Options{URL: srv.URL()})
	key := testKey(t)
	c := newTestClient(t, rdb, key)
	ctx := context.Background()

	g, err := c.Acquire(ctx, "a", 1)
	mustGrant(t, "a acquires a free lease", g, err, true, "a", 1)
	wantValue(t, srv, key, "a/1")
	if pttl, _ := srv.Do("PTTL", key); pttl == "-1" || pttl == "-2" || len(pttl) > 3 {
		t.Fatalf("PTTL %s, want at most %d", pttl, testTTL.Milliseconds())
	}

	g, err = c.Acquire(ctx, "b", 7)
	mustGrant(t, "b acquires a's lease", g, err, false, "a", 1)
	g, err = c.Renew(ctx, "b", 7)
	mustGrant(t, "b renews a's lease", g, err, false, "a", 1)
	wantValue(t, srv, key, "a/1")

	g, err = c.Acquire(ctx, "a", 2)
	mustGrant(t, "a acquires its own lease again", g, err, true, "a", 2)
	wantValue(t, srv, key, "a/2")
	g, err = c.Renew(ctx, "a", 3)
	mustGrant(t, "a renews", g, err, true, "a", 3)
	wantValue(t, srv, key, "a/3")

	// Renewing keeps the lease alive past its TTL.
	for range 6 {
		time.Sleep(testTTL / 3)
		g, err = c.Renew(ctx, "a", 3)
		mustGrant(t, "a renews every TTL/3", g, err, true, "a", 3)
	}

	if err := c.Release(ctx, "b"); err != nil {
		t.Fatalf("b releases a's lease: %v", err)
	}
	wantValue(t, srv, key, "a/3")
	if err := c.Release(ctx, "a"); err != nil {
		t.Fatalf("a releases: %v", err)
	}
	if n, _ := srv.Do("EXISTS", key); n != "0" {
		t.Fatalf("lease still there after its holder released it")
	}
	g, err = c.Renew(ctx, "a", 3)
	mustGrant(t, "a renews a released lease", g, err, false, "", 0)
	if n, _ := srv.Do("EXISTS", key); n != "0" {
		t.Fatalf("Renew re-created a released lease")
	}
	g, err = c.Acquire(ctx, "b", 8)
	mustGrant(t, "b acquires after the release", g, err, true, "b", 8)
}

// Node names are compared whole: "rack" does not hold "rack/1"'s lease.
func TestNodeNamesWithSlashes(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, newRedis(t, redisconn.Options{URL: srv.URL()}), testKey(t))
	ctx := context.Background()
	g, err := c.Acquire(ctx, "rack/1", 4)
	mustGrant(t, "rack/1 acquires", g, err, true, "rack/1", 4)
	g, err = c.Acquire(ctx, "rack", 5)
	mustGrant(t, "rack acquires", g, err, false, "rack/1", 4)
	g, err = c.Renew(ctx, "rack", 5)
	mustGrant(t, "rack renews", g, err, false, "rack/1", 4)
	if err := c.Release(ctx, "rack"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, srv, c.Key(), "rack/1/4")
	if _, err := c.Acquire(ctx, "", 1); err == nil || errors.Is(err, ErrUnreachable) {
		t.Fatalf("Acquire with an empty node: %v, want a plain error", err)
	}
}

// A value hbd did not write blocks the lease (safe) and is reported whole.
func TestForeignValue(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, newRedis(t, redisconn.Options{URL: srv.URL()}), testKey(t))
	if _, err := srv.Do("SET", c.Key(), "someone else", "PX", "60000"); err != nil {
		t.Fatal(err)
	}
	g, err := c.Acquire(context.Background(), "a", 1)
	mustGrant(t, "acquire over a foreign value", g, err, false, "someone else", 0)

	// A key of the wrong type is a configuration error, not unreachability.
	if _, err := srv.Do("DEL", c.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("RPUSH", c.Key(), "x"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Acquire(context.Background(), "a", 1)
	if err == nil || errors.Is(err, ErrUnreachable) {
		t.Fatalf("acquire over a list: %v, want a plain error", err)
	}
}

// Two nodes race for a free lease: exactly one wins. The loser keeps trying
// and wins once the winner's lease expired, and by then the winner's belief
// (ValidUntil, same host clock) has ended.
func TestRace(t *testing.T) {
	srv := redistest.Start(t)
	key := testKey(t)
	nodes := []string{"a", "b"}
	clients := []*Client{
		newTestClient(t, newRedis(t, redisconn.Options{URL: srv.URL()}), key),
		newTestClient(t, newRedis(t, redisconn.Options{URL: srv.URL()}), key),
	}
	ctx := context.Background()
	for round := range 20 {
		if _, err := srv.Do("DEL", key); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		grants := make([]Grant, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				grants[i], errs[i] = clients[i].Acquire(ctx, nodes[i], uint64(round+1))
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, nodes[i], err)
			}
		}
		if grants[0].Won == grants[1].Won {
			t.Fatalf("round %d: won %v and %v, want exactly one winner", round, grants[0].Won, grants[1].Won)
		}
		w, l := 0, 1
		if grants[1].Won {
			w, l = 1, 0
		}
		if grants[l].Holder != nodes[w] {
			t.Fatalf("round %d: loser sees holder %q, want %q", round, grants[l].Holder, nodes[w])
		}
		if round > 2 {
			continue // the expiry part is slow; a few rounds are enough
		}
		// The winner neither renews nor releases (a frozen master).
		deadline := time.Now().Add(slowBound)
		for {
			g, err := clients[l].Acquire(ctx, nodes[l], uint64(round+1))
			if err != nil {
				t.Fatalf("round %d: loser retries: %v", round, err)
			}
			now := time.Now()
			if g.Won {
				if !now.After(grants[w].ValidUntil) {
					t.Fatalf("round %d: loser won at %v while the winner believed until %v",
						round, g.Sent.Sub(grants[w].Sent), grants[w].ValidUntil.Sub(grants[w].Sent))
				}
				t.Logf("round %d: loser won %v after the winner's request (TTL %v, belief %v)",
					round, g.Sent.Sub(grants[w].Sent).Round(ms), testTTL, testTiming.Belief())
				break
			}
			if now.After(deadline) {
				t.Fatalf("round %d: loser did not win within %v", round, slowBound)
			}
			time.Sleep(5 * ms)
		}
	}
}

// A killed Redis gives ErrUnreachable within the budget, whether the
// budget comes from the caller's context or the timing's call budget.
func TestUnreachableWhenKilled(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, newRedis(t, redisconn.Options{URL: srv.URL()}), testKey(t))
	if _, err := c.Acquire(context.Background(), "a", 1); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	checkUnreachable(t, c)

	srv.Restart() // AOF brings the lease back if it had not expired
	deadline := time.Now().Add(slowBound)
	for {
		_, err := c.Acquire(context.Background(), "a", 2)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("witness still unreachable %v after Redis restarted: %v", slowBound, err)
		}
		time.Sleep(50 * ms)
	}
}

// A Redis that accepts connections and never answers (a hung host): calls
// return within the budget even from a client whose own read timeout is
// far longer and ignores the context (ContextTimeoutEnabled false).
func TestUnreachableWhenHung(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			cn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, cn) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, cn := range conns {
			cn.Close()
		}
		mu.Unlock()
	})

	t.Run("webapp client", func(t *testing.T) {
		checkUnreachable(t, newTestClient(t, newRedis(t, redisconn.Options{URL: "redis://" + l.Addr().String() + "/0"}), testKey(t)))
	})
	t.Run("client ignoring deadlines", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: l.Addr().String(), ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxRetries: -1})
		t.Cleanup(func() { _ = rdb.Close() })
		checkUnreachable(t, newTestClient(t, rdb, testKey(t)))
	})
}

func checkUnreachable(t *testing.T, c *Client) {
	t.Helper()
	calls := map[string]func(context.Context) error{
		"Acquire": func(ctx context.Context) error { _, err := c.Acquire(ctx, "a", 1); return err },
		"Renew":   func(ctx context.Context) error { _, err := c.Renew(ctx, "a", 1); return err },
		"Release": func(ctx context.Context) error { return c.Release(ctx, "a") },
	}
	for name, call := range calls {
		for _, budget := range []time.Duration{200 * ms, 0} { // from ctx; from Timing.Delay
			ctx := context.Background()
			want := testTiming.Delay
			if budget > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, budget)
				defer cancel()
				want = budget
			}
			start := time.Now()
			err := call(ctx)
			took := time.Since(start)
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("%s with budget %v: %v, want ErrUnreachable", name, want, err)
			}
			if took > want+500*ms {
				t.Errorf("%s with budget %v took %v", name, want, took)
			}
			t.Logf("%s with budget %v: %v after %v", name, want, err, took.Round(ms))
		}
	}
}

// A replica refuses writes: that is the witness being unavailable (a
// Sentinel failover in progress), not a bug.
func TestReadOnlyReplicaIsUnreachable(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.StartReplica(t, master)
	c := newTestClient(t, newRedis(t, redisconn.Options{URL: replica.URL()}), testKey(t))
	_, err := c.Acquire(context.Background(), "a", 1)
	if !errors.Is(err, ErrUnreachable) || !redis.IsReadOnlyError(err) {
		t.Fatalf("Acquire on a replica: %v, want ErrUnreachable wrapping READONLY", err)
	}
}

// The lease works through Sentinel (redis.NewFailoverClient, built by
// redisconn.New): the client finds the master and the lease lands
// there.
func TestSentinel(t *testing.T) {
	const masterName = "hbdwitness"
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, masterName, master, 500*ms)
	rdb := newRedis(t, redisconn.Options{SentinelMaster: masterName, SentinelAddrs: []string{sentinel.Addr}})
	key := testKey(t)
	c := newTestClient(t, rdb, key)
	ctx := context.Background()

	var g Grant
	var err error
	deadline := time.Now().Add(slowBound)
	for { // the sentinel may need a moment before it answers for the master
		if g, err = c.Acquire(ctx, "a", 1); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * ms)
	}
	mustGrant(t, "a acquires through sentinel", g, err, true, "a", 1)
	wantValue(t, master, key, "a/1")
	g, err = c.Renew(ctx, "a", 2)
	mustGrant(t, "a renews through sentinel", g, err, true, "a", 2)
	g, err = c.Acquire(ctx, "b", 3)
	mustGrant(t, "b acquires through sentinel", g, err, false, "a", 2)
	if err := c.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n, _ := master.Do("EXISTS", key); n != "0" {
		t.Fatal("lease still on the master after Release through sentinel")
	}
}

func TestNew(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	tm := lease.Timing{Interval: 50 * ms, DeadAfter: 300 * ms, Lifetime: 2 * time.Second}
	c, err := New(rdb, Config{ClusterID: "prod", Timing: tm})
	if err != nil {
		t.Fatal(err)
	}
	if c.Key() != "hbd:lease:prod" {
		t.Errorf("Key() = %q", c.Key())
	}
	if got := c.Timing().TTL; got != 4*time.Second {
		t.Errorf("Timing().TTL = %v, want the default 4s", got)
	}
	if c, err := New(rdb, Config{Key: "custom", Timing: tm}); err != nil || c.Key() != "custom" {
		t.Errorf("New with a key: %v, %v", c, err)
	}
	for name, cfg := range map[string]Config{
		"no cluster id": {Timing: tm},
		"bad timing":    {ClusterID: "prod", Timing: lease.Timing{Interval: 50 * ms, DeadAfter: 300 * ms, Lifetime: 2 * time.Second, TTL: testTTL}},
	} {
		if _, err := New(rdb, cfg); err == nil {
			t.Errorf("New with %s: no error", name)
		}
	}
	if _, err := New(nil, Config{ClusterID: "prod", Timing: tm}); err == nil {
		t.Error("New without a client: no error")
	}
}

func ExampleClient() {
	rdb, err := redisconn.New(redisconn.Options{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		panic(err)
	}
	w, err := New(rdb, Config{ClusterID: "shop", Timing: lease.Timing{
		Interval: 50 * time.Millisecond, DeadAfter: 300 * time.Millisecond, Lifetime: 2 * time.Second,
	}})
	if err != nil {
		panic(err)
	}
	fmt.Println(w.Key(), w.Timing().TTL)
	// Output: hbd:lease:shop 4s
}

const ms = time.Millisecond
