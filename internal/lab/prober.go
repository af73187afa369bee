package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// HeaderServedBy is the response header naming the node that answered.
const HeaderServedBy = "X-Served-By"

// DefaultProbeTimeout bounds each probe request made by Probe.
const DefaultProbeTimeout = time.Second

// maxTimelineBuckets bounds a rendered timeline (about 2.9 hours at 10ms).
const maxTimelineBuckets = 1 << 20

// ProbeResult is one probe request.
type ProbeResult struct {
	Start    time.Time
	Duration time.Duration
	Status   int    // HTTP status, 0 if no response
	ServedBy string // HeaderServedBy of the response
	Err      string // transport error, "" if a response arrived
}

// End is when the request finished.
func (r ProbeResult) End() time.Time { return r.Start.Add(r.Duration) }

// OK reports a response with a 2xx status.
func (r ProbeResult) OK() bool { return r.Err == "" && r.Status >= 200 && r.Status < 300 }

// ProbeResults are probe results in start order, with pure analysis methods.
type ProbeResults []ProbeResult

// Failures counts results that are not OK.
func (rs ProbeResults) Failures() int {
	n := 0
	for _, r := range rs {
		if !r.OK() {
			n++
		}
	}
	return n
}

// Gap is an interval between two good responses, by finish time.
type Gap struct {
	From     time.Time // end of the last good response before the gap
	To       time.Time // end of the first good response after it
	Failures int       // failed requests that finished inside the gap
}

// Duration is To - From.
func (g Gap) Duration() time.Duration { return g.To.Sub(g.From) }

func (g Gap) String() string {
	return fmt.Sprintf("%v (%d failures)", g.Duration().Round(time.Millisecond), g.Failures)
}

// byEnd returns the results sorted by finish time.
func (rs ProbeResults) byEnd() ProbeResults {
	s := slices.Clone(rs)
	sort.SliceStable(s, func(i, j int) bool { return s[i].End().Before(s[j].End()) })
	return s
}

// Gaps lists every interval between consecutive good responses (by finish
// time) longer than min, in time order.
func (rs ProbeResults) Gaps(min time.Duration) []Gap {
	var out []Gap
	var prev *ProbeResult
	fails := 0
	s := rs.byEnd()
	for i := range s {
		r := &s[i]
		if !r.OK() {
			fails++
			continue
		}
		if prev != nil {
			if g := (Gap{From: prev.End(), To: r.End(), Failures: fails}); g.Duration() > min {
				out = append(out, g)
			}
		}
		prev, fails = r, 0
	}
	return out
}

// LongestGap is the longest interval between consecutive good responses;
// zero if there are fewer than two.
func (rs ProbeResults) LongestGap() Gap {
	var best Gap
	for _, g := range rs.Gaps(0) {
		if g.Duration() > best.Duration() {
			best = g
		}
	}
	return best
}

// GapAround is the interval from the last good response finished at or
// before t to the first good response finished after t — the outage a user
// saw around an event at t. ok is false if either side has no good response.
func (rs ProbeResults) GapAround(t time.Time) (g Gap, ok bool) {
	var before, after *ProbeResult
	fails := 0
	s := rs.byEnd()
	for i := range s {
		r := &s[i]
		if !r.End().After(t) {
			if r.OK() {
				before, fails = r, 0
			} else {
				fails++
			}
			continue
		}
		if r.OK() {
			after = r
			break
		}
		fails++
	}
	if before == nil || after == nil {
		return Gap{}, false
	}
	return Gap{From: before.End(), To: after.End(), Failures: fails}, true
}

// ServedBy counts good responses per serving node among results finished in
// [from, to); a zero from or to leaves that side open.
func (rs ProbeResults) ServedBy(from, to time.Time) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		e := r.End()
		if !r.OK() || (!from.IsZero() && e.Before(from)) || (!to.IsZero() && !e.Before(to)) {
			continue
		}
		m[r.ServedBy]++
	}
	return m
}

