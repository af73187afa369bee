// Package daemon is `hbd run`: the thin shell that wires the election core
// to real heartbeat transports, the VIP driver, link watching, health
// checks, notify hooks, the control socket, metrics and systemd.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbdproject/hbd/internal/witness/lease"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/handoff"
	"github.com/hbdproject/hbd/internal/health"
	"github.com/hbdproject/hbd/internal/metrics"
	"github.com/hbdproject/hbd/internal/notify"
	"github.com/hbdproject/hbd/internal/sdnotify"
	"github.com/hbdproject/hbd/vip"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	Version    string
	Commit     string       // of the build: hbd_build_info's commit label
	Logger     *slog.Logger // nil: text logs on stderr at the config's log_level
	Level      *slog.LevelVar
}

// inFrame is an authentic frame on its way to the loop.
type inFrame struct {
	f    heartbeat.Frame
	from netip.AddrPort
	path heartbeat.Path
	at   time.Time
	dup  bool // a second copy: the frame came by the other path first
}

// peer is what the loop knows of a peer beyond the core's view: its
// tracker and its metric series, looked up once.
type peer struct {
	peerTrack
	lostMetric *metrics.Counter
	rttMetric  *metrics.Histogram
}

// Daemon is one running `hbd run`.
type Daemon struct {
	opts  Options
	cfg   *config.Config
	key   []byte
	log   *slog.Logger
	level *slog.LevelVar

	groups  []*group                           // the elections: one per VIP group, or the single one
	wire    []*group                           // the same, by ascending group id: their order in frames
	rx      atomic.Pointer[heartbeat.Receiver] // replaced when a reload brings a new key; read by the transports
	udp     *heartbeat.UDPTransport            // the current paths; replaced when a reload changes the peers
	tcp     *heartbeat.TCPTransport
	paths   *paths
	checks  *health.Runner
	leaser  *leaser // nil without a witness
	hooks   *notify.Runner
	metrics *daemonMetrics
	chain   *handoff.Chain // daisy chaining; nil where the kernel lacks it

	boot     uint64
	seq      uint64
	sessions []heartbeat.Session // reused by send
	started  time.Time
	signer   *heartbeat.Signer // with key; loop-owned
	sendBuf  []byte            // our encoded frame, reused
	groupBuf []heartbeat.Group // reused by send

	versionMu   sync.Mutex
	versionSeen map[netip.Addr]time.Time // when an old peer was last warned about

	frames chan inFrame
	links  chan bool
	calls  chan func()

	// loop-owned
	peers       map[string]*peer
	readySent   bool
	lastRTTScan time.Time
	ownDrain    bool      // a handover of ours is draining the local app
	mask        drainMask // check failures our own drain causes, held back
	lastTCPSend time.Time
	slowStep    string        // the slowest step of the event in hand ...
	slowTook    time.Duration // ... and how long it took, for the busy-loop log
	stopping    bool          // the groups are stopping: their byes become one ...
	byeDue      bool          // ... sent once every group has released

	rejMu    sync.Mutex
	rejected map[string]map[string]uint64 // path → reason → count

	checksCancel context.CancelFunc
	checksDone   chan struct{}
	runCtx       context.Context
}

