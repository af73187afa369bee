package lab

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// res is a result starting at startMs, lasting durMs, served by node ("" and
// err != "" for a failure).
func res(startMs, durMs int, node, err string) ProbeResult {
	r := ProbeResult{Start: t0.Add(ms(startMs)), Duration: ms(durMs), ServedBy: node, Err: err}
	if err == "" {
		r.Status = 200
	}
	return r
}

// A failover from pc01 to pc02: good until 30ms, failures, good again at 95ms.
var failover = ProbeResults{
	res(0, 2, "pc01", ""),
	res(10, 2, "pc01", ""),
	res(20, 2, "pc01", ""),
	res(30, 40, "", "timeout"), // ends 70
	res(70, 12, "", "refused"), // ends 82
	res(85, 10, "pc02", ""),    // ends 95
	res(100, 2, "pc02", ""),
}

func TestProbeFailuresAndGaps(t *testing.T) {
	if got := failover.Failures(); got != 2 {
		t.Errorf("Failures = %d, want 2", got)
	}
	r503 := res(0, 1, "pc01", "")
	r503.Status = 503
	if r503.OK() || (ProbeResults{r503}).Failures() != 1 {
		t.Error("a 503 must count as a failure")
	}

	gaps := failover.Gaps(ms(15))
	want := []Gap{{From: t0.Add(ms(22)), To: t0.Add(ms(95)), Failures: 2}}
	if !reflect.DeepEqual(gaps, want) {
		t.Fatalf("Gaps = %v, want %v", gaps, want)
	}
	if n := len(failover.Gaps(0)); n != 4 {
		t.Errorf("Gaps(0) has %d, want 4", n)
	}
	if g := failover.LongestGap(); g.Duration() != ms(73) || g.Failures != 2 {
		t.Errorf("LongestGap = %v", g)
	}

	g, ok := failover.GapAround(t0.Add(ms(50)))
	if !ok || g.Duration() != ms(73) || g.Failures != 2 {
		t.Errorf("GapAround(50ms) = %v, %v", g, ok)
	}
	// Around an instant between two good ones: the normal spacing.
	if g, ok := failover.GapAround(t0.Add(ms(15))); !ok || g.Duration() != ms(10) || g.Failures != 0 {
		t.Errorf("GapAround(15ms) = %v, %v", g, ok)
	}
	if _, ok := failover.GapAround(t0.Add(-ms(1))); ok {
		t.Error("GapAround before the first result must not be ok")
	}
	if _, ok := failover.GapAround(t0.Add(ms(200))); ok {
		t.Error("GapAround after the last result must not be ok")
	}
	if g := (ProbeResults{}).LongestGap(); g.Duration() != 0 {
		t.Errorf("LongestGap of nothing = %v", g)
	}
}

func TestProbeServedBy(t *testing.T) {
	mid := t0.Add(ms(50))
	if got := failover.ServedBy(time.Time{}, mid); !reflect.DeepEqual(got, map[string]int{"pc01": 3}) {
		t.Errorf("before = %v", got)
	}
	if got := failover.ServedBy(mid, time.Time{}); !reflect.DeepEqual(got, map[string]int{"pc02": 2}) {
		t.Errorf("after = %v", got)
	}
	if a, b := failover.LastServedBy(mid), failover.FirstServedBy(mid); a != "pc01" || b != "pc02" {
		t.Errorf("last/first served by = %q/%q", a, b)
	}
	if got := failover.FirstServedBy(t0.Add(ms(500))); got != "" {
		t.Errorf("FirstServedBy after the end = %q", got)
	}
}

func TestProbeTimeline(t *testing.T) {
	// Buckets of 10ms from t0; results end at 2,12,22,70,82,95,102.
	got := failover.Timeline(time.Time{}, ms(10), nil)
	want := "111....xx22"
	if got != want {
		t.Errorf("Timeline = %q, want %q", got, want)
	}
	// A failure and a success in one bucket: the failure shows.
	mixed := ProbeResults{res(0, 1, "pc01", ""), res(0, 5, "", "boom")}
	if got := mixed.Timeline(time.Time{}, ms(10), nil); got != "x" {
		t.Errorf("mixed bucket = %q, want x", got)
	}
	// A custom symbol mapping.
	sym := func(node string) rune { return map[string]rune{"pc01": 'A', "pc02": 'B'}[node] }
	if got := failover.Timeline(t0, ms(50), sym); got != "AxB" {
		t.Errorf("custom timeline = %q", got)
	}
	if got := (ProbeResults{}).Timeline(time.Time{}, ms(10), nil); got != "" {
		t.Errorf("empty timeline = %q", got)
	}
}

