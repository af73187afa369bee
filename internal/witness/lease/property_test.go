package lease

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// This file simulates the lease in true time: a holder, a standby and a
// Redis server, each with its own drifting clock, requests and replies with
// random delays and losses, a random renew schedule and a random freeze of
// the holder. The Redis model implements the scripts' semantics (SET NX PX,
// compare-and-set renew) on its own clock. The properties: no standby
// acquires while the old holder still believes it holds the lease (by the
// holder's own clock mapped to true time), and by then every VIP the holder
// refreshed has expired in its kernel.

// clock maps true time (seconds) to a node's local time.
type clock struct{ rate, off float64 }

func (c clock) local(t float64) float64 { return c.off + c.rate*t }
func (c clock) truth(l float64) float64 { return (l - c.off) / c.rate }

var simBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(local float64) time.Time { return simBase.Add(time.Duration(math.Round(local * 1e9))) }
func secs(t time.Time) float64   { return t.Sub(simBase).Seconds() }

// drawer is where a scenario's parameters come from: rapid, or a plain
// random source for the tests that check the simulation has teeth.
type drawer interface {
	float(label string, lo, hi float64) float64
	intn(label string, lo, hi int) int // inclusive
}

type rapidDrawer struct{ t *rapid.T }

func (d rapidDrawer) float(l string, lo, hi float64) float64 {
	return rapid.Float64Range(lo, hi).Draw(d.t, l)
}
func (d rapidDrawer) intn(l string, lo, hi int) int { return rapid.IntRange(lo, hi).Draw(d.t, l) }

type randDrawer struct{ r *rand.Rand }

func (d randDrawer) float(_ string, lo, hi float64) float64 { return lo + d.r.Float64()*(hi-lo) }
func (d randDrawer) intn(_ string, lo, hi int) int          { return lo + d.r.IntN(hi-lo+1) }

// rules are the functions under test, replaceable by broken ones.
type rules struct {
	validUntil func(Timing, time.Time) time.Time
	mayRefresh func(now, validUntil time.Time, lifetime time.Duration) bool
}

var realRules = rules{validUntil: Timing.ValidUntil, mayRefresh: MayRefreshVIP}

type scenario struct {
	tm                             Timing
	holder, standby, redis, kernel clock
	freeze                         float64 // true time the holder freezes; +Inf if it does not
	holderEnd                      float64 // true time the holder stops renewing anyway
	standbyStart                   float64
	seed                           [2]uint64  // of the bulk of the schedule
	rng                            *rand.Rand // from seed, anew for each run
}

func drawTiming(d drawer) Timing {
	iv := time.Duration(d.intn("interval_ms", 10, 200)) * ms
	t := Timing{
		Interval:  iv,
		DeadAfter: iv * time.Duration(d.intn("dead_after_intervals", 1, 10)),
		Lifetime:  time.Duration(d.intn("lifetime_s", 1, 3)) * time.Second,
		Margin:    time.Duration(d.intn("margin_ms", 1, 20)) * ms,
		Drift:     []float64{DefaultDrift, 0.001, 0.05}[d.intn("drift", 0, 2)],
	}
	if d.intn("own_renew_and_budget", 0, 1) == 1 {
		t.Renew = time.Duration(d.intn("renew_ms", 1, 500)) * ms
		t.Delay = time.Duration(d.intn("delay_ms", 1, 500)) * ms
	}
	t = t.WithDefaults()
	t.TTL += time.Duration(d.intn("extra_ttl_ms", 0, 2000)) * ms
	return t
}

// drawRate picks a clock rate within ±ρ, often at an extreme.
func drawRate(d drawer, label string, rho float64) float64 {
	switch d.intn(label+"_kind", 0, 2) {
	case 0:
		return 1 - rho
	case 1:
		return 1 + rho
	}
	return d.float(label, 1-rho, 1+rho)
}

