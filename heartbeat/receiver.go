package heartbeat

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// replayWindow is how many sequence numbers below the newest accepted
	// one a Receiver remembers per session (one bit each, as in the IPsec
	// anti-replay window, RFC 4303 section 3.4.3). Within it an old frame
	// is told apart as a duplicate (seen before: the same frame over the
	// other path) or stale (not seen: overtaken on the other path); older
	// than it is a replay. It must cover the longest a path can hold a
	// frame, so that no genuine frame is ever counted as a replay: at the
	// shortest interval (5ms) 4096 frames are 20 s, against at most a few
	// seconds on the TCP path (MaxTCPHold).
	replayWindow = 4096
	// maxRetiredBoots is how many earlier boot ids of each node a Receiver
	// remembers, to reject frames captured in an earlier life of the node
	// and sent again at once as replays. Older boots are caught anyway:
	// they never echo a current challenge.
	maxRetiredBoots = 16
)

// MaxTCPHold bounds how long a frame can spend on the TCP path with the
// default TCPOptions: waiting in the sender's queue behind frames each
// allowed WriteTimeout, then in the kernel until TCP_USER_TIMEOUT drops the
// connection, then in the receiver's loop. replayWindow × the shortest
// interval must exceed it (TestReplayWindowCoversTCP).
const MaxTCPHold = 4*500*time.Millisecond + time.Second + time.Second

// Receiver turns raw frames into accepted Frames: it checks the structure,
// the cluster id, the tag, that the frame is not our own, that it belongs
// to a live session and that it is neither a replay nor a duplicate, and
// counts every outcome by reason.
//
// Sessions, per sender node name. A frame counts only inside a session: a
// pair of (sender boot, our challenge). The first authentic frame of a
// boot we have no session with starts a tentative session: we draw a
// random challenge for that boot, and Sessions puts it in our frames. The
// session completes when a frame of that boot echoes the challenge (and
// carries the challenge it gives us, which our frames echo in turn); from
// then on that boot's frames must echo it to count. Until then the frame
// is rejected with ErrNoSession and any earlier established session keeps
// working. A frame recorded in an earlier life of either node echoes a
// challenge that no longer exists, so it can start a tentative session but
// never complete one. Only one tentative session per node is kept: a frame
// of another boot replaces it only if it was sent later (by the sender's
// own clock), so recordings never displace a live peer that is completing
// its session.
//
// Within a session, frames must carry a sequence number above the highest
// accepted one, or one within the replay window not seen before.
//
// Receiver is safe for concurrent use; Accept serializes on a mutex (it is
// called from both the UDP and the TCP reader goroutines).
type Receiver struct {
	cluster uint32
	self    string
	boot    uint64 // our own boot id: frames address us by it
	key     []byte

	mu    sync.Mutex
	mac   hash.Hash // guarded by mu
	nodes map[string]*peerState

	counts [numCounts]atomic.Uint64
}

// peerState is the session state of one sender node.
type peerState struct {
	est      *session // established: its frames count; nil before the first
	tent     *session // tentative: waiting for an echo of chal; nil if none
	retired  [maxRetiredBoots]uint64
	nRetired int // valid entries in retired
	nextRet  int // slot the next retired boot overwrites
}

// session is one (sender boot, our challenge) pair.
type session struct {
	boot   uint64
	chal   uint64 // our challenge: the boot's frames must echo it
	theirs uint64 // the boot's challenge to us, which our frames echo
	sent   int64  // latest SentAt (unix ns) of the boot's frames (tentative)

	// The replay window (established sessions): bit s%replayWindow of
	// seen is set once sequence number s, within the window below
	// highest, has been accepted.
	highest uint64
	seen    *[replayWindow / 64]uint64
}

func (p *peerState) isRetired(boot uint64) bool {
	for _, b := range p.retired[:p.nRetired] {
		if b == boot {
			return true
		}
	}
	return false
}

func (p *peerState) retire(boot uint64) {
	p.retired[p.nextRet] = boot
	p.nextRet = (p.nextRet + 1) % maxRetiredBoots
	p.nRetired = min(p.nRetired+1, maxRetiredBoots)
}

// countAccepted indexes the "accepted" counter after the reasons.
var countAccepted = len(reasons)

const numCounts = 13 // len(reasons) + 1, checked in init

func init() {
	if numCounts != len(reasons)+1 {
		panic("heartbeat: numCounts out of date")
	}
}

// NewReceiver returns a Receiver for frames of cluster, authenticated with
// key, that rejects frames carrying the node name self. boot is this
// node's own boot id (the Boot of the frames it sends): peers address
// their sessions with us by it. The key is copied. An empty key makes
// every frame fail with ErrBadTag; the config should insist on MinKeyLen
// bytes.
func NewReceiver(key []byte, cluster uint32, self string, boot uint64) *Receiver {
	k := append([]byte(nil), key...)
	return &Receiver{
		cluster: cluster,
		self:    self,
		boot:    boot,
		key:     k,
		mac:     hmac.New(sha256.New, k),
		nodes:   make(map[string]*peerState),
	}
}

