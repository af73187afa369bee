package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// Options configure Run.
type Options struct {
	Bin      string       // the hbd binary the hosts run (`hbd run`, `hbd webapp`); required
	Keep     bool         // leave the lab running at the end, detached, with a state file
	StateDir string       // parent of the lab's directory; default DefaultStateDir
	Width    int          // columns to wrap timelines to; default DefaultWidth
	Stdout   io.Writer    // the narration; default os.Stdout
	Logger   *slog.Logger // the lab's lifecycle events; default: discard
}

// Report is the outcome of a run.
type Report struct {
	LabID     string
	Dir       string // the lab's directory (removed at the end unless kept)
	Scenarios []*Scenario
	Took      time.Duration
	Kept      *State // the state of the lab left running (Options.Keep), else nil
}

// Passed reports whether every scenario ran and passed.
func (r *Report) Passed() bool {
	if r == nil || len(r.Scenarios) != len(script) {
		return false
	}
	for _, s := range r.Scenarios {
		if !s.Verdict.Pass {
			return false
		}
	}
	return true
}

// ErrNotRoot is returned by Run when not run as root.
var ErrNotRoot = errors.New("must run as root: it creates network namespaces and runs daemons in them; run it with sudo (sudo make demo, or sudo hbd-lab)")

// The story's fixed parts.
const (
	sessionName = "小潘"
	settle      = 300 * time.Millisecond // after a scenario, before it is measured
	baseline    = 400 * time.Millisecond // before an event, so the timeline shows "before"
	maxGap      = 2 * time.Second        // unplanned failover: longest tolerated gap
	probeEvery  = 10 * time.Millisecond
	// probeTimeout is the probing client's patience, as in the e2e tests: a
	// request fails only if no answer comes within it. (A SYN lost while the
	// VIP moves is resent by TCP after 1 s; a shorter timeout would count
	// that retry as a failure.)
	probeTimeout = 3 * time.Second
)

var nodes = []string{"pc01", "pc02"}

// act is one scenario of the script: its title, expectations and body. The
// body returns the moment of its event (the fault or the handover).
type act struct {
	title  string
	expect Expect
	run    func(r *runner, ctx context.Context, sc *Scenario) (time.Time, error)
}

var script = []act{
	{"kill -9 pc01's app", Expect{From: "pc01", To: "pc02", MaxGap: maxGap, Session: sessionName}, (*runner).killApp},
	{"restart pc01's app", Expect{From: "pc02", To: "pc01", NoFailures: true, Session: sessionName}, (*runner).restoreApp},
	{"pull pc01's cable", Expect{From: "pc01", To: "pc02", MaxGap: maxGap, Session: sessionName}, (*runner).pullCable},
	{"plug pc01's cable", Expect{From: "pc02", To: "pc01", NoFailures: true, Session: sessionName}, (*runner).plugCable},
	{"handover pc01 → pc02", Expect{From: "pc01", To: "pc02", NoFailures: true}, (*runner).handoverAway},
	{"update pc01 to v2", Expect{From: "pc02", To: "pc01", NoFailures: true, Session: sessionName, Version: "v2"}, (*runner).updateAndBack},
}

type runner struct {
	o       Options
	n       *narrator
	dir     string
	l       *lab.Lab
	c       *cluster.Cluster
	st      *State
	probe   *lab.Prober
	holders *lab.HolderWatch
	sess    *http.Client // the client's browser: a cookie jar, in the client namespace
	rep     *Report
}