func drawScenario(d drawer) scenario {
	tm := drawTiming(d)
	ttl := tm.TTL.Seconds()
	s := scenario{
		tm:        tm,
		holder:    clock{drawRate(d, "holder_rate", tm.Drift), d.float("holder_off", 0, 1000)},
		standby:   clock{drawRate(d, "standby_rate", tm.Drift), d.float("standby_off", 0, 1000)},
		redis:     clock{drawRate(d, "redis_rate", tm.Drift), d.float("redis_off", 0, 1000)},
		kernel:    clock{drawRate(d, "kernel_rate", tm.Drift), 0},
		holderEnd: d.float("holder_end", 0, 3*ttl),
		freeze:    math.Inf(1),
	}
	if d.intn("freezes", 0, 2) > 0 {
		s.freeze = d.float("freeze", 0, s.holderEnd)
	}
	s.standbyStart = d.float("standby_start", 0, s.holderEnd+ttl)
	s.seed = [2]uint64{uint64(d.intn("seed_hi", 0, math.MaxInt32)), uint64(d.intn("seed_lo", 0, math.MaxInt32))}
	return s
}

const (
	fromHolder = iota
	fromStandby
)

type request struct {
	from      int
	sent      float64 // true time
	sentLocal float64 // the sender's clock
	arrive    float64 // true time at Redis; +Inf if lost
	replyAt   float64 // true time the sender accepts the reply; +Inf if lost or too late
	first     bool    // the holder's initial Acquire (later ones are Renew)
	won       bool
}

// delays draws a request's and its reply's delay (true seconds): mostly
// within the budget, sometimes beyond it, sometimes lost.
func (s *scenario) delays() (req, resp float64) {
	budget := s.tm.Delay.Seconds()
	pick := func() float64 {
		switch x := s.rng.Float64(); {
		case x < 0.03:
			return math.Inf(1)
		case x < 0.08:
			return budget * (1 + s.rng.Float64())
		case x < 0.3:
			return budget * s.rng.Float64() * 0.01 // nearly instant: the tight case for (a)
		default:
			return budget * s.rng.Float64() / 2
		}
	}
	return pick(), pick()
}

func (s *scenario) send(from int, c clock, local float64, first bool) request {
	t := c.truth(local)
	req, resp := s.delays()
	r := request{from: from, sent: t, sentLocal: local, arrive: t + req, replyAt: t + req + resp, first: first}
	if c.rate*(req+resp) > s.tm.Delay.Seconds() {
		r.replyAt = math.Inf(1) // the client gave up: ErrUnreachable
	}
	if from == fromHolder && r.replyAt >= s.freeze {
		r.replyAt = math.Inf(1) // a frozen holder learns nothing
	}
	return r
}

