// Package health runs the configured health checks (tracks) on their
// intervals and reports each check's debounced pass/fail state changes.
//
// A check starts failing, so a freshly started node does not count as
// healthy before its app is up. It becomes healthy after Rise passes in a
// row and fails again after Fall failures in a row, like keepalived's
// rise/fall. Three kinds exist: http (GET, expect a status), exec (a program
// run without a shell, exit status 0 passes, killed with its whole process
// group on timeout) and interface (the link is up with carrier).
package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hbdproject/hbd/internal/config"
)

// Result is one check's state: sent on a state change, and kept for
// Snapshot.
type Result struct {
	// Name is the check's (track's) name.
	Name string
	// Healthy is the debounced state: it changes only after Rise passes or
	// Fall failures in a row.
	Healthy bool
	// Weight is the track's weight, subtracted from the priority while the
	// check fails.
	Weight int
	// Fault says a failing check puts the node in FAULT.
	Fault bool
	// Detail says what the last run saw, e.g. "GET http://127.0.0.1:8081/healthz:
	// status 503", "exit status 1: …", "link down", "timeout after 200ms".
	Detail string
	// At is when the last run finished (for the initial state: when the
	// runner was created or started).
	At time.Time
}

// Defaults for tracks built without config.Load, matching config's.
const (
	defaultInterval = 200 * time.Millisecond
	defaultRise     = 2
	defaultFall     = 2
	defaultStatus   = 200
)

// notChecked is the Detail of a check that has not run yet.
const notChecked = "not checked yet"

// Runner runs a fixed set of checks. Create it with New, start it once with
// Run; Snapshot may be called from any goroutine at any time.
type Runner struct {
	log    *slog.Logger
	checks []*check

	// now and ticker are the clock; tests replace them to drive runs
	// one by one.
	now    func() time.Time
	ticker func(time.Duration) (<-chan time.Time, func())

	mu   sync.Mutex
	last []Result // by check index; guarded by mu
}

// check is one track with its probe.
type check struct {
	track config.Track
	probe prober
}

// prober runs a check once. It reports whether the run passed and what it
// saw. ctx carries the run's timeout, which is also passed as timeout for
// the message.
type prober interface {
	probe(ctx context.Context, timeout time.Duration) (pass bool, detail string)
}

// New returns a runner for tracks. Fields config.Load would default (interval,
// timeout, rise, fall, expect_status) get the same defaults here when zero.
// An unknown type makes a check that always fails and says why. log may be
// nil.
func New(tracks []config.Track, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{
		log:    log,
		now:    time.Now,
		ticker: realTicker,
	}
	start := r.now()
	for _, t := range tracks {
		if t.Interval <= 0 {
			t.Interval = config.Duration(defaultInterval)
		}
		if t.Timeout <= 0 || t.Timeout > t.Interval {
			t.Timeout = t.Interval
		}
		if t.Rise < 1 {
			t.Rise = defaultRise
		}
		if t.Fall < 1 {
			t.Fall = defaultFall
		}
		if t.Type == "http" && t.ExpectStatus == 0 {
			t.ExpectStatus = defaultStatus
		}
		c := &check{track: t, probe: newProber(t)}
		r.checks = append(r.checks, c)
		r.last = append(r.last, Result{
			Name: t.Name, Weight: t.Weight, Fault: t.Fault,
			Detail: notChecked, At: start,
		})
	}
	return r
}

func newProber(t config.Track) prober {
	switch t.Type {
	case "http":
		return newHTTPProbe(t.URL, t.ExpectStatus, t.Timeout.D())
	case "exec":
		return execProbe{argv: t.Command}
	case "interface":
		return ifaceProbe{name: t.Interface}
	}
	return badProbe{msg: fmt.Sprintf("unknown check type %q", t.Type)}
}

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Run runs every check in its own goroutine until ctx is done, and returns
// once all of them have exited. Each check's initial (failing) state is sent
// on out first, then only its state changes. A send blocks until out is read
// or ctx is done, so the reader must keep up; out may be nil when only
// Snapshot is wanted. Call Run once.
func (r *Runner) Run(ctx context.Context, out chan<- Result) {
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() { r.loop(ctx, i, c, out) })
	}
	wg.Wait()
	<-ctx.Done() // with no checks, still run until told to stop
}

// Snapshot returns the last state of every check, in configuration order:
// the debounced Healthy, with Detail and At of the latest run.
func (r *Runner) Snapshot() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.last...)
}

func (r *Runner) store(i int, res Result) {
	r.mu.Lock()
	r.last[i] = res
	r.mu.Unlock()
}

// loop runs check i: at once, then on every tick.
func (r *Runner) loop(ctx context.Context, i int, c *check, out chan<- Result) {
	t := c.track
	log := r.log.With("check", t.Name)
	cnt := counter{rise: t.Rise, fall: t.Fall}

	res := r.Snapshot()[i]
	res.At = r.now()
	r.store(i, res)
	if !send(ctx, out, res) {
		return
	}
	tick, stop := r.ticker(t.Interval.D())
	defer stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, t.Timeout.D())
		pass, detail := c.probe.probe(pctx, t.Timeout.D())
		cancel()
		if ctx.Err() != nil {
			return // shutting down: this run's result means nothing
		}
		changed, healthy := cnt.observe(pass)
		res = Result{
			Name: t.Name, Healthy: healthy, Weight: t.Weight, Fault: t.Fault,
			Detail: detail, At: r.now(),
		}
		r.store(i, res)
		if changed {
			log.Info("health check changed state", "state", stateName(healthy), "detail", detail)
			if !send(ctx, out, res) {
				return
			}
		} else if !pass && healthy {
			log.Debug("health check failed, still counted healthy", "detail", detail)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// send delivers res on out unless ctx ends first; it reports whether the
// loop should go on.
func send(ctx context.Context, out chan<- Result, res Result) bool {
	if out == nil {
		return ctx.Err() == nil
	}
	select {
	case out <- res:
		return true
	case <-ctx.Done():
		return false
	}
}

func stateName(healthy bool) string {
	if healthy {
		return "healthy"
	}
	return "failing"
}

// badProbe always fails; it stands for a check New could not build.
type badProbe struct{ msg string }

func (b badProbe) probe(context.Context, time.Duration) (bool, string) { return false, b.msg }