// Accept checks the frame b received from the given address and returns it
// decoded, or an error wrapping one of ErrTruncated, ErrBadMagic, ErrVersion,
// ErrMalformed, ErrCluster, ErrBadTag, ErrSelf, ErrNoSession, ErrDuplicate,
// ErrStale or ErrReplay. The address is only used in error messages: the
// transports have already dropped sources that are not configured peers.
//
// ErrDuplicate (a frame already seen, normally the same frame delivered by
// the second path) and ErrStale (an older frame not seen before, overtaken
// on the other path) are expected in normal operation, and so are a few
// ErrNoSession after either node restarts; ErrReplay, ErrBadTag, ErrSelf
// and a steady stream of ErrNoSession are worth an alert.
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
	return f, r.checkSession(&f)
}

// checkSession applies the session and replay rules to an authenticated
// frame and, if it counts, records it. r.mu must be held.
func (r *Receiver) checkSession(f *Frame) error {
	p := r.nodes[f.Node]
	if p == nil {
		if len(r.nodes) >= MaxPeers*4 {
			// Node names come only from frames signed with the cluster
			// key; bound the map all the same.
			return fmt.Errorf("%w: node %q: too many nodes", ErrNoSession, f.Node)
		}
		p = &peerState{}
		r.nodes[f.Node] = p
	}
	if p.isRetired(f.Boot) {
		return fmt.Errorf("%w: node %q boot %016x is retired", ErrReplay, f.Node, f.Boot)
	}
	entry, addressed := f.sessionFor(r.boot)
	if s := p.est; s != nil && f.Boot == s.boot {
		if !addressed || entry.Echo != s.chal {
			return fmt.Errorf("%w: node %q boot %016x seq %d does not echo our challenge", ErrNoSession, f.Node, f.Boot, f.Seq)
		}
		if err := s.checkSeq(f); err != nil {
			return err
		}
		s.theirs = entry.Challenge
		return nil
	}
	sent := f.sentNanos()
	if s := p.tent; s != nil && f.Boot == s.boot {
		s.sent = max(s.sent, sent)
		if addressed {
			s.theirs = entry.Challenge
		}
		if !addressed || entry.Echo != s.chal {
			return fmt.Errorf("%w: node %q boot %016x: waiting for the echo of our challenge", ErrNoSession, f.Node, f.Boot)
		}
		if p.est != nil {
			p.retire(p.est.boot)
		}
		s.highest, s.seen = f.Seq, new([replayWindow / 64]uint64)
		s.mark(f.Seq)
		p.est, p.tent = s, nil
		return nil
	}
	// A boot we have no session with: challenge it, unless a later-sent
	// boot is already completing its session.
	if p.tent == nil || sent > p.tent.sent {
		s := &session{boot: f.Boot, chal: newChallenge(), sent: sent}
		if addressed {
			s.theirs = entry.Challenge
		}
		p.tent = s
	}
	return fmt.Errorf("%w: node %q boot %016x has no session with us yet", ErrNoSession, f.Node, f.Boot)
}

// checkSeq applies the replay window of an established session and records
// f's sequence number if it is new.
func (s *session) checkSeq(f *Frame) error {
	switch {
	case f.Seq > s.highest:
		if f.Seq-s.highest >= replayWindow {
			clear(s.seen[:])
		} else {
			for q := s.highest + 1; q < f.Seq; q++ {
				s.seen[q%replayWindow/64] &^= 1 << (q % 64)
			}
		}
		s.highest = f.Seq
		s.mark(f.Seq)
		return nil
	case s.highest-f.Seq >= replayWindow:
		return fmt.Errorf("%w: node %q seq %d, newest %d", ErrReplay, f.Node, f.Seq, s.highest)
	}
	if s.has(f.Seq) {
		return fmt.Errorf("%w: node %q seq %d", ErrDuplicate, f.Node, f.Seq)
	}
	s.mark(f.Seq)
	return fmt.Errorf("%w: node %q seq %d, newest %d", ErrStale, f.Node, f.Seq, s.highest)
}

func (s *session) mark(q uint64)     { s.seen[q%replayWindow/64] |= 1 << (q % 64) }
func (s *session) has(q uint64) bool { return s.seen[q%replayWindow/64]&(1<<(q%64)) != 0 }

// newChallenge returns a random, non-zero challenge.
func newChallenge() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("heartbeat: no randomness for a challenge: " + err.Error())
		}
		if c := binary.BigEndian.Uint64(b[:]); c != 0 {
			return c
		}
	}
}

// Sessions appends to dst the session entries our frames must carry: for
// every peer node, its established session and its tentative one, each
// with our challenge and the echo of theirs. Established sessions come
// first, so that a frame cut to MaxSessions keeps the live ones. Safe for
// concurrent use.
func (r *Receiver) Sessions(dst []Session) []Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.nodes))
	for n := range r.nodes {
		names = append(names, n)
	}
	slices.Sort(names)
	start := len(dst)
	for _, tent := range []bool{false, true} {
		for _, n := range names {
			s := r.nodes[n].est
			if tent {
				s = r.nodes[n].tent
			}
			if s != nil && len(dst)-start < MaxSessions {
				dst = append(dst, Session{PeerBoot: s.boot, Challenge: s.chal, Echo: s.theirs})
			}
		}
	}
	return dst
}

// Established reports whether node has an established session with us.
func (r *Receiver) Established(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.nodes[node]
	return p != nil && p.est != nil
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