// LastServedBy is the node of the last good response finished at or before t,
// or "" if none.
func (rs ProbeResults) LastServedBy(t time.Time) string {
	node := ""
	for _, r := range rs.byEnd() {
		if r.End().After(t) {
			break
		}
		if r.OK() {
			node = r.ServedBy
		}
	}
	return node
}

// FirstServedBy is the node of the first good response finished after t, or
// "" if none.
func (rs ProbeResults) FirstServedBy(t time.Time) string {
	for _, r := range rs.byEnd() {
		if r.End().After(t) && r.OK() {
			return r.ServedBy
		}
	}
	return ""
}

// Timeline renders one character per bucket from start (the first request's
// start if zero) to the last finish: 'x' if any request finishing in the
// bucket failed, else the symbol of the node of the last good one, else '.'.
func (rs ProbeResults) Timeline(start time.Time, bucket time.Duration, sym NodeSymbol) string {
	if len(rs) == 0 || bucket <= 0 {
		return ""
	}
	if sym == nil {
		sym = DefaultNodeSymbol
	}
	s := rs.byEnd()
	if start.IsZero() {
		start = s[0].Start
		for _, r := range s {
			if r.Start.Before(start) {
				start = r.Start
			}
		}
	}
	n := int(s[len(s)-1].End().Sub(start)/bucket) + 1
	n = min(max(n, 0), maxTimelineBuckets)
	cells := make([]rune, n)
	for i := range cells {
		cells[i] = '.'
	}
	for _, r := range s {
		i := int(r.End().Sub(start) / bucket)
		if i < 0 || i >= n {
			continue
		}
		switch {
		case !r.OK():
			cells[i] = 'x'
		case cells[i] != 'x':
			cells[i] = sym(r.ServedBy)
		}
	}
	return string(cells)
}

// String is a one-line summary.
func (rs ProbeResults) String() string {
	return fmt.Sprintf("%d requests, %d failures, longest gap %v, served by %v",
		len(rs), rs.Failures(), rs.LongestGap(), rs.ServedBy(time.Time{}, time.Time{}))
}

// ProbeConfig configures ProbeWith.
type ProbeConfig struct {
	From      string        // host the requests come from, e.g. "client"
	URL       string        // e.g. "http://198.51.100.10:8080/healthz"
	Every     time.Duration // interval between request starts; default 10ms
	KeepAlive bool          // reuse connections
	Timeout   time.Duration // per request; default DefaultProbeTimeout
	// Open starts a request every Every whatever the earlier ones are
	// doing, as many independent users would (an open loop). Without it
	// the requests go one at a time, and one that hangs — accepted by a
	// host whose cable was then pulled: its answer never comes and
	// nothing is left to retransmit — holds back every later one until
	// it times out, so the gap measured is the client's timeout, not the
	// outage.
	Open bool
}

// maxInFlight bounds an open-loop prober's concurrent requests.
const maxInFlight = 1024

// Prober sends GET requests at a fixed interval and records the results. Its
// methods are safe for concurrent use while it runs.
type Prober struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	results  ProbeResults
	inFlight map[*time.Time]struct{} // start times of the requests not finished yet
}

// Probe starts sending a GET to url from the host every `every`, one request
// at a time (a slow request delays the next; see ProbeConfig.Open), until ctx is done, Stop is
// called or 2^20 requests were made. Each request times out after
// DefaultProbeTimeout.
func (l *Lab) Probe(ctx context.Context, from, url string, every time.Duration, keepAlive bool) *Prober {
	return l.ProbeWith(ctx, ProbeConfig{From: from, URL: url, Every: every, KeepAlive: keepAlive})
}

// ProbeWith is Probe with every setting.
func (l *Lab) ProbeWith(ctx context.Context, c ProbeConfig) *Prober {
	if c.Timeout <= 0 {
		c.Timeout = DefaultProbeTimeout
	}
	client := l.HTTPClient(c.From, c.KeepAlive, c.Timeout)
	return newProber(ctx, client, c)
}