// run plays the scenario and returns the requests (with outcomes), the
// true time of the standby's first successful acquire at Redis (+Inf if
// none) and the holder's VIP refreshes (true times).
func (s *scenario) run(r rules) (reqs []request, standbyWon float64, refreshes []float64) {
	s.rng = rand.New(rand.NewPCG(s.seed[0], s.seed[1]))
	tm := s.tm
	renew := tm.Renew.Seconds()
	ttl := tm.TTL.Seconds()
	interval := tm.Interval.Seconds()

	// The holder: Acquire at true time 0, then Renew on a random schedule
	// (mostly on time, sometimes late, sometimes very late) until it stops
	// or freezes.
	for local, first := s.holder.local(0), true; ; first = false {
		if t := s.holder.truth(local); t >= s.freeze || t > s.holderEnd {
			break
		}
		reqs = append(reqs, s.send(fromHolder, s.holder, local, first))
		switch x := s.rng.Float64(); {
		case x < 0.85:
			local += renew * (0.01 + 0.99*s.rng.Float64())
		case x < 0.97:
			local += renew * (1 + 2*s.rng.Float64())
		default:
			local += ttl * 1.5 * s.rng.Float64()
		}
	}
	if len(reqs) == 0 || math.IsInf(reqs[0].arrive, 1) {
		return nil, math.Inf(1), nil // the holder never held the lease
	}
	// The standby: Acquire every interval or less from a random start
	// (after the holder's first request reached Redis) until well after
	// the holder's lease must have expired.
	start := math.Max(s.standbyStart, reqs[0].arrive+1e-6)
	for local := s.standby.local(start); s.standby.truth(local) < s.holderEnd+3*ttl; {
		reqs = append(reqs, s.send(fromStandby, s.standby, local, false))
		local += interval * (0.01 + 0.99*s.rng.Float64())
	}

	// Redis processes requests in the order they arrive.
	order := make([]int, 0, len(reqs))
	for i := range reqs {
		if !math.IsInf(reqs[i].arrive, 1) {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return reqs[order[a]].arrive < reqs[order[b]].arrive })
	var holderOf int = -1 // fromHolder, fromStandby or -1 for none
	var expiry float64    // on Redis's clock
	standbyWon = math.Inf(1)
	for _, i := range order {
		q := &reqs[i]
		now := s.redis.local(q.arrive)
		if holderOf >= 0 && now >= expiry {
			holderOf = -1
		}
		// The holder's first request and every standby request are
		// Acquire (free or ours); the holder's later ones are Renew (ours
		// only; never re-create).
		acquire := q.from == fromStandby || q.first
		if holderOf == q.from || (acquire && holderOf < 0) {
			holderOf, expiry, q.won = q.from, now+ttl, true
			if q.from == fromStandby && q.arrive < standbyWon {
				standbyWon = q.arrive
			}
		}
	}

	// The holder's belief, and its VIP refreshes: the claim when the first
	// grant arrives, then every so often (a quarter of the lifetime or
	// less), each allowed only by the refresh rule, until it freezes or
	// stops.
	type belief struct{ at, until float64 } // true receipt time, holder's clock
	var beliefs []belief
	for _, q := range reqs {
		if q.from == fromHolder && q.won && !math.IsInf(q.replyAt, 1) {
			beliefs = append(beliefs, belief{q.replyAt, secs(r.validUntil(tm, at(q.sentLocal)))})
		}
	}
	sort.Slice(beliefs, func(a, b int) bool { return beliefs[a].at < beliefs[b].at })
	if len(beliefs) == 0 {
		return reqs, standbyWon, nil
	}
	end := math.Min(s.freeze, s.holderEnd+ttl)
	quarter := tm.Lifetime.Seconds() / 4
	for t, j, until := beliefs[0].at, 0, math.Inf(-1); t < end; t += s.holder.rate * quarter * (0.05 + 0.95*s.rng.Float64()) {
		for ; j < len(beliefs) && beliefs[j].at <= t; j++ {
			until = math.Max(until, beliefs[j].until)
		}
		if r.mayRefresh(at(s.holder.local(t)), at(until), tm.Lifetime) {
			refreshes = append(refreshes, t)
		}
	}
	return reqs, standbyWon, refreshes
}

// check returns the first violation of the safety properties, or nil.
func (s *scenario) check(r rules) error {
	reqs, won, refreshes := s.run(r)
	if math.IsInf(won, 1) {
		return nil
	}
	for _, q := range reqs {
		if q.from != fromHolder || !q.won || math.IsInf(q.replyAt, 1) {
			continue
		}
		until := s.holder.truth(secs(r.validUntil(s.tm, at(q.sentLocal))))
		if until > won {
			return fmt.Errorf("the holder believes it holds the lease until true time %.6f s (grant sent %.6f, reply %.6f), but the standby acquired it at %.6f s",
				until, q.sent, q.replyAt, won)
		}
	}
	slack := (s.tm.Lifetime + KernelSlack).Seconds()
	for _, u := range refreshes {
		if gone := u + slack/s.kernel.rate; gone > won {
			return fmt.Errorf("the holder refreshed its VIP at true time %.6f s, so the kernel holds it until %.6f s, but the standby acquired the lease at %.6f s",
				u, gone, won)
		}
	}
	return nil
}

