package election

import (
	"fmt"
	"time"
)

// State, Kind and Flags are the wire's enums as well as the core's: package
// heartbeat encodes these very types, so their numbers are defined here once
// (and pinned by TestWireNumbers).

// State is a node's role in the election.
type State uint8

// The states. Their numbers travel in frames; never renumber them.
const (
	Init        State = 0 // just started, not yet in the election
	Backup      State = 1 // ready to take over, not holding the VIP
	Master      State = 2 // holds the VIP
	Fault       State = 3 // own link down or a fault check failing: holds no VIP (but see FlagDegraded)
	Maintenance State = 4 // pinned out of the election by the operator
)

var stateNames = [...]string{"INIT", "BACKUP", "MASTER", "FAULT", "MAINTENANCE"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Kind is what a frame says beyond "I am alive".
type Kind uint8

// Frame kinds. Their numbers travel in frames; never renumber them.
const (
	Heartbeat Kind = 1 // periodic: my state, priority and epoch
	Bye       Kind = 2 // I am stopping cleanly: don't wait for dead_after
	Released  Kind = 3 // I released the VIP for Target: claim it now
)

// Valid reports whether k is a kind this version knows.
func (k Kind) Valid() bool { return k >= Heartbeat && k <= Released }

func (k Kind) String() string {
	switch k {
	case Heartbeat:
		return "heartbeat"
	case Bye:
		return "bye"
	case Released:
		return "released"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flags qualify a frame. Bits this version does not define are carried
// unchanged and ignored.
type Flags uint8

// Frame flags.
const (
	FlagReady       Flags = 1 << 0 // link up, every check passing, not in maintenance: can take over
	FlagMaintenance Flags = 1 << 1 // pinned out by the operator
	FlagWantMaster  Flags = 1 << 2 // I outrank the master and ask it to hand over to me (preemption)
	// FlagDegraded: a fault check fails but my link is up and I am not in
	// maintenance. I hold the VIP only while no healthy node can: a
	// failure every node shares (the Redis they all use) must not black
	// the VIP out.
	FlagDegraded Flags = 1 << 3
)

// Has reports whether all bits of g are set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	s := ""
	add := func(name string) {
		if s != "" {
			s += "|"
		}
		s += name
	}
	for _, b := range []struct {
		f    Flags
		name string
	}{{FlagReady, "ready"}, {FlagMaintenance, "maintenance"}, {FlagWantMaster, "want_master"}, {FlagDegraded, "degraded"}} {
		if f.Has(b.f) {
			add(b.name)
			f &^= b.f
		}
	}
	if f != 0 {
		add(fmt.Sprintf("0x%02x", uint8(f)))
	}
	return s
}

// Config sets one node's election parameters. Durations are simulated time:
// the machine only ever compares them with the times it is given.
type Config struct {
	Node         string        // this node's name; unique in the cluster
	Priority     int           // configured priority, 1..255
	Peers        int           // number of configured peers: ends the start-up wait early once all were heard, and with two or more sets the quorum (see Quorum)
	Interval     time.Duration // heartbeat period
	DeadAfter    time.Duration // silence after which a peer is dead; also the start-up listening time
	Preempt      bool          // an outranking backup may take the VIP back (by handover)
	PreemptDelay time.Duration // how long the preempting node must have outranked the master first
	HoldDown     time.Duration // after losing mastership, no preemption for this long
	Refresh      time.Duration // how often the master renews the VIP's kernel lifetime
	YieldTimeout time.Duration // after releasing the VIP for a target, how long to wait for it to claim

	// Witness: a lease the master must hold (see package witness). Zero
	// values turn it off.
	Witness       bool
	LeaseGuard    time.Duration // the VIP may be refreshed (or claimed) only while the lease outlasts now by this much: VIP lifetime + kernel slack
	LeaseRenew    time.Duration // how often the master renews the lease
	LeaseRetry    time.Duration // how often a standby that wants to claim retries to acquire it
	WitnessBypass bool          // policy "available": when the witness is unreachable, claim on heartbeats alone
}

// Cause is why a transition (or a release or an announcement) happened,
// as a small fixed set: the daemon labels metrics with it. The Action's
// Reason carries the human sentence with names and numbers.
type Cause uint8

// The causes. Their labels are metric label values: never change one.
const (
	CauseNone        Cause = iota
	CauseStarted           // the start-up listening period ended
	CauseStopping          // clean shutdown
	CauseNoMaster          // no master heard and we rank highest
	CauseReleased          // a peer released the VIP to us
	CauseHandover          // an operator's handover to a named peer
	CausePreempted         // an outranking peer asked for the VIP
	CauseLinkDown          // our link went down
	CauseCheck             // a fault check fails
	CauseMaintenance       // maintenance on
	CauseRecovered         // out of FAULT or MAINTENANCE
	CauseSplitBrain        // two masters met; the lower steps down, the higher re-announces
	CauseStalled           // our loop stalled for longer than dead_after
	CauseWitness           // the witness lease is held by another node
	CauseSelfFenced        // the witness lease could not be renewed in time
	CauseDegraded          // every node fails its checks: the best one whose link is up holds the VIP
	CauseQuorum            // three or more nodes, and we lost contact with a majority of them
)

var causeLabels = [...]string{"none", "started", "stopping", "no master", "released", "handover", "preempted",
	"link down", "check", "maintenance", "recovered", "split brain", "stalled", "witness", "self-fenced", "degraded", "quorum lost"}

// Causes lists every cause, for metrics that pre-create their series.
func Causes() []Cause {
	out := make([]Cause, 0, len(causeLabels)-1)
	for c := CauseStarted; int(c) < len(causeLabels); c++ {
		out = append(out, c)
	}
	return out
}

// String returns the cause's stable label ("no master", "split brain", ...).
func (c Cause) String() string {
	if int(c) < len(causeLabels) {
		return causeLabels[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// LeaseOp is a witness operation.
type LeaseOp uint8

// Witness operations.
const (
	LeaseAcquire LeaseOp = iota + 1
	LeaseRenew
	LeaseRelease
)

func (o LeaseOp) String() string {
	switch o {
	case LeaseAcquire:
		return "acquire"
	case LeaseRenew:
		return "renew"
	case LeaseRelease:
		return "release"
	}
	return fmt.Sprintf("LeaseOp(%d)", uint8(o))
}

// LeaseReply is the outcome of an ActLease, fed back with LeaseResult.
type LeaseReply struct {
	Op          LeaseOp
	Won         bool      // we hold the lease
	Holder      string    // when lost: who holds it ("" if nobody)
	ValidUntil  time.Time // when won: until when we may believe we hold it
	Unreachable bool      // the witness did not answer
}

// Advert is what this node says about itself in its frames.
type Advert struct {
	State    State
	Priority int
	Epoch    uint64
	Flags    Flags
	Target   string // the node a yielding master released the VIP for
}

// Heard is a verified frame from a peer, as the core needs it.
type Heard struct {
	Node string
	Kind Kind
	Advert
}

// ActionKind names what the caller must do.
type ActionKind uint8

// The actions.
const (
	ActClaim    ActionKind = iota + 1 // add the VIPs and start the announcement burst
	ActRelease                        // delete the VIPs
	ActRefresh                        // renew the VIPs' kernel lifetime (re-add if missing)
	ActAnnounce                       // send the announcement burst again (after a split brain heals)
	ActSend                           // send a frame of Kind now, carrying the current Advert
	ActNotify                         // a transition happened: log it and run the notify hooks
	ActLease                          // ask the witness: Lease op, for Epoch; answer with LeaseResult
)

var actionNames = [...]string{"", "claim", "release", "refresh", "announce", "send", "notify", "lease"}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// Action is one thing the caller must do, in order.
type Action struct {
	Kind  ActionKind
	Frame Kind // for ActSend
	// Periodic marks an ActSend that is only the regular beat (nothing
	// changed): a caller may send it on its cheap path alone.
	Periodic bool
	Target   string // for ActSend of Released
	From     State  // for ActNotify
	To       State  // for ActNotify
	Epoch    uint64 // for ActClaim and ActNotify
	Cause    Cause  // for ActNotify, ActClaim, ActRelease and ActAnnounce: why, as a fixed label
	Reason   string // the same, as a sentence for logs and hooks
	// Handoff marks an ActRelease that hands the VIP to a named peer (a
	// planned handover or a preemption): the caller may keep accepting
	// packets already on their way for a moment, without holding or
	// announcing the VIP.
	Handoff bool
	// Lease is the witness operation of an ActLease.
	Lease LeaseOp
	// Bypass marks an ActClaim made without the witness lease because the
	// witness was unreachable and the policy is "available".
	Bypass bool
}

func (a Action) String() string {
	switch a.Kind {
	case ActSend:
		if a.Target != "" {
			return fmt.Sprintf("send(%d→%s)", a.Frame, a.Target)
		}
		return fmt.Sprintf("send(%d)", a.Frame)
	case ActNotify:
		return fmt.Sprintf("notify(%s→%s: %s)", a.From, a.To, a.Cause)
	}
	return a.Kind.String()
}

// PeerStatus is the core's view of one peer, for `hbd status`.
type PeerStatus struct {
	Node      string
	Alive     bool
	LastHeard time.Time
	Advert
}

// Status is the core's view of itself, for `hbd status`.
type Status struct {
	Node              string
	State             State
	Epoch             uint64
	Priority          int // configured
	EffectivePriority int
	Penalties         map[string]int // failing weight checks: name → weight
	Faults            []string       // why the node is in FAULT, if it is (or why a degraded master is degraded)
	Degraded          bool           // only fault checks fail and the link is up: may hold the VIP when no healthy node can
	LinkUp            bool
	HoldDownUntil     time.Time // no preemption before this (flap damping)
	Ready             bool
	LastTransition    time.Time
	LastCause         Cause
	LastReason        string
	YieldingTo        string
	Peers             []PeerStatus
	Witness           bool      // a witness is configured
	LeaseUntil        time.Time // our belief in the lease; zero if we hold none
	WitnessDown       bool      // the last witness call got no answer
	Quorum            Quorum
}

// Quorum is the majority rule's view at one instant. With three or more
// nodes (Size ≥ 3) a node may claim and keep the VIP only while Have ≥
// Need; with one or two nodes Need is 0 and the rule is off (the witness,
// or the heartbeats alone, decide).
type Quorum struct {
	Size int // nodes in the cluster, this one included
	Need int // nodes a majority needs: Size/2+1; 0 when the rule is off
	Have int // this node plus the live peers
}

// Held reports whether the rule lets this node hold the VIP.
func (q Quorum) Held() bool { return q.Have >= q.Need }

// QuorumOf returns the majority a cluster of size nodes needs, or 0 when
// the rule does not apply (one or two nodes).
func QuorumOf(size int) int {
	if size < 3 {
		return 0
	}
	return size/2 + 1
}