// Run plays the story in a new lab and narrates it to Options.Stdout. It
// returns the report with every verdict; an error means the lab could not be
// built, or ctx ended (the lab is then removed all the same). Unless the lab
// is kept, everything it made is gone when Run returns, logs excepted when a
// scenario failed (their directory is named in the output).
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	if o.Bin == "" {
		return nil, errors.New("demo: Options.Bin is required")
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := lab.CheckPrereqs(); err != nil {
		return nil, fmt.Errorf("%w\n`sudo make setup` installs them (scripts/setup.sh)", err)
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.Width <= 0 {
		o.Width = DefaultWidth
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	dir, err := os.MkdirTemp(o.StateDir, labDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	r := &runner{o: o, dir: dir, n: &narrator{w: o.Stdout, t0: time.Now(), now: time.Now, width: o.Width}, rep: &Report{Dir: dir}}
	defer func() {
		r.rep.Took = time.Since(r.n.t0)
		if r.rep.Kept == nil {
			r.teardown(ctx, err)
		}
	}()

	fmt.Fprintf(o.Stdout, "hbd-lab: the failover story of two hosts behind one virtual IP, in network namespaces\n\n")
	if err := r.setup(ctx); err != nil {
		return r.rep, err
	}
	for _, a := range script {
		if err := r.play(ctx, a); err != nil {
			return r.rep, err
		}
	}
	r.probe.Stop()
	if err := r.holders.Stop(); err != nil {
		return r.rep, err
	}
	fmt.Fprintln(o.Stdout)
	WriteSummary(o.Stdout, r.rep.Scenarios, time.Since(r.n.t0))
	if o.Keep {
		if err := r.keep(); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

// teardown removes the lab: processes by PID, namespaces by exact name.
func (r *runner) teardown(ctx context.Context, err error) {
	if r.probe != nil {
		r.probe.Stop()
	}
	if r.holders != nil {
		r.holders.Stop()
	}
	interrupted := ctx.Err() != nil
	if r.l != nil {
		if interrupted {
			r.n.say("interrupted: removing lab %s (its processes by PID, its namespaces by name; a second Ctrl-C does not stop this)", r.l.ID())
		}
		start := time.Now()
		if cerr := r.l.Close(); cerr != nil {
			r.n.say("removing lab %s: %v", r.l.ID(), cerr)
			r.n.detail("what is left: sudo hbd-lab down")
			return // keep the state file for `hbd-lab down`
		}
		r.n.say("lab %s removed (%s)", r.l.ID(), time.Since(start).Round(10*time.Millisecond))
	}
	os.Remove(filepath.Join(r.dir, StateFile))
	if !interrupted && (err != nil || !r.rep.Passed()) {
		r.n.detail("logs kept in %s (sudo hbd-lab down removes them)", r.dir)
		return
	}
	os.RemoveAll(r.dir)
}

func (r *runner) setup(ctx context.Context) error {
	r.n.say("building the test bed: namespaces pc01, pc02, redis and client on one bridge (198.51.100.0/24, 2001:db8::/64)")
	l, err := lab.New(ctx, lab.Options{Hosts: []string{"pc01", "pc02", lab.RedisHost, "client"}, Dir: r.dir, Logger: r.o.Logger, Detach: r.o.Keep})
	if err != nil {
		return err
	}
	r.l, r.rep.LabID = l, l.ID()
	r.st = &State{ID: l.ID(), Dir: r.dir, ClientNetns: l.Host("client").Netns, URL: cluster.URL("/"),
		Owner: stateProc("", "hbd-lab", os.Getpid()), Created: time.Now().UTC().Truncate(time.Second)}
	var names []string
	for _, h := range l.Hosts() {
		r.st.Namespaces = append(r.st.Namespaces, l.Host(h).Netns)
		names = append(names, fmt.Sprintf("%s (%s)", l.Host(h).Netns, l.Host(h).IPv4))
	}
	r.st.Namespaces = append(r.st.Namespaces, l.LANNetns())
	if err := WriteState(r.st); err != nil {
		return err
	}
	r.n.detail("lab %s: %s; bridge in %s", l.ID(), strings.Join(names, ", "), l.LANNetns())

	r.n.say("starting redis-server on redis, then `hbd webapp` (v1) and `hbd run` on pc01 (priority 150) and pc02 (priority 100)")
	c, err := cluster.Start(ctx, l, cluster.Options{Bin: r.o.Bin, AppTrack: true})
	if err != nil {
		return err
	}
	r.c = c
	r.recordProcs()
	r.n.detail("redis-server pid %d on %s", l.Redis().PID(), c.Redis)
	for _, name := range nodes {
		nd := c.Nodes[name]
		r.n.detail("%s: hbd run pid %d, hbd webapp pid %d on %s:%d; config %s", name, nd.Hbd.PID(), nd.App.PID(), l.Host(name).IPv4, cluster.Port, nd.Config)
	}
	if _, err := r.waitHolder(ctx, "pc01", 10*time.Second); err != nil {
		return err
	}
	r.n.say("pc01 holds the VIP %s and %s: the higher priority wins the election", cluster.VIP4, cluster.VIP6)
	for _, name := range nodes {
		if _, err := r.waitReady(ctx, name, 10*time.Second); err != nil {
			return err
		}
	}
	r.n.say("both web apps pass hbd's check (GET /healthz every 100 ms): pc02 is a ready standby")

	r.sess = l.HTTPClient("client", false, probeTimeout)
	r.sess.Jar, _ = cookiejar.New(nil)
	r.probe = l.ProbeWith(ctx, lab.ProbeConfig{From: "client", URL: cluster.URL("/api/whoami"), Every: probeEvery, Timeout: probeTimeout, Open: true})
	if r.holders, err = l.WatchHolders(ctx, nodes, lab.HostIf, cluster.VIP4); err != nil {
		return err
	}
	r.n.say("the client sends GET %s every 10 ms, a new connection each time, whether or not the earlier ones were answered", cluster.URL("/api/whoami"))
	r.n.detail("and which host holds the VIP is followed from both hosts' rtnetlink address events")
	if _, err := r.waitServed(ctx, "pc01", time.Now(), 5*time.Second); err != nil {
		return err
	}
	return nil
}

// play runs one act and prints its report.
func (r *runner) play(ctx context.Context, a act) error {
	sc := &Scenario{N: len(r.rep.Scenarios) + 1, Title: a.title, Expect: a.expect}
	fmt.Fprintf(r.o.Stdout, "\n== %d/%d %s ==\n", sc.N, len(script), a.title)
	from := time.Now()
	event, err := a.run(r, ctx, sc)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		r.n.say("%v", err)
		sc.Outcome.Err = err
	}
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	to := time.Now()
	// A request sent in the outage may still be on its way (a SYN resent
	// after 1 s, or one the dead host accepted, until it times out): it
	// belongs to this scenario, however long it takes.
	if err := r.probe.WaitStartedBefore(ctx, to); err != nil {
		return err
	}
	if event.IsZero() {
		event = from
	}
	if err := r.measure(sc, from, event, to); err != nil {
		return err
	}
	sc.Verdict = Judge(sc.Expect, sc.Outcome)
	sc.Took = to.Sub(from)
	WriteScenarioReport(r.o.Stdout, sc, nodes, r.o.Width)
	r.rep.Scenarios = append(r.rep.Scenarios, sc)
	return nil
}

// measure fills a scenario's outcome and timeline from the probe requests
// started in [from, to), however late they finished, and the holder samples
// in [from, to).
func (r *runner) measure(sc *Scenario, from, event, to time.Time) error {
	holders, err := r.holders.Result()
	if err != nil {
		return err // the holder timeline lost events: no verdict on it
	}
	all := r.probe.Results()
	var win lab.ProbeResults
	for _, x := range all {
		if !x.Start.Before(from) && x.Start.Before(to) {
			win = append(win, x)
		}
	}
	o := &sc.Outcome
	o.Before = all.LastServedBy(event)
	o.After = win.LastServedBy(to)
	o.Requests, o.Failures = len(win), win.Failures()
	o.Gap = win.LongestGap().Duration()
	var kinds []string
	for _, x := range win {
		if x.OK() {
			o.Slowest = max(o.Slowest, x.Duration)
		} else {
			kinds = append(kinds, ErrorKind(x.Status, x.Err))
		}
	}
	o.Errors = CountErrors(kinds)
	samples := holders.Window(from, to)
	if e := sc.Expect; e.To != "" && e.From != e.To {
		for _, s := range samples {
			if s.At.After(event) && len(s.Holders) == 1 && s.Holders[0] == e.To {
				o.Moved = max(s.At.Sub(event), time.Millisecond)
				break
			}
		}
	}
	o.MaxHolders = samples.MaxConcurrent()
	o.DoubleFor = samples.DoubleHolderDuration()
	o.Holders = r.c.Holders()
	sc.Timeline = win.Timeline(from, Bucket, lab.DefaultNodeSymbol)
	return nil
}

func (r *runner) killApp(ctx context.Context, sc *Scenario) (time.Time, error) {
	body, node, err := r.save(ctx, sessionName)
	if err != nil {
		return time.Time{}, err
	}
	r.n.say("POST /api/session {\"name\":%q} through the VIP: %s saved it", sessionName, node)
	r.n.raw("→ " + body)
	r.n.detail("the client keeps the session cookie; the name lives in Redis, not in pc01's memory")
	if err := sleep(ctx, baseline); err != nil {
		return time.Time{}, err
	}
	pid := r.c.Nodes["pc01"].App.PID()
	event := time.Now()
	if err := r.c.KillApp("pc01"); err != nil {
		return event, err
	}
	r.n.say("kill -9 pc01's web app (pid %d)", pid)
	took, err := r.waitHolder(ctx, "pc02", 5*time.Second)
	if err != nil {
		return event, err
	}
	r.n.say("pc02 holds the VIP, %s after the kill: %s", took.Round(time.Millisecond), r.reason("pc01"))
	if err := r.servedAfter(ctx, "pc02", event, "the kill"); err != nil {
		return event, err
	}
	r.readSession(ctx, sc)
	return event, nil
}

func (r *runner) restoreApp(ctx context.Context, sc *Scenario) (time.Time, error) {
	if err := sleep(ctx, baseline); err != nil {
		return time.Time{}, err
	}
	event := time.Now()
	if err := r.c.StartApp("pc01", "v1"); err != nil {
		return event, err
	}
	r.n.say("restart pc01's web app (pid %d); it answers /healthz after %s", r.c.Nodes["pc01"].App.PID(), time.Since(event).Round(time.Millisecond))
	r.recordProcs()
	if _, err := r.waitReady(ctx, "pc01", 5*time.Second); err != nil {
		return event, err
	}
	r.n.say("pc01's check passes again (rise 2 × 100 ms): pc01 is ready, %s after the restart, and outranks pc02 (150 > 100)", time.Since(event).Round(time.Millisecond))
	if _, err := r.waitHolder(ctx, "pc01", 10*time.Second); err != nil {
		return event, err
	}
	r.n.say("pc01 preempted by handover: pc02 released the VIP and pc01 claimed it (%s after the restart): %s", time.Since(event).Round(time.Millisecond), r.reason("pc01"))
	if err := r.servedAfter(ctx, "pc01", event, "the restart"); err != nil {
		return event, err
	}
	r.readSession(ctx, sc)
	return event, nil
}

func (r *runner) pullCable(ctx context.Context, sc *Scenario) (time.Time, error) {
	if err := sleep(ctx, baseline); err != nil {
		return time.Time{}, err
	}
	event := time.Now()
	if err := r.l.CablePull("pc01"); err != nil {
		return event, err
	}
	r.n.say("pull pc01's cable (bridge port %s down: pc01 sees no carrier)", r.l.Host("pc01").Port)
	took, err := r.waitHolder(ctx, "pc02", 5*time.Second)
	if err != nil {
		return event, err
	}
	r.n.say("pc02 holds the VIP, %s after the pull: %s", took.Round(time.Millisecond), r.reason("pc02"))
	if err := r.servedAfter(ctx, "pc02", event, "the pull"); err != nil {
		return event, err
	}
	r.readSession(ctx, sc)
	return event, nil
}

func (r *runner) plugCable(ctx context.Context, sc *Scenario) (time.Time, error) {
	if err := sleep(ctx, baseline); err != nil {
		return time.Time{}, err
	}
	event := time.Now()
	if err := r.l.CablePlug("pc01"); err != nil {
		return event, err
	}
	r.n.say("plug pc01's cable back in")
	took, err := r.waitHolder(ctx, "pc01", 10*time.Second)
	if err != nil {
		return event, err
	}
	r.n.say("pc01 took the VIP back by handover, %s after the plug (hold-down 1 s, then preempt): %s", took.Round(time.Millisecond), r.reason("pc01"))
	if err := r.servedAfter(ctx, "pc01", event, "the plug"); err != nil {
		return event, err
	}
	r.readSession(ctx, sc)
	return event, nil
}

func (r *runner) handoverAway(ctx context.Context, sc *Scenario) (time.Time, error) {
	if _, err := r.waitReady(ctx, "pc02", 5*time.Second); err != nil {
		return time.Time{}, err
	}
	if err := sleep(ctx, baseline); err != nil {
		return time.Time{}, err
	}
	event := time.Now()
	if err := r.handover(ctx, sc, "pc01", "pc02"); err != nil {
		return event, err
	}
	return event, r.servedAfter(ctx, "pc02", event, "the handover began")
}

func (r *runner) updateAndBack(ctx context.Context, sc *Scenario) (time.Time, error) {
	app := r.c.Nodes["pc01"].App
	stopped := time.Now()
	if err := app.Stop(5 * time.Second); err != nil {
		return time.Time{}, err
	}
	r.n.say("update pc01 while pc02 serves: stop its web app v1 (pid %d, SIGTERM: drain, exit) in %s", app.PID(), time.Since(stopped).Round(time.Millisecond))
	if err := r.c.StartApp("pc01", "v2"); err != nil {
		return time.Time{}, err
	}
	r.n.say("start pc01's web app v2 (pid %d)", r.c.Nodes["pc01"].App.PID())
	r.recordProcs()
	if _, err := r.waitReady(ctx, "pc01", 5*time.Second); err != nil {
		return time.Time{}, err
	}
	r.n.say("pc01 is a ready standby again with v2 (its check passed)")
	if err := sleep(ctx, baseline/2); err != nil {
		return time.Time{}, err
	}
	event := time.Now()
	if err := r.handover(ctx, sc, "pc02", "pc01"); err != nil {
		return event, err
	}
	if err := r.servedAfter(ctx, "pc01", event, "the handover began"); err != nil {
		return event, err
	}
	r.readSession(ctx, sc)
	return event, nil
}

// handover runs `hbd handover --to to` on from, through the control socket,
// and prints each step with its duration as the CLI does.
func (r *runner) handover(ctx context.Context, sc *Scenario, from, to string) error {
	r.n.say("hbd handover --to %s   (on %s: check the standby, drain the app, release, wait for the claim)", to, from)
	start := time.Now()
	resp, err := r.c.Handover(ctx, from, to, 10*time.Second)
	if err != nil {
		return fmt.Errorf("hbd handover on %s: %w", from, err)
	}
	sc.Outcome.Steps = resp.Steps
	var lines []StepLine
	for _, s := range resp.Steps {
		lines = append(lines, StepLine{Name: s.Name, OK: s.OK, Took: time.Duration(s.Took), Detail: s.Detail})
	}
	for _, l := range FormatSteps(lines) {
		r.n.detail("  %s", l)
	}
	if !resp.OK {
		return fmt.Errorf("hbd handover on %s: %s", from, resp.Error)
	}
	if _, err := r.waitHolder(ctx, to, 3*time.Second); err != nil {
		return err
	}
	r.n.say("handover complete in %s: %s alone holds the VIP", time.Since(start).Round(time.Millisecond), to)
	return nil
}

// save POSTs the name as the client's browser would.
func (r *runner) save(ctx context.Context, name string) (body, node string, err error) {
	b, _ := json.Marshal(map[string]string{"name": name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cluster.URL("/api/session"), strings.NewReader(string(b)))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.sess.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("saving the name: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("saving the name: status %d: %s", resp.StatusCode, strings.TrimSpace(string(rb)))
	}
	return strings.TrimSpace(string(rb)), resp.Header.Get(lab.HeaderServedBy), nil
}

// readSession GETs the session through the VIP, records and narrates it.
func (r *runner) readSession(ctx context.Context, sc *Scenario) {
	s := &SessionRead{}
	sc.Outcome.Session = s
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cluster.URL("/api/session"), nil)
	if err != nil {
		s.Err = err.Error()
		return
	}
	resp, err := r.sess.Do(req)
	if err != nil {
		s.Err = err.Error()
		r.n.say("GET /api/session through the VIP: %v", err)
		return
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	s.Node, s.Version = resp.Header.Get(lab.HeaderServedBy), resp.Header.Get("X-App-Version")
	var v struct {
		Name    string `json:"name"`
		SavedBy string `json:"saved_by"`
	}
	if resp.StatusCode != http.StatusOK {
		s.Err = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(rb)))
	} else if err := json.Unmarshal(rb, &v); err != nil {
		s.Err = fmt.Sprintf("%v in %q", err, rb)
	}
	s.Name = v.Name
	if s.Err != "" {
		r.n.say("GET /api/session through the VIP: %s answered %s", orNone(s.Node), s.Err)
		return
	}
	r.n.say("GET /api/session through the VIP: %s (%s) answers name %q, saved by %s", s.Node, s.Version, s.Name, v.SavedBy)
}

// reason is a node's state and the reason of its last transition.
func (r *runner) reason(node string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := r.c.Status(ctx, node)
	if err != nil {
		return node + ": status unavailable"
	}
	s := fmt.Sprintf("%s is %s (%s)", node, st.State, st.LastReason)
	for _, f := range st.Faults {
		if !strings.Contains(st.LastReason, f) {
			s += "; fault: " + f
		}
	}
	return s
}

// servedAfter waits for the probe's answers to come from node and says so.
func (r *runner) servedAfter(ctx context.Context, node string, since time.Time, what string) error {
	at, err := r.waitServed(ctx, node, since, 5*time.Second)
	if err != nil {
		return err
	}
	r.n.say("the client's requests are answered by %s (first %s after %s)", node, at.Sub(since).Round(time.Millisecond), what)
	return nil
}

// waitServed waits until the last probe result finished after since is a
// good answer from node, and returns when the first such answer finished.
func (r *runner) waitServed(ctx context.Context, node string, since time.Time, limit time.Duration) (time.Time, error) {
	var at time.Time
	_, err := waitFor(ctx, limit, probeEvery, func() bool {
		rs := r.probe.Results()
		if len(rs) == 0 {
			return false
		}
		last := rs[len(rs)-1]
		if !last.OK() || last.ServedBy != node || last.End().Before(since) {
			return false
		}
		for _, x := range rs {
			if x.OK() && x.ServedBy == node && x.End().After(since) {
				at = x.End()
				break
			}
		}
		return true
	})
	if err != nil {
		last := "none"
		if rs := r.probe.Results(); len(rs) > 0 {
			x := rs[len(rs)-1]
			last = fmt.Sprintf("status %d from %q %s", x.Status, x.ServedBy, x.Err)
		}
		return at, fmt.Errorf("the client's requests not answered by %s within %s (last: %s)", node, limit, last)
	}
	return at, nil
}

// waitHolder waits until node alone holds the VIP.
func (r *runner) waitHolder(ctx context.Context, node string, limit time.Duration) (time.Duration, error) {
	var h []string
	took, err := waitFor(ctx, limit, 5*time.Millisecond, func() bool {
		h = r.c.Holders()
		return len(h) == 1 && h[0] == node
	})
	if err != nil && ctx.Err() == nil {
		return took, fmt.Errorf("%s does not hold the VIP alone after %s (holders: %s)", node, limit, holderList(h))
	}
	return took, err
}

// waitReady waits until a node's daemon reports it ready (link up, checks
// passing) and in the election (BACKUP or MASTER).
func (r *runner) waitReady(ctx context.Context, node string, limit time.Duration) (time.Duration, error) {
	var last string
	took, err := waitFor(ctx, limit, 10*time.Millisecond, func() bool {
		st, err := r.c.Status(ctx, node)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%s, ready %v, faults %v", st.State, st.Ready, st.Faults)
		return st.Ready && (st.State == "BACKUP" || st.State == "MASTER")
	})
	if err != nil && ctx.Err() == nil {
		return took, fmt.Errorf("%s not ready after %s (%s)", node, limit, last)
	}
	return took, err
}

// recordProcs writes the lab's live processes into the state file.
func (r *runner) recordProcs() {
	var ps []StateProc
	if p := r.l.Redis(); p != nil && !p.Exited() {
		ps = append(ps, stateProc(p.Host(), "redis-server", p.PID()))
	}
	r.st.Sockets = nil
	for _, name := range nodes {
		nd := r.c.Nodes[name]
		for _, x := range []struct {
			p    *lab.Proc
			what string
		}{{nd.Hbd, "hbd run"}, {nd.App, "hbd webapp"}} {
			if x.p != nil && !x.p.Exited() {
				ps = append(ps, stateProc(name, x.what, x.p.PID()))
			}
		}
		r.st.Sockets = append(r.st.Sockets, nd.Socket)
	}
	r.st.Procs = ps
	if err := WriteState(r.st); err != nil {
		r.n.say("%v", err)
	}
}

// keep leaves the lab running and says how to use and remove it.
func (r *runner) keep() error {
	r.recordProcs()
	r.st.Keep = true
	r.st.Owner = StateProc{} // done with it: `hbd-lab down` may remove it
	if err := WriteState(r.st); err != nil {
		return err
	}
	r.rep.Kept = r.st
	w, bin, ns := r.o.Stdout, r.o.Bin, r.st.ClientNetns
	lab := labCommand()
	fmt.Fprintf(w, "\nThe lab %s keeps running (--keep); its state is in %s.\n", r.st.ID, filepath.Join(r.st.Dir, StateFile))
	fmt.Fprintf(w, "  the page through the VIP, from the client namespace:\n")
	fmt.Fprintf(w, "    sudo ip netns exec %s curl -si %s\n", ns, cluster.URL("/api/whoami"))
	fmt.Fprintf(w, "  in a browser on this machine, forward 127.0.0.1:8080 into the client namespace:\n")
	fmt.Fprintf(w, "    sudo %s forward        then open http://127.0.0.1:8080/\n", lab)
	// socat splits addresses at colons, hence the escaped ones inside EXEC.
	fmt.Fprintf(w, "    or with socat: sudo socat TCP-LISTEN:8080,bind=127.0.0.1,reuseaddr,fork EXEC:'ip netns exec %s socat STDIO TCP\\:%s\\:%d'\n", ns, cluster.VIP4.Addr(), cluster.Port)
	fmt.Fprintf(w, "  drive it:\n")
	fmt.Fprintf(w, "    sudo %s status -s %s\n", bin, r.c.Nodes["pc01"].Socket)
	fmt.Fprintf(w, "    sudo %s handover -s %s\n", bin, r.c.Nodes["pc01"].Socket)
	fmt.Fprintf(w, "    logs: %s/*.log\n", r.st.Dir)
	fmt.Fprintf(w, "  remove it all (processes by PID, namespaces by name):\n")
	fmt.Fprintf(w, "    sudo %s down\n", lab)
	return nil
}

// labCommand is how to call hbd-lab again: this very binary when it is
// hbd-lab, else by name.
func labCommand() string {
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "hbd-lab" {
		return exe
	}
	return "hbd-lab"
}

// waitFor polls cond every `every` until it holds, limit passes or ctx ends.
func waitFor(ctx context.Context, limit, every time.Duration, cond func() bool) (time.Duration, error) {
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if cond() {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return time.Since(start), errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
