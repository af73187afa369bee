package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"sync"
	"sync/atomic"
)

const (
	// replayWindow is how many sequence numbers below the newest accepted
	// one a Receiver remembers per node (one bit each, as in the IPsec
	// anti-replay window, RFC 4303 section 3.4.3). Within it an old frame
	// is told apart as a duplicate (seen before: the same frame over the
	// other path) or stale (not seen: overtaken on the other path); older
	// than it is a replay. 64 frames is 6.4 s at a 100 ms interval, far
	// longer than the TCP path may lag behind UDP before its connection is
	// dropped (TCP_USER_TIMEOUT, about a second).
	replayWindow = 64
	// maxRetiredBoots is how many earlier boot ids of each node a Receiver
	// remembers, to reject frames captured in an earlier life of the node
	// and sent again.
	maxRetiredBoots = 4
)

// Receiver turns raw frames into accepted Frames: it checks the structure,
// the cluster id, the tag, that the frame is not our own, and that it is
// neither a replay nor a duplicate, and counts every outcome by reason.
//
// Replay rules, per sender node name: frames of the node's current boot must
// carry a sequence number above the highest accepted one. A frame from
// another boot id is accepted (and starts a new window) only if its SentAt
// is later than the SentAt of the last frame accepted from that node (the
// sender's clock compared with itself, so the clocks of the two hosts need
// not agree); the boot it replaces is retired and frames from retired boots
// are rejected. The first frame from a node that the Receiver has never
// seen is accepted as it comes: a Receiver's memory is its process's life.
//
// A consequence to know when operating it: if a node's wall clock is set
// back and the node restarts, its new boot is rejected as replay until its
// clock passes the last SentAt this Receiver accepted from it.
//
// Receiver is safe for concurrent use; Accept serializes on a mutex (it is
// called from both the UDP and the TCP reader goroutines).
type Receiver struct {
	cluster uint32
	self    string
	key     []byte

	mu    sync.Mutex
	mac   hash.Hash // guarded by mu
	nodes map[string]*window

	counts [numCounts]atomic.Uint64
}

// window is the replay state of one sender node.
type window struct {
	boot     uint64
	highest  uint64 // highest accepted sequence number of boot
	seen     uint64 // bit i: sequence highest-i has been seen
	lastSent int64  // SentAt (unix ns) of the last frame accepted from the node
	retired  [maxRetiredBoots]uint64
	nRetired int // valid entries in retired
	nextRet  int // slot the next retired boot overwrites
}

func (w *window) isRetired(boot uint64) bool {
	for _, b := range w.retired[:w.nRetired] {
		if b == boot {
			return true
		}
	}
	return false
}

func (w *window) retire(boot uint64) {
	w.retired[w.nextRet] = boot
	w.nextRet = (w.nextRet + 1) % maxRetiredBoots
	w.nRetired = min(w.nRetired+1, maxRetiredBoots)
}

// countAccepted indexes the "accepted" counter after the reasons.
var countAccepted = len(reasons)

const numCounts = 12 // len(reasons) + 1, checked in init

func init() {
	if numCounts != len(reasons)+1 {
		panic("heartbeat: numCounts out of date")
	}
}

// NewReceiver returns a Receiver for frames of cluster, authenticated with
// key, that rejects frames carrying the node name self. The key is copied.
// An empty key makes every frame fail with ErrBadTag; the config should
// insist on MinKeyLen bytes.
func NewReceiver(key []byte, cluster uint32, self string) *Receiver {
	k := append([]byte(nil), key...)
	return &Receiver{
		cluster: cluster,
		self:    self,
		key:     k,
		mac:     hmac.New(sha256.New, k),
		nodes:   make(map[string]*window),
	}
}