// Run loads the config and runs the daemon until ctx is done, then
// releases the VIP, says bye to the peers and returns.
func Run(ctx context.Context, opts Options) error {
	res, err := config.Load(opts.ConfigPath, config.Options{NoBGP: NoBGP})
	if err != nil {
		return fmt.Errorf("loading %s:\n%w", opts.ConfigPath, err)
	}
	d, err := newDaemon(res, opts)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

func newDaemon(res *config.Result, opts Options) (*Daemon, error) {
	cfg := res.Config
	level := opts.Level
	if level == nil {
		level = new(slog.LevelVar)
	}
	level.Set(parseLevel(cfg.LogLevel))
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	log = log.With("node", cfg.Node)
	d := &Daemon{
		opts: opts, cfg: cfg, key: res.Key, log: log, level: level,
		boot:     randomBoot(),
		started:  time.Now(),
		frames:   make(chan inFrame, 256),
		links:    make(chan bool, 16),
		calls:    make(chan func(), 16),
		peers:    map[string]*peer{},
		rejected: map[string]map[string]uint64{},
	}
	var err error
	d.rx.Store(heartbeat.NewReceiver(res.Key, cfg.ClusterID, cfg.Node, d.boot))
	if d.signer, err = heartbeat.NewSigner(res.Key); err != nil {
		return nil, err
	}
	d.hooks = notify.New(cfg.Notify, log)
	d.checks = health.New(cfg.Tracks, log)
	d.metrics = newMetrics(func() float64 { return float64(d.hooks.Dropped()) })
	d.metrics.buildInfo.With(opts.Version, opts.Commit, runtime.Version()).Set(1)
	for _, e := range cfg.Elections() {
		g, err := d.newGroup(e)
		if err != nil {
			return nil, err
		}
		d.groups = append(d.groups, g)
	}
	d.wire = slices.Clone(d.groups)
	slices.SortFunc(d.wire, func(a, b *group) int { return int(a.e.ID) - int(b.e.ID) })
	if bgp := d.groups[0].vip.bgp; bgp != nil { // config refuses bgp with groups
		registerBGPMetrics(d.metrics.reg, bgp)
	}
	if cfg.Witness.Enabled() { // config refuses a witness with groups
		if d.leaser, err = newLeaser(cfg, d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// grouped reports whether the config has VIP groups (frames then carry
// every group's state).
func (d *Daemon) grouped() bool { return d.groups[0].e.ID != 0 }

func electionConfig(cfg *config.Config, e config.Election, refresh time.Duration) election.Config {
	ec := election.Config{
		Node:         cfg.Node,
		Priority:     e.Priority,
		Peers:        len(cfg.Peers),
		Interval:     cfg.Interval.D(),
		DeadAfter:    cfg.DeadAfter.D(),
		Preempt:      e.Preempt,
		PreemptDelay: e.PreemptDelay,
		HoldDown:     cfg.HoldDown.D(),
		Refresh:      refresh, // a quarter of the VIP lifetime
		YieldTimeout: max(2*cfg.DeadAfter.D(), 500*time.Millisecond),
	}
	if cfg.Witness.Enabled() {
		ec.Witness = true
		ec.LeaseGuard = cfg.VIPLifetime.D() + lease.KernelSlack
		ec.LeaseRenew = cfg.Witness.Renew.D()
		ec.WitnessBypass = cfg.Witness.Policy == "available"
	}
	return ec
}

// timeNow is the daemon's clock (time.Now, with its monotonic reading).
func timeNow() time.Time { return time.Now() }

// vipStrings are every VIP, L2 then BGP, for logs and hooks.
func vipStrings(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.VIPs)+len(cfg.BGP.VIPs))
	for _, p := range cfg.L2VIPs() {
		out = append(out, p.String())
	}
	for _, p := range cfg.BGPPrefixes() {
		out = append(out, p.String())
	}
	return out
}

func peerAddrs(cfg *config.Config) []netip.AddrPort {
	out := make([]netip.AddrPort, len(cfg.Peers))
	for i, p := range cfg.Peers {
		out[i] = p.AddrPort
	}
	return out
}

func randomBoot() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("hbd: no randomness for the boot id: " + err.Error())
	}
	return binary.BigEndian.Uint64(b[:])
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

func (d *Daemon) run(ctx context.Context) error {
	d.runCtx = ctx
	if err := raisePriority(); err != nil {
		d.log.Warn("running at normal priority: a saturated CPU may stall the loop past dead_after", "err", err)
	}
	for _, g := range d.groups {
		defer g.vip.Close()
	}
	if removed, err := vip.RemoveStale(d.cfg.Interface, d.cfg.L2VIPs()); err != nil {
		return fmt.Errorf("removing stale VIPs: %w", err)
	} else if len(removed) > 0 {
		d.log.Warn("removed VIPs left by an earlier run", "vip", removed)
	}
	for _, g := range d.groups {
		if err := g.vip.EndHandoff(); err != nil {
			return fmt.Errorf("removing stale hand-off routes: %w", err)
		}
		if err := g.vip.start(ctx, d.log); err != nil { // the BGP speaker, in the one election that may have it
			return err
		}
	}
	d.openChain()
	defer d.closeChain()
	if err := d.openPaths(peerAddrs(d.cfg)); err != nil {
		return err
	}
	ctrl, err := control.Listen(d.cfg.ControlSocket, d.handleControl, d.log)
	if err != nil {
		d.paths.close()
		return err
	}

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	spawn := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(bg); err != nil && bg.Err() == nil {
				d.log.Error(name+" stopped", "err", err)
			}
		}()
	}
	spawn("control socket", ctrl.Serve)
	spawn("link watch", func(ctx context.Context) error {
		return vip.WatchLink(ctx, d.cfg.Interface, func(up bool) {
			select {
			case d.links <- up:
			case <-ctx.Done():
			}
		})
	})
	for _, g := range d.groups {
		spawn("VIP keeper", func(ctx context.Context) error { d.keep(ctx, g); return nil })
	}
	hooks := d.hooks // a reload replaces d.hooks in the loop and runs the new one itself
	spawn("notify hooks", func(ctx context.Context) error { hooks.Run(ctx); return nil })
	if d.leaser != nil {
		spawn("witness", func(ctx context.Context) error { return d.leaser.run(ctx, d) })
	}
	if addr := d.cfg.MetricsAddr(); addr != "" {
		srv, err := d.metricsServer(addr)
		if err != nil {
			stopBG()
			wg.Wait()
			return err
		}
		spawn("metrics", srv)
	}
	d.startChecks()

	var names []string
	for _, g := range d.groups {
		if g.e.Name != "" {
			names = append(names, g.e.Name)
		}
	}
	d.log.Info("hbd started", "version", d.opts.Version, "interface", d.cfg.Interface, "vip", vipStrings(d.cfg), "groups", names,
		"listen", d.cfg.Listen.String(), "peers", len(d.cfg.Peers), "interval", d.cfg.Interval.D(), "dead_after", d.cfg.DeadAfter.D())
	up, err := vip.LinkUp(d.cfg.Interface)
	if err != nil {
		d.log.Warn("reading link state", "err", err)
		up = true
	}
	// Every check counts as failing until it has passed (as the runner
	// reports them): the core must not advertise this node as ready
	// before the first results arrive.
	for _, g := range d.groups {
		for _, tr := range g.e.Tracks {
			g.act(g.m.SetCheck(time.Now(), tr.Name, tr.Weight, tr.Fault, false))
		}
		g.act(g.m.SetLink(time.Now(), up))
	}

	loopErr := d.loop(ctx)

	// Clean stop: a master hands the VIPs over as `hbd handover` does (no
	// request fails), then every group releases what it still holds, the
	// node says bye once on both paths, gives TCP a moment to flush and
	// stops everything.
	notifyStopping()
	d.handOverOnStop()
	d.stopping = true
	for _, g := range d.groups {
		g.act(g.m.Stop(time.Now()))
	}
	if d.byeDue {
		d.send(election.Bye, "", false, d.groups[0])
	}
	for _, g := range d.groups {
		g.endHandoff()
	}
	time.Sleep(20 * time.Millisecond)
	d.stopChecks()
	stopBG()
	d.paths.close()
	wg.Wait()
	d.log.Info("hbd stopped")
	return loopErr
}

