package election

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Errors a handover request can be refused with.
var (
	ErrNotMaster   = errors.New("election: this node is not master")
	ErrNoCandidate = errors.New("election: no standby is ready to take over")
)

type peer struct {
	name         string
	last         time.Time // arrival of the last valid frame; zero once it said bye
	seen         time.Time // arrival of the last valid frame, bye included
	adv          Advert
	targetSince  time.Time // when its advert last changed target: a release older than our last claim is used up
	seenAsMaster bool      // we already reacted to it being master (re-announce once)
	splitEpoch   uint64    // the claim of its we already reacted to as a split brain
}

type check struct {
	weight  int
	fault   bool
	healthy bool
}

// Machine is one node's election state machine. It does no I/O and reads no
// clock: every input carries the current time and every method returns the
// actions the caller must carry out, in order. The returned slice belongs
// to the Machine and is valid until the next call that returns actions
// (a steady heartbeat allocates nothing). It is not safe for concurrent
// use: one goroutine (the daemon's loop) owns it.
type Machine struct {
	cfg Config

	state       State
	epoch       uint64 // epoch of our current or last claim
	maxEpoch    uint64 // highest epoch seen anywhere
	linkUp      bool
	maintenance bool
	checks      map[string]*check
	peers       map[string]*peer
	sorted      []*peer // the peers by name, for decisions every node reaches alike

	lastEvent   time.Time // to notice our own stalls (SIGSTOP, a hung host)
	listenStart time.Time // start of the current listening period
	listenUntil time.Time // no claim before this unless every peer was heard
	nextSend    time.Time
	lastRefresh time.Time
	holdDown    time.Time // no preemption before this
	wantSince   time.Time // since when we outrank the master (preempt delay)
	wantMaster  bool
	yieldTo     string    // we released the VIP for this node ...
	yieldUntil  time.Time // ... and don't claim before this unless it fails
	yieldEpoch  uint64    // the highest epoch known when we released: the target's claim raises it
	linger      string    // three or more nodes: a completed handover's target, still named in our frames ...
	lingerUntil time.Time // ... until then
	yielded     bool      // an operator handed the VIP away: don't preempt back
	reannounce  bool      // a split brain was seen: announce again if we stay master
	fullListen  bool      // after a stall: no early end to the listening period
	quorate     bool      // three or more nodes: a majority was in contact at the last evaluation
	quorumSince time.Time // ... since then; no claim for two intervals after it (see noteQuorum)

	leaseUntil  time.Time // our belief in the witness lease; zero: none
	leaseBusy   bool      // an acquire or renew is in flight
	leaseTried  time.Time // when the last acquire or renew was asked for
	witnessDown bool      // the last witness call got no answer

	lastTransition time.Time
	lastCause      Cause
	lastReason     string
	claimedAt      time.Time     // when we last became master
	holdDownFor    time.Duration // the current hold-down: doubles on each quick loss of mastership

	out     []Action
	flushed []Action // what the last call returned; reused
}