func TestDefaultNodeSymbol(t *testing.T) {
	for node, want := range map[string]rune{"pc01": '1', "pc02": '2', "redis": 'r', "": '?', "x": '?', "client": 'c', "node7": '7'} {
		if got := DefaultNodeSymbol(node); got != want {
			t.Errorf("DefaultNodeSymbol(%q) = %q, want %q", node, got, want)
		}
	}
}

func TestHolderSamples(t *testing.T) {
	s := HolderSamples{
		{At: t0},
		{At: t0.Add(ms(10)), Holders: []string{"pc01"}},
		{At: t0.Add(ms(20)), Holders: []string{"pc01", "pc02"}},
		{At: t0.Add(ms(35)), Holders: []string{"pc01", "pc02"}},
		{At: t0.Add(ms(40)), Holders: []string{"pc02"}},
		{At: t0.Add(ms(50))},
		{At: t0.Add(ms(60)), Holders: []string{"pc02"}},
	}
	if got := s.MaxConcurrent(); got != 2 {
		t.Errorf("MaxConcurrent = %d", got)
	}
	if got := s.DoubleHolderDuration(); got != ms(20) {
		t.Errorf("DoubleHolderDuration = %v, want 20ms", got)
	}
	if got := s.NoHolderDuration(); got != ms(20) {
		t.Errorf("NoHolderDuration = %v, want 20ms", got)
	}
	if got := s.String(); got != ".1!!2.2" {
		t.Errorf("String = %q", got)
	}
	if got := len(s.Changes()); got != 6 {
		t.Errorf("Changes = %d, want 6: %v", got, s.Changes())
	}
	if (HolderSamples{}).MaxConcurrent() != 0 || (HolderSamples{{At: t0, Holders: []string{"a", "b"}}}).DoubleHolderDuration() != 0 {
		t.Error("degenerate timelines")
	}
}

func TestHoldersFromEvents(t *testing.T) {
	hosts := []string{"pc01", "pc02"}
	ev := func(at int, host string, added bool) AddrEvent {
		return AddrEvent{At: t0.Add(ms(at)), Host: host, Added: added}
	}
	got := HoldersFromEvents(hosts, map[string]bool{"pc01": true}, t0, []AddrEvent{
		ev(5, "pc01", true),   // a lifetime renewal: no change
		ev(10, "pc02", true),  // two holders ...
		ev(10, "pc01", false), // ... read in the same batch: still an overlap of 0 ms, in this order
		ev(30, "pc01", true),
		ev(42, "pc01", false),
		ev(50, "pc02", false),
	}, t0.Add(ms(60)))
	if s := got.String(); s != "1!2!2.." {
		t.Errorf("timeline %q, want 1!2!2..", s)
	}
	if got.MaxConcurrent() != 2 || got.DoubleHolderDuration() != ms(12) || got.NoHolderDuration() != ms(10) {
		t.Errorf("max %d, double %v, none %v", got.MaxConcurrent(), got.DoubleHolderDuration(), got.NoHolderDuration())
	}
	// A window starts with the holders as of its start and ends at its end.
	w := got.Window(t0.Add(ms(20)), t0.Add(ms(45)))
	if s := w.String(); s != "2!22" || w.DoubleHolderDuration() != ms(12) || !w[0].At.Equal(t0.Add(ms(20))) {
		t.Errorf("window %q, double %v", s, w.DoubleHolderDuration())
	}
	// The order of events decides, not their times: a deletion read before
	// the addition is no overlap even at the same instant.
	clean := HoldersFromEvents(hosts, map[string]bool{"pc01": true}, t0, []AddrEvent{ev(10, "pc01", false), ev(10, "pc02", true)}, t0.Add(ms(20)))
	if clean.MaxConcurrent() != 1 {
		t.Errorf("release then claim read as an overlap: %s", clean)
	}
}