// paths are the two heartbeat transports and the goroutines reading them.
type paths struct {
	udp    *heartbeat.UDPTransport
	tcp    *heartbeat.TCPTransport
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openPaths listens on the heartbeat address over UDP and TCP for peers and
// starts reading; it replaces d.paths.
func (d *Daemon) openPaths(peers []netip.AddrPort) error {
	udp, err := heartbeat.ListenUDP(d.cfg.Listen.AddrPort, peers)
	if err != nil {
		return fmt.Errorf("heartbeat over UDP: %w", err)
	}
	// A regular beat goes over TCP every tcpEvery: a new connection has
	// twice that (at least a second) to prove itself.
	tcp, err := heartbeat.ListenTCP(d.cfg.Listen.AddrPort, peers, heartbeat.TCPOptions{Logger: d.log, AuthTimeout: max(time.Second, 2*d.tcpEvery())})
	if err != nil {
		udp.Close()
		return fmt.Errorf("heartbeat over TCP: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &paths{udp: udp, tcp: tcp, cancel: cancel}
	for _, t := range []heartbeat.Transport{udp, tcp} {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := t.Run(ctx, d.deliver(ctx)); err != nil && ctx.Err() == nil {
				d.log.Error("heartbeat transport stopped", "err", err)
			}
		}()
	}
	d.paths, d.udp, d.tcp = p, udp, tcp
	return nil
}

func (p *paths) close() {
	p.cancel()
	p.udp.Close()
	p.tcp.Close()
	p.wg.Wait()
}

// handoffGrace is how long a node that handed the VIP over keeps accepting
// packets addressed to it (vip.Handoff): those clients sent before the new
// master's gratuitous ARP reached them, and those the new master forwards
// to it for chainWindow after its claim (daisy chaining). It must outlast
// the new master's window by more than the new master can be late to
// claim (a busy host takes tens of milliseconds to act on the released
// frame): a packet forwarded after the route is gone would be dropped,
// retransmitted after Linux's minimum RTO of 200 ms, and then reset by the
// new master. The old master keeps its app draining, and a SIGTERM'd one
// keeps running, until it ends.
const handoffGrace = time.Second

// drainedByUs reports whether hbd itself drains the local app now: a
// handover of ours, or a hand-off of some group.
func (d *Daemon) drainedByUs() bool {
	return d.ownDrain || slices.ContainsFunc(d.groups, func(g *group) bool { return g.autoDrained })
}

// deliver verifies inbound frames in the transports' goroutines and hands
// the authentic ones to the loop, second copies (duplicate or stale)
// included: they tell the loop that their path works. It reports whether
// the frame was authentic.
func (d *Daemon) deliver(ctx context.Context) func(heartbeat.Inbound) bool {
	return func(in heartbeat.Inbound) bool {
		f, err := d.rx.Load().Accept(in.Data, in.From)
		if err != nil {
			reason := heartbeat.Reason(err)
			d.countReject(in.Path, reason)
			if reason == "version" {
				d.warnVersion(in.From, err)
			} else if reason != "duplicate" && reason != "stale" {
				d.log.Debug("frame rejected", "path", in.Path.String(), "from", in.From.String(), "reason", reason, "err", err)
			}
		}
		if f.Node == "" {
			return false // not authentic
		}
		d.metrics.received[in.Path].Inc()
		select {
		case d.frames <- inFrame{f: f, from: in.From, path: in.Path, at: in.At, dup: err != nil}:
		case <-ctx.Done():
		}
		return true
	}
}

// warnVersion tells the operator, once a minute per address, that a peer
// speaks another frame version: its frames are ignored, so the two nodes
// cannot see each other until both run the same hbd.
func (d *Daemon) warnVersion(from netip.AddrPort, err error) {
	d.versionMu.Lock()
	defer d.versionMu.Unlock()
	if d.versionSeen == nil {
		d.versionSeen = map[netip.Addr]time.Time{}
	}
	if last, ok := d.versionSeen[from.Addr()]; ok && time.Since(last) < time.Minute {
		return
	}
	d.versionSeen[from.Addr()] = time.Now()
	d.log.Error("peer speaks another heartbeat frame version: its frames are ignored until both nodes run the same hbd (see docs/runbooks.md, upgrading across a frame version)",
		"peer", from.Addr().String(), "err", err)
}

func (d *Daemon) countReject(path heartbeat.Path, reason string) {
	d.metrics.rejected.With(path.String(), reason).Inc()
	d.rejMu.Lock()
	defer d.rejMu.Unlock()
	byReason := d.rejected[path.String()]
	if byReason == nil {
		byReason = map[string]uint64{}
		d.rejected[path.String()] = byReason
	}
	byReason[reason]++
}

func (d *Daemon) loop(ctx context.Context) error {
	timer, err := newAlarm()
	if err != nil {
		return err
	}
	defer timer.close()
	timer.set(0)
	var armed time.Time // what timer is set for
	hup := make(chan os.Signal, 1)
	notifySIGHUP(hup)
	defer stopSignals(hup)
	wd := sdnotify.NewPinger() // driven by this loop: a hung loop stops the pings
	for {
		var began time.Time // when the event's handling began
		var what string     // the event, for the log when it took long
		select {
		case <-ctx.Done():
			return nil
		case in := <-d.frames:
			began, what = time.Now(), "a frame from "+in.f.Node
			d.onFrame(in)
		case up := <-d.links:
			began, what = time.Now(), "a link change"
			if up {
				d.log.Info("link up", "interface", d.cfg.Interface)
			} else {
				d.log.Warn("link down", "interface", d.cfg.Interface)
			}
			for _, g := range d.groups {
				g.act(g.m.SetLink(time.Now(), up))
			}
		case fn := <-d.calls:
			began, what = time.Now(), "a control or check call"
			fn()
		case <-hup:
			began, what = time.Now(), "a reload"
			d.reload()
		case <-timer.C:
			armed = time.Time{} // spent: arm it again below
			began, what = time.Now(), "timers (beats, refresh, expiries)"
			d.runDue(began)
		}
		d.settle()
		now := time.Now()
		if busy := now.Sub(began); busy > d.cfg.DeadAfter.D()/3 {
			// Nothing else runs while the loop handles one event, beats
			// included: a slow netlink call (the kernel's RTNL lock held
			// elsewhere) or a starved CPU shows here first.
			d.metrics.loopBusy.Inc()
			d.log.Warn("the loop was busy handling one event; no heartbeat went out meanwhile", "event", what, "took", busy.Round(time.Millisecond),
				"slowest_step", d.slowStep, "step_took", d.slowTook.Round(time.Millisecond))
		}
		d.slowStep, d.slowTook = "", 0
		if _, err := wd.Ping(now); err != nil {
			d.log.Warn("pinging the systemd watchdog", "err", err)
		}
		if now.Sub(d.lastRTTScan) >= time.Second {
			d.lastRTTScan = now
			rtts := d.tcp.RTTs()
			for _, p := range d.peers {
				if rtt, ok := rtts[p.addr.Addr()]; ok {
					p.rttMetric.Observe(rtt.Seconds())
				}
			}
		}
		// One timer, armed for the earliest deadline; left alone when that
		// has not moved (a frame rarely moves it).
		next := earliest(d.mask.deadline(), wd.Next(now))
		for _, g := range d.groups {
			next = earliest(next, g.m.NextDeadline(), g.burst.deadline(), g.handoffEnd, g.chainEnd, g.keeperDeadline())
		}
		if !next.Equal(armed) {
			armed = next
			timer.set(next.Sub(now))
		}
	}
}

// runDue does what is due at now: the core's timers, an announcement
// round, the end of a hand-off.
func (d *Daemon) runDue(now time.Time) {
	for _, g := range d.groups {
		// A frame another group sent just now carried this one's state
		// too: settle tells its core, whose beat is then not due.
		d.settle()
		g.checkKeeper(now)
		if !now.Before(g.m.NextDeadline()) {
			g.act(g.m.Tick(now))
		}
		if g.burst.due(now) {
			began := time.Now()
			g.announce()
			d.noteStep("announce", began)
		}
		if !g.handoffEnd.IsZero() && !now.Before(g.handoffEnd) {
			began := time.Now()
			g.endHandoff()
			d.noteStep("end of hand-off", began)
		}
		if !g.chainEnd.IsZero() && !now.Before(g.chainEnd) {
			began := time.Now()
			g.stopChain()
			d.noteStep("end of daisy chaining", began)
		}
	}
	for _, r := range d.mask.due(now) {
		if !slices.ContainsFunc(d.cfg.Tracks, func(t config.Track) bool { return t.Name == r.Name }) {
			continue // dropped by a reload meanwhile
		}
		d.log.Warn("check still fails after our drain ended", "check", r.Name)
		d.applyCheck(r)
	}
}

func (d *Daemon) onFrame(in inFrame) {
	f := in.f
	p := d.peers[f.Node]
	if p == nil {
		p = &peer{lostMetric: d.metrics.lost.With(f.Node), rttMetric: d.metrics.rtt.With(f.Node)}
		d.peers[f.Node] = p
		d.log.Info("peer heard", "peer", f.Node, "from", in.from.String(), "path", in.path.String())
	}
	v := p.observe(seenFrame{path: in.path, from: in.from, at: in.at, sent: f.SentAt, boot: f.Boot, seq: f.Seq, dup: in.dup},
		d.cfg.DeadAfter.D(), d.cfg.Interval.D())
	if in.dup {
		return
	}
	if v.lost > 0 {
		p.lostMetric.Add(float64(v.lost))
	}
	if v.late {
		d.countReject(in.path, "late")
		return
	}
	if v.shift != 0 {
		d.log.Warn("peer's clock seems to have been stepped; adopting its new offset", "peer", f.Node, "shift", v.shift.Round(time.Millisecond))
	}
	if f.Kind == election.Bye {
		d.log.Info("peer said bye", "peer", f.Node)
	}
	for _, g := range d.groups {
		h, ok := g.heard(&f)
		if !ok {
			g.noteMissing(f.Node, &f)
			continue
		}
		if h.State == election.Master {
			g.masterSeen = in.at
		}
		if h.Target == d.cfg.Node && h.State != election.Master {
			g.releasedBy, g.releasedAt = f.Node, in.at
		}
		g.act(g.m.Receive(in.at, h))
	}
}

// tcpEvery is how often a regular beat also goes over TCP. UDP carries
// every beat; TCP, being reliable, needs only enough to keep a peer alive
// by itself (four per dead_after) plus every frame that says something new
// (a state change, a handover, a bye). Sending every beat on both paths
// cost twice the wakeups for nothing the UDP path does not already give.
func (d *Daemon) tcpEvery() time.Duration {
	return max(d.cfg.Interval.D(), d.cfg.DeadAfter.D()/4)
}

// send sends a frame of kind on behalf of group from: its state, or with
// groups every group's, with target as from's target when it is set (a
// Released frame names it).
func (d *Daemon) send(kind election.Kind, target string, periodic bool, from *group) {
	adv := from.m.Advert()
	if target == "" {
		target = adv.Target
	}
	now := time.Now()
	d.seq++
	f := heartbeat.Frame{
		Kind:     kind,
		Cluster:  d.cfg.ClusterID,
		Flags:    adv.Flags,
		State:    adv.State,
		Priority: uint8(adv.Priority),
		Boot:     d.boot,
		Seq:      d.seq,
		Epoch:    adv.Epoch,
		SentAt:   now,
		Node:     d.cfg.Node,
		Target:   target,
		Sessions: d.rx.Load().Sessions(d.sessions[:0]), // our challenges, their echoes
	}
	d.sessions = f.Sessions
	if d.grouped() {
		f.Groups = d.groupBuf[:0]
		for _, g := range d.wire {
			a := g.m.Advert()
			if g == from {
				a.Target = target
			}
			f.Groups = append(f.Groups, heartbeat.Group{ID: g.e.ID, Flags: a.Flags, State: a.State,
				Priority: uint8(a.Priority), Epoch: a.Epoch, Target: a.Target})
			if g != from && !d.stopping {
				g.beatAt = now // this frame is its beat too: settle tells its core
			}
		}
		d.groupBuf = f.Groups
	}
	b, err := d.signer.AppendSigned(d.sendBuf[:0], &f)
	if err != nil {
		panic(fmt.Sprintf("hbd: encoding our own frame: %v", err)) // config validation makes this impossible
	}
	d.sendBuf = b
	if err := d.udp.Send(b); err != nil {
		d.log.Debug("sending over UDP", "err", err)
	}
	d.metrics.sent[heartbeat.PathUDP].Inc()
	if !periodic || now.Sub(d.lastTCPSend) >= d.tcpEvery() {
		d.lastTCPSend = now
		if err := d.tcp.Send(b); err != nil {
			d.log.Debug("sending over TCP", "err", err)
		}
		d.metrics.sent[heartbeat.PathTCP].Inc()
	}
}

// noteStep records how long one step of the event in hand took, when it
// is the slowest so far.
func (d *Daemon) noteStep(name string, began time.Time) {
	if took := time.Since(began); took > d.slowTook {
		d.slowStep, d.slowTook = name, took
	}
}

// settle tells each group whose state went out in another group's frame
// that the frame was its beat (Machine.Sent, a Tick without a beat of its
// own), and carries out what that brings, until no group is owed one. It
// runs between events, never inside a group's act: a core's actions are
// valid only until the next call into it.
func (d *Daemon) settle() {
	for range 4 { // a Sent that sends marks the others again; it settles in two rounds
		owed := false
		for _, g := range d.groups {
			if at := g.beatAt; !at.IsZero() {
				g.beatAt, owed = time.Time{}, true
				g.act(g.m.Sent(at))
			}
		}
		if !owed {
			return
		}
	}
}

// stateSummary is the node's state in one word, for systemd's status
// line: the single election's, or with groups the best of theirs (MASTER
// when it holds any group).
func (d *Daemon) stateSummary() string {
	best := d.groups[0].m.State()
	for _, g := range d.groups[1:] {
		if s := g.m.State(); stateRank(s) > stateRank(best) {
			best = s
		}
	}
	return best.String()
}

func stateRank(s election.State) int {
	switch s {
	case election.Master:
		return 4
	case election.Backup:
		return 3
	case election.Fault:
		return 2
	case election.Maintenance:
		return 1
	}
	return 0
}

// call runs fn in the loop and waits for it.
func (d *Daemon) call(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case d.calls <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Daemon) startChecks() {
	ctx, cancel := context.WithCancel(context.Background())
	d.checksCancel, d.checksDone = cancel, make(chan struct{})
	results := make(chan health.Result, 16)
	runner := d.checks
	go func() {
		defer close(d.checksDone)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); runner.Run(ctx, results) }()
		for {
			select {
			case r := <-results:
				select {
				case d.calls <- func() { d.onCheck(r) }:
				case <-ctx.Done():
				}
			case <-ctx.Done():
				wg.Wait()
				return
			}
		}
	}()
}