// New returns a machine in INIT at time now. The caller should report the
// link state with SetLink before the first Tick.
func New(cfg Config, now time.Time) *Machine {
	if cfg.Priority < 1 || cfg.Priority > 255 || cfg.Interval <= 0 || cfg.DeadAfter < cfg.Interval || cfg.Node == "" {
		panic(fmt.Sprintf("election: invalid config %+v", cfg))
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = cfg.DeadAfter
	}
	if cfg.YieldTimeout <= 0 {
		cfg.YieldTimeout = 2 * cfg.DeadAfter
	}
	if cfg.Witness {
		if cfg.LeaseRenew <= 0 {
			cfg.LeaseRenew = cfg.Interval
		}
		if cfg.LeaseRetry <= 0 {
			cfg.LeaseRetry = max(cfg.Interval, 50*time.Millisecond)
		}
	}
	return &Machine{
		cfg:            cfg,
		state:          Init,
		linkUp:         true,
		checks:         map[string]*check{},
		peers:          map[string]*peer{},
		lastEvent:      now,
		listenStart:    now,
		listenUntil:    now.Add(cfg.DeadAfter),
		nextSend:       now,
		lastTransition: now,
		lastCause:      CauseStarted,
		lastReason:     "started",
	}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Epoch returns the epoch of the current (or last) claim.
func (m *Machine) Epoch() uint64 { return m.epoch }

// Tick advances time: heartbeats fall due, peers expire, delays run out.
func (m *Machine) Tick(now time.Time) []Action {
	m.begin(now)
	m.evaluate(now)
	return m.flush(now)
}

// Receive feeds a verified frame from a peer, received at now.
func (m *Machine) Receive(now time.Time, h Heard) []Action {
	m.begin(now)
	if h.Node == m.cfg.Node || h.Node == "" {
		return m.flush(now) // the receiver already rejects these; be safe
	}
	p := m.peers[h.Node]
	if p == nil {
		p = &peer{name: h.Node}
		m.peers[h.Node] = p
		i, _ := slices.BinarySearchFunc(m.sorted, h.Node, func(q *peer, name string) int { return strings.Compare(q.name, name) })
		m.sorted = slices.Insert(m.sorted, i, p)
	}
	if h.Epoch > m.maxEpoch {
		m.maxEpoch = h.Epoch
	}
	if m.state == Master && h.Epoch >= m.epoch && h.Epoch != p.splitEpoch {
		// Someone claimed while we were master (its epoch is not older
		// than ours): a split brain. If we stay master, clients may still
		// hold the other's MAC.
		p.splitEpoch = h.Epoch
		m.reannounce = true
	}
	if h.Target != p.adv.Target {
		p.targetSince = now
	}
	p.adv = h.Advert
	p.last, p.seen = now, now
	if h.State != Master {
		p.seenAsMaster = false
	}
	switch {
	case h.Kind == Bye:
		p.last = time.Time{}
		p.seenAsMaster = false
	case h.Node == m.yieldTo && (h.State == Master || (m.majorityRule() && h.Epoch > m.yieldEpoch)):
		// The handover completed: the target is master, or (three or
		// more nodes) its epoch shows it claimed and at once handed the
		// VIP on, its frames never saying MASTER. With three or more
		// nodes, keep naming a master target in our frames for a while:
		// a third node may hear our next frame before the target's own,
		// and must not read "no master, no handover" and claim beside it.
		if m.majorityRule() && h.State == Master {
			m.linger, m.lingerUntil = m.yieldTo, now.Add(m.cfg.DeadAfter)
		}
		m.endYield()
	}
	// A Released frame names us; a yielding master's heartbeats name us too,
	// in case the Released frame was lost on both paths. Another master we
	// hear (the other side of a split brain the releaser could not hear)
	// still holds the VIP: then evaluate decides, as for any backup.
	if m.releasedTo(p) && h.State != Master && m.state == Backup && m.eligible() && m.aliveMaster(now) == nil {
		m.tryClaim(now, CauseReleased, h.Node+" released the VIP to us")
	}
	m.evaluate(now)
	return m.flush(now)
}

// SetLink reports the state of the VIP interface's link.
func (m *Machine) SetLink(now time.Time, up bool) []Action {
	m.begin(now)
	m.linkUp = up
	m.evaluate(now)
	return m.flush(now)
}

// SetCheck reports the result of a health check. A failing check subtracts
// weight from the priority, or puts the node in FAULT when fault is set.
func (m *Machine) SetCheck(now time.Time, name string, weight int, fault, healthy bool) []Action {
	m.begin(now)
	m.checks[name] = &check{weight: weight, fault: fault, healthy: healthy}
	m.evaluate(now)
	return m.flush(now)
}

// RemoveCheck forgets a check (after a reload dropped it).
func (m *Machine) RemoveCheck(now time.Time, name string) []Action {
	m.begin(now)
	delete(m.checks, name)
	m.evaluate(now)
	return m.flush(now)
}

// SetPriority changes the configured priority (after a reload).
func (m *Machine) SetPriority(now time.Time, prio int) []Action {
	if prio < 1 || prio > 255 {
		panic(fmt.Sprintf("election: priority %d out of range", prio))
	}
	m.begin(now)
	m.cfg.Priority = prio
	m.evaluate(now)
	return m.flush(now)
}

// LeaseResult feeds back the witness's answer to an ActLease.
func (m *Machine) LeaseResult(now time.Time, r LeaseReply) []Action {
	m.begin(now)
	if r.Op != LeaseRelease {
		m.leaseBusy = false
	}
	m.witnessDown = r.Unreachable
	switch {
	case r.Op == LeaseRelease || r.Unreachable:
	case r.Won:
		m.leaseUntil = r.ValidUntil
	default:
		m.leaseUntil = time.Time{}
		if m.state == Master {
			m.startHoldDown(now)
			m.emit(Action{Kind: ActRelease, Cause: CauseWitness, Reason: "lost the witness lease"})
			m.transition(now, Backup, CauseWitness, fmt.Sprintf("the witness lease is held by %q: stepping down", r.Holder))
			m.emit(Action{Kind: ActSend, Frame: Heartbeat})
			m.nextSend = now.Add(m.cfg.Interval)
		}
	}
	m.evaluate(now)
	return m.flush(now)
}

// leaseCovers reports whether the witness lease lets us hold (claim or
// refresh) the VIP now: it must outlast now by the VIP lifetime plus the
// kernel's slack, so that if we froze right now the kernel would drop the
// VIP before the lease could expire for anyone else.
func (m *Machine) leaseCovers(now time.Time) bool {
	return !m.cfg.Witness || !now.Add(m.cfg.LeaseGuard).After(m.leaseUntil) || m.bypass()
}

// bypass reports whether the witness is down and the policy says to carry
// on without it.
func (m *Machine) bypass() bool { return m.cfg.Witness && m.cfg.WitnessBypass && m.witnessDown }

// tryClaim claims the VIP, first winning the witness lease if one is
// configured.
func (m *Machine) tryClaim(now time.Time, cause Cause, reason string) {
	if !m.quorum(now).Held() {
		return // three or more nodes, and no majority in contact: the other side may have one
	}
	if m.leaseCovers(now) {
		m.claim(now, cause, reason)
		return
	}
	if !m.leaseBusy && !now.Before(m.leaseTried.Add(m.cfg.LeaseRetry)) {
		m.leaseBusy, m.leaseTried = true, now
		m.emit(Action{Kind: ActLease, Lease: LeaseAcquire, Epoch: max(m.epoch, m.maxEpoch) + 1, Cause: cause, Reason: reason})
	}
}

// releaseLease gives the lease up, so that a handover's target or the
// next master wins it at once.
func (m *Machine) releaseLease() {
	if m.cfg.Witness && !m.leaseUntil.IsZero() {
		m.leaseUntil = time.Time{}
		m.emit(Action{Kind: ActLease, Lease: LeaseRelease})
	}
}

// SetPeerCount changes the number of configured peers (after a reload).
func (m *Machine) SetPeerCount(now time.Time, n int) []Action {
	m.begin(now)
	m.cfg.Peers = n
	m.evaluate(now)
	return m.flush(now)
}

// SetMaintenance pins the node out of the election, or lets it back in. A
// master entering maintenance releases the VIP at once: hand over first
// (Candidate, Release) for a clean move.
func (m *Machine) SetMaintenance(now time.Time, on bool) []Action {
	m.begin(now)
	m.maintenance = on
	if !on {
		m.yielded = false
	}
	m.evaluate(now)
	return m.flush(now)
}

// Candidate picks the standby a planned handover should go to: the named
// node, or when to is empty the best one, ready ones first. A standby that
// fails a weighted check is refused while this node passes all of its own;
// when this node fails one too (a dependency both share is down, such as
// Redis), the move makes nothing worse and is allowed, so that a rolling
// update can go on.
func (m *Machine) Candidate(now time.Time, to string) (string, error) {
	if m.state != Master {
		return "", fmt.Errorf("%w (state %s)", ErrNotMaster, m.state)
	}
	var best *peer
	var why []string
	for _, p := range m.sortedPeers() {
		if to != "" && p.name != to {
			continue
		}
		switch {
		case !m.alive(p, now):
			why = append(why, p.name+" is not heard")
		case p.adv.State != Backup:
			why = append(why, fmt.Sprintf("%s is %s", p.name, p.adv.State))
		case p.adv.Flags&FlagReady == 0 && (m.ready() || p.adv.Flags.Has(FlagDegraded)):
			why = append(why, p.name+" is not ready (a check fails or its link is down)")
		case best == nil || betterCandidate(p, best):
			best = p
		}
	}
	if best != nil {
		return best.name, nil
	}
	if to != "" && len(why) == 0 {
		return "", fmt.Errorf("%w: no peer named %q has been heard", ErrNoCandidate, to)
	}
	if len(why) == 0 {
		why = append(why, "no peer has been heard")
	}
	return "", fmt.Errorf("%w: %s", ErrNoCandidate, strings.Join(why, "; "))
}

// Release is the planned handover's last step: the master drops the VIP
// and tells target to claim it at once. If target has not become master
// within YieldTimeout, the normal election runs again (and this node
// re-claims if it is still the best).
func (m *Machine) Release(now time.Time, target string) ([]Action, error) {
	m.begin(now)
	target, err := m.Candidate(now, target)
	if err != nil {
		return m.flush(now), err
	}
	m.yielded = true
	m.yield(now, target, CauseHandover, "handover to "+target)
	m.evaluate(now)
	return m.flush(now), nil
}

// Stop is a clean shutdown: release the VIP if held and say bye.
func (m *Machine) Stop(now time.Time) []Action {
	m.begin(now)
	if m.state == Master {
		m.emit(Action{Kind: ActRelease, Cause: CauseStopping, Reason: "stopping"})
		m.releaseLease()
	}
	m.transition(now, Init, CauseStopping, "stopping")
	m.emit(Action{Kind: ActSend, Frame: Bye})
	return m.flush(now)
}

// Advert is what this node's next frame says about it.
func (m *Machine) Advert() Advert {
	a := Advert{State: m.state, Priority: m.effectivePriority(), Epoch: m.epoch, Target: m.yieldTo}
	if a.Target == "" && m.linger != "" && m.state != Master {
		a.Target = m.linger
	}
	if m.ready() {
		a.Flags |= FlagReady
	}
	if m.maintenance {
		a.Flags |= FlagMaintenance
	}
	if m.wantMaster {
		a.Flags |= FlagWantMaster
	}
	if m.degraded() {
		a.Flags |= FlagDegraded
	}
	return a
}

// NextDeadline is the latest time by which Tick must be called for the
// machine to act on time.
func (m *Machine) NextDeadline() time.Time {
	d := m.nextSend
	early := func(t time.Time) {
		if !t.IsZero() && t.After(m.lastEvent) && t.Before(d) {
			d = t
		}
	}
	for _, p := range m.peers {
		if !p.last.IsZero() {
			early(p.last.Add(m.cfg.DeadAfter + time.Nanosecond))
		}
	}
	early(m.listenUntil)
	if m.majorityRule() {
		early(m.quorumSince.Add(2 * m.cfg.Interval))
	}
	early(m.yieldUntil)
	if m.linger != "" {
		early(m.lingerUntil)
	}
	early(m.holdDown)
	if !m.wantSince.IsZero() {
		early(m.wantSince.Add(m.cfg.PreemptDelay))
	}
	if m.state == Master {
		early(m.lastRefresh.Add(m.cfg.Refresh))
		if m.majorityRule() {
			for _, p := range m.peers {
				if !p.last.IsZero() {
					early(p.last.Add(m.holdWindow() + time.Nanosecond))
				}
			}
		}
	}
	if m.cfg.Witness {
		if m.state == Master {
			early(m.leaseUntil)
			early(m.leaseTried.Add(m.cfg.LeaseRenew))
		} else {
			early(m.leaseTried.Add(m.cfg.LeaseRetry))
		}
	}
	return d
}

// Status describes the machine at now.
func (m *Machine) Status(now time.Time) Status {
	s := Status{
		Node:              m.cfg.Node,
		State:             m.state,
		Epoch:             m.epoch,
		Priority:          m.cfg.Priority,
		EffectivePriority: m.effectivePriority(),
		Penalties:         map[string]int{},
		Faults:            m.faults(),
		LinkUp:            m.linkUp,
		HoldDownUntil:     m.holdDown,
		Ready:             m.ready(),
		Degraded:          m.degraded(),
		LastTransition:    m.lastTransition,
		LastCause:         m.lastCause,
		LastReason:        m.lastReason,
		YieldingTo:        m.yieldTo,
		Witness:           m.cfg.Witness,
		LeaseUntil:        m.leaseUntil,
		WitnessDown:       m.witnessDown,
		Quorum:            m.quorum(now),
	}
	for name, c := range m.checks {
		if !c.healthy && !c.fault {
			s.Penalties[name] = c.weight
		}
	}
	for _, p := range m.sortedPeers() {
		s.Peers = append(s.Peers, PeerStatus{Node: p.name, Alive: m.alive(p, now), LastHeard: p.last, Advert: p.adv})
	}
	return s
}

// begin records an event's time and notices a stall of our own loop: if
// nothing ran for longer than dead_after, peers may have declared us dead
// and claimed, so a master steps down and everyone listens again before
// claiming.
func (m *Machine) begin(now time.Time) {
	gap := now.Sub(m.lastEvent)
	if now.After(m.lastEvent) {
		m.lastEvent = now
	}
	if gap <= m.cfg.DeadAfter {
		return
	}
	m.listenStart, m.listenUntil = now, now.Add(m.cfg.DeadAfter)
	// Frames queued while we stalled are stale: the first one may show a
	// peer as it was before it took over. Listen for the whole period.
	m.fullListen = true
	if m.state == Master {
		m.startHoldDown(now)
		m.emit(Action{Kind: ActRelease, Cause: CauseStalled, Reason: "stalled"})
		m.releaseLease()
		m.transition(now, Backup, CauseStalled, fmt.Sprintf("our loop stalled for %s, longer than dead_after: another node may have claimed", gap.Round(time.Millisecond)))
	}
}

func (m *Machine) evaluate(now time.Time) {
	if m.linger != "" && !now.Before(m.lingerUntil) {
		m.linger = ""
	}
	m.noteQuorum(now)
	if m.faulty() {
		why := strings.Join(m.faults(), "; ")
		cause := CauseCheck
		if !m.linkUp {
			cause = CauseLinkDown
		}
		switch {
		case m.degraded() && m.noHealthyPeer(now):
			m.evaluateDegraded(now, why)
		case m.state == Master && m.degraded() && m.healthiestPeer(now) != nil:
			// Our link is up and a healthy node can take over: hand the
			// VIP to it rather than drop it, so that it claims at once
			// and packets already on their way here are still accepted.
			to := m.healthiestPeer(now)
			m.startHoldDown(now)
			m.yield(now, to.name, CauseCheck, why+": handing over to "+to.name)
			m.transition(now, Fault, CauseCheck, why)
		case m.state != Fault:
			m.leave(now, Fault, cause, why)
		}
		m.sendDue(now)
		return
	}
	if m.maintenance {
		if m.state != Maintenance {
			m.leave(now, Maintenance, CauseMaintenance, "maintenance on")
		}
		m.sendDue(now)
		return
	}
	switch m.state {
	case Init, Fault, Maintenance:
		cause, reason := CauseStarted, "started"
		if m.state != Init {
			cause, reason = CauseRecovered, "recovered from "+m.state.String()
			m.listenStart, m.listenUntil = now, now.Add(m.cfg.DeadAfter)
			// Frames queued during the outage (a TCP backlog) arrive first
			// and show peers as they were: listen for the whole period.
			m.fullListen = true
		}
		m.transition(now, Backup, cause, reason)
		m.emit(Action{Kind: ActSend, Frame: Heartbeat})
		m.nextSend = now.Add(m.cfg.Interval)
		fallthrough
	case Backup:
		m.evaluateBackup(now)
	case Master:
		m.evaluateMaster(now)
	}
	m.sendDue(now)
}

func (m *Machine) evaluateBackup(now time.Time) {
	m.checkYield(now)
	master := m.aliveMaster(now)
	if master != nil {
		m.releaseLease() // won for a claim that is no longer needed
		m.considerPreempt(now, master)
		return
	}
	m.wantSince = time.Time{}
	m.setWant(now, false)
	if m.yieldTo != "" {
		return // the target is claiming; don't race it
	}
	for _, p := range m.sortedPeers() {
		if m.alive(p, now) && m.releasedTo(p) {
			m.tryClaim(now, CauseReleased, p.name+" released the VIP to us")
			return
		}
	}
	for _, p := range m.peers {
		if m.alive(p, now) && p.adv.Target != "" && p.adv.Target != m.cfg.Node {
			if t := m.peers[p.adv.Target]; t != nil && m.alive(t, now) {
				return // another master is handing over to a live node
			}
		}
	}
	if (now.Before(m.listenUntil) && !m.heardAll()) || m.quorumSettling(now) {
		return
	}
	m.fullListen = false
	if m.bestEligible(now) {
		m.tryClaim(now, CauseNoMaster, "no master heard and we rank highest")
	}
}

func (m *Machine) evaluateMaster(now time.Time) {
	if m.cfg.Witness && !m.bypass() && !now.Before(m.leaseUntil) {
		// Self-fencing: the lease ran out without a renewal. The VIP has
		// not been refreshed for a while and is expiring in the kernel;
		// drop it now and let the lease's next holder have it.
		m.startHoldDown(now)
		m.emit(Action{Kind: ActRelease, Cause: CauseSelfFenced, Reason: "witness lease expired"})
		m.transition(now, Backup, CauseSelfFenced, "self-fenced: the witness lease could not be renewed in time")
		m.emit(Action{Kind: ActSend, Frame: Heartbeat})
		m.nextSend = now.Add(m.cfg.Interval)
		return
	}
	if q := m.quorum(now); !q.Held() {
		// The majority rule: cut off from most of the cluster, we cannot
		// tell whether the other side has elected a master (it has, if it
		// is a majority: it stops hearing us at the same moment we stop
		// hearing it, and claims dead_after later). Drop the VIP before
		// that: holdWindow after the cut.
		m.startHoldDown(now)
		m.emit(Action{Kind: ActRelease, Cause: CauseQuorum, Reason: "quorum lost"})
		m.releaseLease()
		m.transition(now, Backup, CauseQuorum, fmt.Sprintf("in contact with %d of %d nodes, a majority needs %d: releasing the VIP", q.Have, q.Size, q.Need))
		m.emit(Action{Kind: ActSend, Frame: Heartbeat})
		m.nextSend = now.Add(m.cfg.Interval)
		return
	}
	if m.cfg.Witness && !m.leaseBusy && !now.Before(m.leaseTried.Add(m.cfg.LeaseRenew)) {
		m.leaseBusy, m.leaseTried = true, now
		m.emit(Action{Kind: ActLease, Lease: LeaseRenew, Epoch: m.epoch})
	}
	me := m.effectivePriority()
	for _, p := range m.sortedPeers() {
		if !m.alive(p, now) || p.adv.State != Master {
			continue
		}
		if m.mastersOrder(p.adv.Priority, p.adv.Epoch, p.name, me, m.epoch, m.cfg.Node) {
			m.startHoldDown(now)
			m.emit(Action{Kind: ActRelease, Cause: CauseSplitBrain, Reason: "split brain: " + p.name + " outranks us"})
			m.releaseLease()
			m.transition(now, Backup, CauseSplitBrain, fmt.Sprintf("%s is also master with higher (priority, epoch) (%d, %d) > (%d, %d)", p.name, p.adv.Priority, p.adv.Epoch, me, m.epoch))
			m.emit(Action{Kind: ActSend, Frame: Heartbeat})
			m.nextSend = now.Add(m.cfg.Interval)
			return
		}
		if !p.seenAsMaster {
			p.seenAsMaster = true
			m.reannounce = true
		}
	}
	if m.reannounce {
		// Two masters, and we win. Re-announce so no client keeps the
		// loser's MAC, and tell the loser at once.
		m.reannounce = false
		m.emit(Action{Kind: ActAnnounce, Cause: CauseSplitBrain, Reason: "split brain healed: we outrank the other master"})
		m.emit(Action{Kind: ActSend, Frame: Heartbeat})
		m.nextSend = now.Add(m.cfg.Interval)
	}
	for _, p := range m.sortedPeers() {
		if m.alive(p, now) && p.adv.State == Backup && p.adv.Flags&(FlagWantMaster|FlagReady) == FlagWantMaster|FlagReady &&
			outranks(p.adv.Priority, p.name, me, m.cfg.Node) {
			m.yield(now, p.name, CausePreempted, "preempted by "+p.name+" (higher priority)")
			return
		}
	}
	if !now.Before(m.lastRefresh.Add(m.cfg.Refresh)) && m.leaseCovers(now) {
		m.lastRefresh = now
		m.emit(Action{Kind: ActRefresh})
	}
}

// evaluateDegraded runs the election of last resort: only fault checks fail
// here, our link is up, and no live peer is healthy (they all fail checks,
// their links are down, they are pinned out, or they are silent). Moving
// the VIP cannot cure a failure every node shares, and a VIP that nobody
// holds serves nobody, so the best such node keeps the VIP, or claims it
// when nobody holds it. A master stays master (refresh, lease and split
// brain as usual); the others wait in FAULT and claim only when no live
// master is left and they outrank every live degraded peer.
func (m *Machine) evaluateDegraded(now time.Time, why string) {
	if m.state == Master {
		m.evaluateMaster(now)
		return
	}
	if m.state != Fault {
		m.leave(now, Fault, CauseCheck, why)
	}
	m.checkYield(now)
	if m.aliveMaster(now) != nil || m.yieldTo != "" {
		return
	}
	if (now.Before(m.listenUntil) && !m.heardAll()) || m.quorumSettling(now) {
		return
	}
	me := m.effectivePriority()
	for _, p := range m.peers {
		if m.alive(p, now) && p.adv.Flags.Has(FlagDegraded) && outranks(p.adv.Priority, p.name, me, m.cfg.Node) {
			return
		}
	}
	m.fullListen = false
	m.tryClaim(now, CauseDegraded, "every node fails its checks ("+why+"); we rank highest of those whose link is up: holding the VIP degraded")
}

// noHealthyPeer reports whether no live peer could hold the VIP without
// failing a fault check: every live peer is degraded, in FAULT for its
// link, in maintenance or still starting.
func (m *Machine) noHealthyPeer(now time.Time) bool {
	if m.healthiestPeer(now) != nil {
		return false
	}
	for _, p := range m.peers {
		if m.alive(p, now) && p.adv.State == Master && !p.adv.Flags.Has(FlagDegraded) {
			return false
		}
	}
	return true
}

// healthiestPeer returns the best live peer in BACKUP that fails no fault
// check, or nil.
func (m *Machine) healthiestPeer(now time.Time) *peer {
	var best *peer
	for _, p := range m.sortedPeers() {
		if m.alive(p, now) && p.adv.State == Backup && !p.adv.Flags.Has(FlagDegraded) && !p.adv.Flags.Has(FlagMaintenance) &&
			(best == nil || outranks(p.adv.Priority, p.name, best.adv.Priority, best.name)) {
			best = p
		}
	}
	return best
}

// degraded reports whether the only reasons for FAULT are failing checks:
// the link is up and the node is not in maintenance.
func (m *Machine) degraded() bool {
	return m.linkUp && !m.maintenance && m.faulty()
}

// considerPreempt decides whether to ask the master to hand over to us:
// we must have outranked it, ready, for the whole preempt delay.
func (m *Machine) considerPreempt(now time.Time, master *peer) {
	want := m.cfg.Preempt && !m.yielded && m.ready() && !now.Before(m.holdDown) &&
		outranks(m.effectivePriority(), m.cfg.Node, master.adv.Priority, master.name)
	if !want {
		m.wantSince = time.Time{}
		m.setWant(now, false)
		return
	}
	if m.wantSince.IsZero() {
		m.wantSince = now
	}
	m.setWant(now, now.Sub(m.wantSince) >= m.cfg.PreemptDelay)
}

// setWant sets the want-master flag, telling the master at once on change.
func (m *Machine) setWant(now time.Time, want bool) {
	if want == m.wantMaster {
		return
	}
	m.wantMaster = want
	m.emit(Action{Kind: ActSend, Frame: Heartbeat})
	m.nextSend = now.Add(m.cfg.Interval)
}

func (m *Machine) claim(now time.Time, cause Cause, reason string) {
	if m.maxEpoch > m.epoch {
		m.epoch = m.maxEpoch
	}
	m.epoch++
	m.maxEpoch = m.epoch
	m.endYield()
	m.yielded = false
	m.setWant(now, false)
	m.wantSince = time.Time{}
	m.lastRefresh = now
	m.claimedAt = now
	m.linger = ""
	m.emit(Action{Kind: ActClaim, Epoch: m.epoch, Cause: cause, Reason: reason, Bypass: m.bypass()})
	m.transition(now, Master, cause, reason)
	m.emit(Action{Kind: ActSend, Frame: Heartbeat})
	m.nextSend = now.Add(m.cfg.Interval)
}

// yield releases the VIP for target and waits for it to claim.
func (m *Machine) yield(now time.Time, target string, cause Cause, reason string) {
	m.yieldTo, m.yieldUntil, m.yieldEpoch = target, now.Add(m.cfg.YieldTimeout), max(m.epoch, m.maxEpoch)
	m.emit(Action{Kind: ActRelease, Cause: cause, Reason: reason, Handoff: true})
	m.releaseLease()
	m.transition(now, Backup, cause, reason)
	m.emit(Action{Kind: ActSend, Frame: Released, Target: target})
	m.nextSend = now.Add(m.cfg.Interval)
}

// checkYield ends a wait for a handover's target once the wait timed out,
// or, with three or more nodes, once the target has gone silent: a target
// cut off from us holds no VIP (it is dead, or on a side without us, so
// without a majority unless we are in the minority, where we cannot claim
// anyway), and the majority must elect within dead_after. With two nodes
// the wait runs its full YieldTimeout, as it always has.
func (m *Machine) checkYield(now time.Time) {
	if m.yieldTo == "" {
		return
	}
	t := m.peers[m.yieldTo]
	silent := m.majorityRule() && (t == nil || !m.alive(t, now))
	if !now.Before(m.yieldUntil) || silent {
		m.endYield()
	}
}

// releasedTo reports whether p's advert releases the VIP to us, a release
// made after our last claim: p's frames keep naming us until it hears us
// as master, and one still on its way after our claim (or read once we
// have handed the VIP on) is used up, not a second release.
func (m *Machine) releasedTo(p *peer) bool {
	return p.adv.Target == m.cfg.Node && p.targetSince.After(m.claimedAt)
}

func (m *Machine) endYield() { m.yieldTo, m.yieldUntil = "", time.Time{} }

// maxHoldDownFactor caps the escalation of the hold-down.
const maxHoldDownFactor = 16

// startHoldDown starts the hold-down after an involuntary loss of
// mastership. A node that loses mastership again soon after winning it
// (within ten hold-downs) is flapping: each such loss doubles its
// hold-down, up to 16 times the configured one; a mastership that lasts
// resets it.
func (m *Machine) startHoldDown(now time.Time) {
	base := m.cfg.HoldDown
	switch {
	case m.holdDownFor == 0 || now.Sub(m.claimedAt) > 10*max(m.holdDownFor, base):
		m.holdDownFor = base
	case m.holdDownFor < maxHoldDownFactor*base:
		m.holdDownFor *= 2
	}
	m.holdDown = now.Add(m.holdDownFor)
}

// leave enters FAULT or MAINTENANCE, releasing the VIP if held.
func (m *Machine) leave(now time.Time, to State, cause Cause, reason string) {
	if m.state == Master {
		m.startHoldDown(now)
		m.emit(Action{Kind: ActRelease, Cause: cause, Reason: reason})
		m.releaseLease()
	}
	m.endYield()
	m.setWant(now, false)
	m.transition(now, to, cause, reason)
	m.emit(Action{Kind: ActSend, Frame: Heartbeat}) // peers take over without waiting dead_after
	m.nextSend = now.Add(m.cfg.Interval)
}

func (m *Machine) transition(now time.Time, to State, cause Cause, reason string) {
	if m.state == to {
		return
	}
	m.reannounce = false
	from := m.state
	m.state = to
	m.lastTransition, m.lastCause, m.lastReason = now, cause, reason
	m.emit(Action{Kind: ActNotify, From: from, To: to, Epoch: m.epoch, Cause: cause, Reason: reason})
}

func (m *Machine) sendDue(now time.Time) {
	if !now.Before(m.nextSend) {
		m.emit(Action{Kind: ActSend, Frame: Heartbeat, Periodic: true})
		m.nextSend = now.Add(m.cfg.Interval)
	}
}

func (m *Machine) emit(a Action) { m.out = append(m.out, a) }

// Sent tells the machine that a frame carrying its Advert left at now on
// another election's behalf (VIP groups: one frame carries every group's
// state). It is a Tick whose beat that frame was: the next periodic beat
// comes one interval after it, and the machine still sees time pass
// (expiries, its own stalls) as on any Tick.
func (m *Machine) Sent(now time.Time) []Action {
	if next := now.Add(m.cfg.Interval); next.After(m.nextSend) {
		m.nextSend = next
	}
	return m.Tick(now)
}

// flush returns the pending actions, merging duplicate heartbeat sends.
// The slice is the Machine's own: it is valid until the next call into it.
func (m *Machine) flush(now time.Time) []Action {
	out := m.flushed[:0]
	sent := -1
	for _, a := range m.out {
		if a.Kind == ActSend && a.Frame == Heartbeat {
			if sent >= 0 {
				out[sent].Periodic = out[sent].Periodic && a.Periodic
				continue
			}
			sent = len(out)
		}
		out = append(out, a)
	}
	m.out = m.out[:0]
	m.flushed = out
	return out
}

func (m *Machine) alive(p *peer, now time.Time) bool {
	return !p.last.IsZero() && now.Sub(p.last) <= m.cfg.DeadAfter
}

// noteQuorum notes when we regained a majority (see quorumSettling).
func (m *Machine) noteQuorum(now time.Time) {
	q := m.quorum(now)
	if q.Need == 0 {
		return
	}
	if q.Held() && !m.quorate {
		m.quorumSince = now
	}
	m.quorate = q.Held()
}

// quorumSettling reports whether we regained the majority less than two
// intervals ago: the frames that brought the majority back may come
// before fresher ones from nodes already heard (a priority that changed in
// the same instant), and two nodes claiming on views one frame apart would
// both hold the VIP for a moment, so no claim until fresh frames are in.
func (m *Machine) quorumSettling(now time.Time) bool {
	return m.majorityRule() && now.Before(m.quorumSince.Add(2*m.cfg.Interval))
}

// quorum counts this node and its live peers against the majority the
// configured cluster needs. A peer that said bye is not in contact: a
// majority must be able to answer, not merely have been polite.
//
// A peer counts while heard within holdWindow, a little less than
// dead_after: see there.
func (m *Machine) quorum(now time.Time) Quorum {
	q := Quorum{Size: m.cfg.Peers + 1, Have: 1}
	q.Need = QuorumOf(q.Size)
	window := m.holdWindow()
	for _, p := range m.peers {
		if !p.last.IsZero() && now.Sub(p.last) <= window {
			q.Have++
		}
	}
	return q
}

// holdWindow is how recently a node must have heard a majority to claim
// or keep the VIP: a quarter of dead_after shorter than the time after
// which the other side's backups declare it dead (but leaving at least
// two intervals), so that in a partition the minority's master has
// released before the majority claims, and the two sides never hold the
// VIP at once.
func (m *Machine) holdWindow() time.Duration {
	guard := min(m.cfg.DeadAfter/4, m.cfg.DeadAfter-2*m.cfg.Interval)
	return m.cfg.DeadAfter - max(guard, 0)
}

func (m *Machine) aliveMaster(now time.Time) *peer {
	var best *peer
	for _, p := range m.sortedPeers() {
		if m.alive(p, now) && p.adv.State == Master &&
			(best == nil || m.mastersOrder(p.adv.Priority, p.adv.Epoch, p.name, best.adv.Priority, best.adv.Epoch, best.name)) {
			best = p
		}
	}
	return best
}

// heardAll reports whether every configured peer was heard during the
// current listening period, which ends the start-up wait early.
func (m *Machine) heardAll() bool {
	if m.fullListen {
		return false
	}
	n := 0
	for _, p := range m.peers {
		if !p.seen.IsZero() && !p.seen.Before(m.listenStart) {
			n++ // heard, or said bye: either way we know it is not master
		}
	}
	return m.cfg.Peers > 0 && n >= m.cfg.Peers
}

// bestEligible reports whether we outrank every live peer that could claim.
func (m *Machine) bestEligible(now time.Time) bool {
	me := m.effectivePriority()
	for _, p := range m.peers {
		if !m.alive(p, now) || (p.adv.State != Backup && p.adv.State != Init) {
			continue
		}
		if outranks(p.adv.Priority, p.name, me, m.cfg.Node) {
			return false
		}
	}
	return true
}

func (m *Machine) eligible() bool { return !m.faulty() && !m.maintenance }

// faulty reports whether faults would name anything, without building the
// list.
func (m *Machine) faulty() bool {
	if !m.linkUp {
		return true
	}
	for _, c := range m.checks {
		if c.fault && !c.healthy {
			return true
		}
	}
	return false
}

func (m *Machine) ready() bool {
	if !m.eligible() {
		return false
	}
	for _, c := range m.checks {
		if !c.healthy {
			return false
		}
	}
	return true
}

func (m *Machine) faults() []string {
	var f []string
	if !m.linkUp {
		f = append(f, "link down")
	}
	for _, name := range m.checkNames() {
		if c := m.checks[name]; c.fault && !c.healthy {
			f = append(f, "check "+name+" failing")
		}
	}
	return f
}

func (m *Machine) effectivePriority() int {
	p := m.cfg.Priority
	for _, c := range m.checks {
		if !c.healthy && !c.fault {
			p -= c.weight
		}
	}
	return max(0, min(p, 255))
}

func (m *Machine) checkNames() []string {
	names := make([]string, 0, len(m.checks))
	for n := range m.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// sortedPeers returns the peers by name; callers must not modify it.
func (m *Machine) sortedPeers() []*peer { return m.sorted }

// betterCandidate orders handover targets: ready first, then by rank.
func betterCandidate(a, b *peer) bool {
	if ra, rb := a.adv.Flags.Has(FlagReady), b.adv.Flags.Has(FlagReady); ra != rb {
		return ra
	}
	return outranks(a.adv.Priority, a.name, b.adv.Priority, b.name)
}

// outranks orders candidates for an election: higher priority wins, and
// between equals the smaller name, so that every node reaches the same
// verdict from the same adverts.
func outranks(prioA int, nameA string, prioB int, nameB string) bool {
	if prioA != prioB {
		return prioA > prioB
	}
	return nameA < nameB
}

// majorityRule reports whether the majority quorum applies: three or more
// nodes.
func (m *Machine) majorityRule() bool { return QuorumOf(m.cfg.Peers+1) > 0 }

// mastersOrder reports whether master A outranks master B. With two nodes
// that is outranksEpoch (priority first). With three or more, two masters
// can only meet after a cut that was not clean (one way only, or A hears
// B and C that do not hear each other): the later claim (higher epoch)
// was made by a node that did not hear the other master, so the other
// steps down, and the one that cannot hear it keeps the VIP. A node that
// outranks it by priority takes it back by preemption once it is heard.
func (m *Machine) mastersOrder(prioA int, epochA uint64, nameA string, prioB int, epochB uint64, nameB string) bool {
	if m.majorityRule() && epochA != epochB {
		return epochA > epochB
	}
	return outranksEpoch(prioA, epochA, nameA, prioB, epochB, nameB)
}

// outranksEpoch orders two masters after a partition heals: priority, then
// the later claim (higher epoch), then the name.
func outranksEpoch(prioA int, epochA uint64, nameA string, prioB int, epochB uint64, nameB string) bool {
	if prioA != prioB {
		return prioA > prioB
	}
	if epochA != epochB {
		return epochA > epochB
	}
	return nameA < nameB
}