func TestProberLoop(t *testing.T) {
	var n atomic.Int32
	// No network: the transport answers in-process.
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		if n.Add(1)%3 == 0 {
			rec.WriteHeader(http.StatusServiceUnavailable)
		} else {
			rec.Header().Set(HeaderServedBy, "pc02")
		}
		return rec.Result(), nil
	})}
	ctx, cancel := context.WithTimeout(context.Background(), ms(100))
	defer cancel()
	p := newProber(ctx, client, ProbeConfig{URL: "http://198.51.100.10/", Every: ms(5)})
	<-ctx.Done()
	p.Stop()
	rs := p.Results()
	if len(rs) < 4 {
		t.Fatalf("only %d results", len(rs))
	}
	if f := rs.Failures(); f == 0 || f > len(rs)/2 {
		t.Errorf("failures %d of %d", f, len(rs))
	}
	if by := rs.ServedBy(time.Time{}, time.Time{}); by["pc02"] != len(rs)-rs.Failures() {
		t.Errorf("served by %v", by)
	}
	t.Logf("%s\n%s", p.Summary(), p.Timeline())
}

// TestOpenProberIsNotHeldBackByAHungRequest: the third request hangs until
// it times out, as one accepted by a host whose cable was then pulled. One
// at a time, every later request waits for it and the longest gap is the
// timeout; in an open loop the others go on and the gap stays small. The
// hung request counts as failed either way.
func TestOpenProberIsNotHeldBackByAHungRequest(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, open := range []bool{false, true} {
		var n atomic.Int32
		client := &http.Client{Timeout: timeout, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 3 {
				<-r.Context().Done()
				return nil, r.Context().Err()
			}
			rec := httptest.NewRecorder()
			rec.Header().Set(HeaderServedBy, "pc02")
			return rec.Result(), nil
		})}
		ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
		p := newProber(ctx, client, ProbeConfig{URL: "http://198.51.100.10/", Every: ms(5), Open: open})
		<-ctx.Done()
		p.Stop()
		cancel()
		rs := p.Results()
		gap := rs.LongestGap().Duration()
		t.Logf("open %v: %d requests, %d failed, longest gap %s", open, len(rs), rs.Failures(), gap)
		if rs.Failures() != 1 {
			t.Errorf("open %v: %d failed requests, want the hung one", open, rs.Failures())
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].Start.Before(rs[i-1].Start) {
				t.Fatalf("open %v: results not in start order at %d", open, i)
			}
		}
		switch {
		case open && gap >= timeout/2:
			t.Errorf("open loop: longest gap %s, want well under the hung request's %s", gap, timeout)
		case !open && gap < timeout:
			t.Errorf("one at a time: longest gap %s, want at least the hung request's %s", gap, timeout)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPlan(t *testing.T) {
	hosts, err := plan([]string{"web", "pc01", "pc20", "redis", "client", "db"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pc01": "198.51.100.11", "pc20": "198.51.100.30", "redis": "198.51.100.20",
		"client": "198.51.100.100", "web": "198.51.100.31", "db": "198.51.100.32"}
	for n, a := range want {
		if h := hosts[n]; h.IPv4.String() != a || h.Port != "p-"+n {
			t.Errorf("%s: %+v, want %s", n, h, a)
		}
	}
	if got := hosts["client"].IPv6.String(); got != "2001:db8::100" {
		t.Errorf("client IPv6 = %s", got)
	}
	// Enough other hosts to run past .100: none gets a VIP's address.
	many := []string{"client"}
	for i := range 90 {
		many = append(many, fmt.Sprintf("h%d", i))
	}
	hosts, err = plan(many)
	if err != nil {
		t.Fatal(err)
	}
	for n, h := range hosts {
		if h.IPv4 == VIP4.Addr() || h.IPv4 == VIP4Second.Addr() {
			t.Errorf("%s got a VIP's address %s", n, h.IPv4)
		}
	}
	for _, bad := range [][]string{{"lan"}, {"Pc01"}, {"a", "a"}, {"abcdefghijklmn"}} {
		if _, err := plan(bad); err == nil {
			t.Errorf("plan(%q) succeeded", bad)
		}
	}
}