func newProber(ctx context.Context, client *http.Client, c ProbeConfig) *Prober {
	if c.Every <= 0 {
		c.Every = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Prober{cancel: cancel, done: make(chan struct{}), inFlight: map[*time.Time]struct{}{}}
	record := func() {
		start := time.Now()
		p.mu.Lock()
		p.inFlight[&start] = struct{}{}
		p.mu.Unlock()
		r := probeOnce(ctx, client, c.URL)
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.inFlight, &start)
		if ctx.Err() != nil {
			return // cut short by Stop: not a result
		}
		p.results = append(p.results, r)
	}
	go func() {
		defer close(p.done)
		defer client.CloseIdleConnections()
		var wg sync.WaitGroup
		defer wg.Wait()
		slots := make(chan struct{}, maxInFlight)
		t := time.NewTicker(c.Every)
		defer t.Stop()
		for range maxSamples {
			if c.Open {
				select {
				case slots <- struct{}{}:
					wg.Go(func() {
						defer func() { <-slots }()
						record()
					})
				case <-ctx.Done():
					return
				}
			} else {
				record()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func probeOnce(ctx context.Context, client *http.Client, url string) ProbeResult {
	r := ProbeResult{Start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		r.Err = err.Error()
		r.Duration = time.Since(r.Start)
		return r
	}
	resp, err := client.Do(req)
	if err != nil {
		r.Err = err.Error()
		r.Duration = time.Since(r.Start)
		return r
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	r.Status = resp.StatusCode
	r.ServedBy = resp.Header.Get(HeaderServedBy)
	if err != nil {
		r.Err = "reading body: " + err.Error()
	}
	r.Duration = time.Since(r.Start)
	return r
}

// Stop ends probing and waits for the loop to finish. Idempotent.
func (p *Prober) Stop() {
	p.cancel()
	<-p.done
}

// WaitStartedBefore waits until every request that started before t has
// finished, so that Results holds all of them (at most the request
// timeout), or until ctx is done.
func (p *Prober) WaitStartedBefore(ctx context.Context, t time.Time) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		pending := false
		for s := range p.inFlight {
			if s.Before(t) {
				pending = true
				break
			}
		}
		p.mu.Unlock()
		if !pending {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return nil
		case <-tick.C:
		}
	}
}

// Results returns a copy of the results so far, in start order.
func (p *Prober) Results() ProbeResults {
	p.mu.Lock()
	rs := slices.Clone(p.results)
	p.mu.Unlock()
	slices.SortStableFunc(rs, func(a, b ProbeResult) int { return a.Start.Compare(b.Start) })
	return rs
}

// Merged is the results of several probers, in start order.
func Merged(ps ...*Prober) ProbeResults {
	var rs ProbeResults
	for _, p := range ps {
		rs = append(rs, p.Results()...)
	}
	slices.SortStableFunc(rs, func(a, b ProbeResult) int { return a.Start.Compare(b.Start) })
	return rs
}

// Failures is Results().Failures().
func (p *Prober) Failures() int { return p.Results().Failures() }

// Gaps is Results().Gaps(min).
func (p *Prober) Gaps(min time.Duration) []Gap { return p.Results().Gaps(min) }

// GapAround is Results().GapAround(t).
func (p *Prober) GapAround(t time.Time) (Gap, bool) { return p.Results().GapAround(t) }

// ServedBy is Results().ServedBy(from, to).
func (p *Prober) ServedBy(from, to time.Time) map[string]int { return p.Results().ServedBy(from, to) }

// Timeline renders the results in 10ms buckets with DefaultNodeSymbol.
func (p *Prober) Timeline() string {
	return p.Results().Timeline(time.Time{}, 10*time.Millisecond, DefaultNodeSymbol)
}

// Summary is Results().String().
func (p *Prober) Summary() string { return strings.TrimSpace(p.Results().String()) }