func (d *Daemon) stopChecks() {
	if d.checksCancel != nil {
		d.checksCancel()
		<-d.checksDone
	}
}

// setDrainMask tells the mask whether hbd drains the local app now.
func (d *Daemon) setDrainMask() {
	d.mask.set(time.Now(), d.drainedByUs(), drainSettle(d.cfg.Tracks))
}

func (d *Daemon) onCheck(r health.Result) {
	v := 0.0
	if r.Healthy {
		v = 1
	}
	d.metrics.checkUp.With(r.Name).Set(v)
	if d.mask.hold(time.Now(), r) {
		d.log.Info("check fails while hbd drains the local app itself; it counts only if it still fails once the app is back",
			"check", r.Name, "detail", r.Detail)
		return
	}
	d.applyCheck(r)
}

// applyCheck hands a check result to the core.
func (d *Daemon) applyCheck(r health.Result) {
	if r.Healthy {
		d.log.Info("check passes", "check", r.Name, "detail", r.Detail)
	} else {
		d.log.Warn("check fails", "check", r.Name, "detail", r.Detail, "weight", r.Weight, "fault", r.Fault)
	}
	for _, g := range d.groups {
		if g.tracks(r.Name) {
			g.act(g.m.SetCheck(time.Now(), r.Name, r.Weight, r.Fault, r.Healthy))
			g.met.priority.Set(float64(g.m.Status(time.Now()).EffectivePriority))
		}
	}
}