func TestPropertyLeaseNeverOverlaps(t *testing.T) {
	var runs, taken int
	closest := math.Inf(1) // smallest true time from a belief's end to the standby's acquire
	rapid.Check(t, func(rt *rapid.T) {
		s := drawScenario(rapidDrawer{rt})
		if err := Validate(s.tm); err != nil {
			rt.Fatalf("drawn timing invalid: %v", err)
		}
		if err := s.check(realRules); err != nil {
			rt.Fatalf("timing %+v, clocks holder %v standby %v redis %v kernel %v, freeze %v: %v",
				s.tm, s.holder, s.standby, s.redis, s.kernel, s.freeze, err)
		}
		runs++
		reqs, won, _ := s.run(realRules)
		held := false
		for _, q := range reqs {
			if q.from == fromHolder && q.won && !math.IsInf(q.replyAt, 1) && !math.IsInf(won, 1) {
				held = true
				closest = math.Min(closest, won-s.holder.truth(secs(s.tm.ValidUntil(at(q.sentLocal)))))
			}
		}
		if held {
			taken++
		}
	})
	// Not an assertion: shows that the scenarios reach the interesting case.
	t.Logf("the standby took over from a holder that held the lease in %d of %d scenarios; closest: %.1f ms after the holder's belief ended",
		taken, runs, closest*1e3)
}

// TestPropertyHealthyHolderKeepsVIP checks inequality (c): a holder that
// renews at least every Renew and gets every answer within the call budget
// is never refused a VIP refresh, and never loses the lease.
func TestPropertyHealthyHolderKeepsVIP(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		d := rapidDrawer{rt}
		tm := drawTiming(d)
		h := clock{drawRate(d, "holder_rate", tm.Drift), d.float("holder_off", 0, 1000)}
		red := clock{drawRate(d, "redis_rate", tm.Drift), d.float("redis_off", 0, 1000)}
		rng := rand.New(rand.NewPCG(uint64(d.intn("seed", 0, math.MaxInt32)), 1))
		budget, renew, ttl := tm.Delay.Seconds(), tm.Renew.Seconds(), tm.TTL.Seconds()
		horizon := 3 * ttl

		type grant struct{ at, until float64 } // true receipt, holder's clock
		var grants []grant
		expiry := math.Inf(-1) // Redis clock
		for local := h.local(0); h.truth(local) < horizon; local += renew * rng.Float64() {
			sent := h.truth(local)
			rtt := budget / h.rate * rng.Float64() // within the budget on the holder's clock
			arrive := sent + rtt*rng.Float64()
			now := red.local(arrive)
			if sent > 0 && now >= expiry {
				rt.Fatalf("the lease lapsed in Redis at a healthy holder's renew sent at true %.6f s", sent)
			}
			expiry = now + ttl
			grants = append(grants, grant{sent + rtt, secs(tm.ValidUntil(at(local)))})
		}
		sort.Slice(grants, func(a, b int) bool { return grants[a].at < grants[b].at })
		j, until := 0, math.Inf(-1)
		for u := grants[0].at; u < horizon; u += tm.Lifetime.Seconds() / 4 * rng.Float64() {
			for ; j < len(grants) && grants[j].at <= u; j++ {
				until = math.Max(until, grants[j].until)
			}
			if !MayRefreshVIP(at(h.local(u)), at(until), tm.Lifetime) {
				rt.Fatalf("a healthy holder was refused a VIP refresh at true %.6f s: belief ends at its local %.6f, now %.6f",
					u, until, h.local(u))
			}
		}
	})
}

// The simulation must catch broken rules, or it proves nothing: a belief
// that ignores drift, and a VIP refresh allowed while the belief lasts
// without room for the VIP's lifetime.
func TestSimulationCatchesBrokenRules(t *testing.T) {
	broken := map[string]rules{
		"belief without the drift allowance": {
			validUntil: func(tm Timing, sent time.Time) time.Time { return sent.Add(tm.TTL - tm.Margin) },
			mayRefresh: MayRefreshVIP,
		},
		"VIP refresh without the lifetime": {
			validUntil: Timing.ValidUntil,
			mayRefresh: func(now, until time.Time, _ time.Duration) bool { return now.Before(until) },
		},
	}
	for name, r := range broken {
		found := 0
		for seed := uint64(0); seed < 3000 && found == 0; seed++ {
			s := drawScenario(randDrawer{rand.New(rand.NewPCG(seed, 42))})
			if err := s.check(r); err != nil {
				found++
				t.Logf("%s: seed %d: %v", name, seed, err)
			}
			if err := s.check(realRules); err != nil {
				t.Fatalf("seed %d: the real rules fail: %v", seed, err)
			}
		}
		if found == 0 {
			t.Errorf("%s: no violation found in 3000 scenarios; the simulation is too weak", name)
		}
	}
}