// Accept checks the frame b received from the given address and returns it
// decoded, or an error wrapping one of ErrTruncated, ErrBadMagic, ErrVersion,
// ErrMalformed, ErrCluster, ErrBadTag, ErrSelf, ErrDuplicate, ErrStale or
// ErrReplay. The address is only used in error messages: the transports
// have already dropped sources that are not configured peers.
//
// ErrDuplicate (a frame already seen, normally the same frame delivered by
// the second path) and ErrStale (an older frame not seen before, overtaken
// on the other path) are expected in normal operation; ErrReplay, ErrBadTag
// and ErrSelf are worth an alert.
//
// With ErrDuplicate and ErrStale the authentic frame is returned too, so a
// caller can note that the path it came by works.
//
// Accept does not retain b.
func (r *Receiver) Accept(b []byte, from netip.AddrPort) (Frame, error) {
	f, err := r.accept(b)
	if err != nil {
		r.counts[reasonIndex(err)].Add(1)
		if !errors.Is(err, ErrDuplicate) && !errors.Is(err, ErrStale) {
			f = Frame{}
		}
		return f, fmt.Errorf("%w (from %v)", err, from)
	}
	r.counts[countAccepted].Add(1)
	return f, nil
}

// reasonIndex returns the counter slot of err's sentinel.
func reasonIndex(err error) int {
	for i, r := range reasons {
		if errors.Is(err, r.err) {
			return i
		}
	}
	panic(fmt.Sprintf("heartbeat: Receiver produced an error without a reason: %v", err))
}

func (r *Receiver) accept(b []byte) (Frame, error) {
	f, err := parse(b)
	if err != nil {
		return Frame{}, err
	}
	// The cluster id is checked before the tag so that two clusters sharing
	// a network (and a port) show up as "cluster", not as forgeries, when
	// their keys differ.
	if f.Cluster != r.cluster {
		return Frame{}, fmt.Errorf("%w: %d, want %d", ErrCluster, f.Cluster, r.cluster)
	}

	r.mu.Lock()
	defer r.mu.Unlock()

	if len(r.key) == 0 {
		return Frame{}, fmt.Errorf("%w: empty key", ErrBadTag)
	}
	r.mac.Reset()
	if err := verifyWith(r.mac, b); err != nil {
		return Frame{}, fmt.Errorf("%w: node %q", err, f.Node)
	}
	if f.Node == r.self {
		return Frame{}, fmt.Errorf("%w: %q", ErrSelf, f.Node)
	}
	return f, r.checkReplay(&f)
}

// checkReplay applies the replay rules to an authenticated frame and, if it
// is accepted, records it. r.mu must be held.
func (r *Receiver) checkReplay(f *Frame) error {
	sent := f.sentNanos()
	w := r.nodes[f.Node]
	if w == nil {
		r.nodes[f.Node] = &window{boot: f.Boot, highest: f.Seq, seen: 1, lastSent: sent}
		return nil
	}
	if f.Boot != w.boot {
		if w.isRetired(f.Boot) {
			return fmt.Errorf("%w: node %q boot %016x is retired", ErrReplay, f.Node, f.Boot)
		}
		if sent <= w.lastSent {
			return fmt.Errorf("%w: node %q new boot %016x sent at %d, not after %d",
				ErrReplay, f.Node, f.Boot, sent, w.lastSent)
		}
		w.retire(w.boot)
		w.boot, w.highest, w.seen, w.lastSent = f.Boot, f.Seq, 1, sent
		return nil
	}
	switch {
	case f.Seq > w.highest:
		if d := f.Seq - w.highest; d >= replayWindow {
			w.seen = 1
		} else {
			w.seen = w.seen<<d | 1
		}
		w.highest, w.lastSent = f.Seq, sent
		return nil
	case w.highest-f.Seq >= replayWindow:
		return fmt.Errorf("%w: node %q seq %d, newest %d", ErrReplay, f.Node, f.Seq, w.highest)
	}
	bit := uint64(1) << (w.highest - f.Seq)
	if w.seen&bit != 0 {
		return fmt.Errorf("%w: node %q seq %d", ErrDuplicate, f.Node, f.Seq)
	}
	w.seen |= bit
	return fmt.Errorf("%w: node %q seq %d, newest %d", ErrStale, f.Node, f.Seq, w.highest)
}

// Stats returns how many frames Accept took ("accepted") and rejected, by
// Reason label. Every label is present, zero or not, so the caller can
// export a complete metric family. Safe for concurrent use.
func (r *Receiver) Stats() map[string]uint64 {
	m := make(map[string]uint64, numCounts)
	for i, rs := range reasons {
		m[rs.name] = r.counts[i].Load()
	}
	m["accepted"] = r.counts[countAccepted].Load()
	return m
}