// chainWindow is how long a new master forwards to the previous one the
// packets that belong to no connection of its own: a client's ARP entry
// follows our first announcement within a millisecond, so what still
// arrives for a connection opened with the previous master is its next
// segments, a retransmission after the minimum RTO (200 ms) at the latest;
// each answer from the draining previous master says Connection: close, so
// its clients reconnect to us. It ends well before the previous master
// drops its hand-off route (handoffGrace after its release, which came
// before our claim).
const chainWindow = 250 * time.Millisecond

func (d *Daemon) openChain() {
	c, err := handoff.New(d.cfg.Interface, d.log)
	if errors.Is(err, handoff.ErrNotEthernet) {
		d.log.Info("no daisy chaining on this interface", "err", err)
		return
	}
	if err != nil {
		d.log.Warn("daisy chaining unavailable: a TCP handshake straddling a handover may be reset", "err", err)
		return
	}
	d.chain = c
	d.log.Info("daisy chaining ready", "attach", c.How())
}

func (d *Daemon) closeChain() {
	if d.chain != nil {
		if err := d.chain.Close(); err != nil {
			d.log.Warn("detaching the daisy-chaining program", "err", err)
		}
		d.chain = nil
	}
}

// startChain turns daisy chaining on when this claim follows a peer's
// release to us: for chainWindow, packets to the group's VIPs that belong
// to no local connection go on to that peer. Each group forwards its own
// VIPs to its own previous master, for its own window.
func (g *group) startChain(now time.Time) {
	d := g.d
	from := g.releasedBy
	if d.chain == nil || from == "" || now.Sub(g.releasedAt) > 2*d.cfg.DeadAfter.D() {
		return
	}
	g.releasedBy = ""
	p := d.peers[from]
	if p == nil {
		return
	}
	mac, err := handoff.PeerMAC(d.cfg.Interface, p.addr.Addr())
	if err == nil {
		err = d.chain.Forward(g.chainAddrs(), mac)
	}
	if err != nil {
		g.log.Warn("not forwarding to the previous master", "peer", from, "err", err)
		return
	}
	g.chainEnd = now.Add(chainWindow)
	g.log.Debug("forwarding stray packets to the previous master", "peer", from, "for", chainWindow)
}

func (g *group) stopChain() {
	if g.chainEnd.IsZero() {
		return
	}
	g.chainEnd = time.Time{}
	if err := g.d.chain.Stop(g.chainAddrs()); err != nil {
		g.log.Warn("stopping daisy chaining", "err", err)
	}
}

// chainAddrs are the addresses daisy chaining covers for the group: its L2
// VIPs, or, in a BGP-only config, the BGP ones (their packets arrive on the
// interface from the router, and the previous master is forwarded to at
// L2 when it is on the same segment).
func (g *group) chainAddrs() []netip.Addr {
	ps := g.e.VIPs
	if len(ps) == 0 {
		ps = g.d.cfg.BGPPrefixes()
	}
	out := make([]netip.Addr, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out
}
