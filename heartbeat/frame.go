package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"
	"unicode/utf8"

	"github.com/hbdproject/hbd/heartbeat/election"
)

// Wire format, version 2. All integers are big-endian.
//
//	off len field
//	  0   2 magic "HB"
//	  2   1 version (1)
//	  3   1 kind
//	  4   4 cluster id
//	  8   1 flags
//	  9   1 state
//	 10   1 effective priority
//	 11   8 boot id
//	 19   8 sequence
//	 27   8 epoch
//	 35   8 sent time, unix nanoseconds (0 = unset)
//	 43   1 node name length n (1..64)
//	 44   n node name, UTF-8
//	      1 target name length m (0..64)
//	      m target name, UTF-8
//	      1 session count k (0..MaxSessions)
//	   24×k sessions, each: peer boot id (8), our challenge to that
//	        boot (8), the challenge that boot gave us, echoed (8; 0 = none)
//	        version 3 only, the VIP groups:
//	      1 group count g (1..MaxGroups)
//	        g groups, in ascending id order, each: id (1, 1..255),
//	        flags (1), state (1), effective priority (1), epoch (8),
//	        target name length (1, 0..64), target name
//	     16 HMAC-SHA256(key, everything before it), first 16 bytes
//
// Version 3 is version 2 plus the group block: a frame with groups is
// encoded as version 3, one without as version 2, byte for byte what a
// version 2 node sends, so that clusters without groups keep talking to
// older nodes during a rolling update. Version 1 had no sessions; a
// version 1 frame fails with ErrVersion.
const (
	// Version is the wire format version of a frame without groups.
	Version = 2
	// VersionGroups is the wire format version of a frame with groups.
	VersionGroups = 3
	// MaxGroups is the most VIP groups a frame carries.
	MaxGroups = 8
	// groupFixed is the encoded size of a group entry without its
	// target name: id, flags, state, priority, epoch, target length.
	groupFixed = 13
	// MaxSessions is the most session entries a frame carries: two (the
	// established session and a tentative one) for each of up to
	// MaxPeers peers.
	MaxSessions = 2 * MaxPeers
	// MaxPeers is the most peers a node can keep sessions with.
	MaxPeers = 8
	// sessionSize is the encoded size of one Session.
	sessionSize = 24
	// MaxNameLen is the longest node or target name in bytes.
	MaxNameLen = 64
	// TagSize is the length of the truncated HMAC-SHA256 tag (128 bits).
	TagSize = 16
	// MaxFrameSize bounds an encoded frame; the largest valid frame is
	// headerSize+1+64+1+64+1+16×24+1+8×(13+64)+TagSize = 1191 bytes.
	// Transports drop anything bigger unread.
	MaxFrameSize = 1192
	// MinKeyLen is the shortest cluster key the config should accept; the
	// package itself only refuses an empty key.
	MinKeyLen = 16

	magic0, magic1 = 'H', 'B'
	headerSize     = 43
	// minFrameSize: header, a one-byte node name, an empty target, no
	// sessions, the tag.
	minFrameSize = headerSize + 1 + 1 + 1 + 1 + TagSize
)

// Frame is one decoded heartbeat message. The zero value is not a valid
// frame: Kind and Node must be set.
type Frame struct {
	Kind     election.Kind
	Cluster  uint32 // config cluster_id, like VRRP's virtual_router_id
	Flags    election.Flags
	State    election.State // the sender's election state
	Priority uint8          // effective priority
	Boot     uint64
	Seq      uint64
	Epoch    uint64
	// SentAt is the sender's wall clock, carried as int64 unix nanoseconds.
	// The zero time encodes as 0 and 0 decodes as the zero time; any other
	// time must lie within the int64 nanosecond range (years 1678..2262).
	// Only the instant survives a round trip: compare with Equal, not ==.
	SentAt time.Time
	Node   string // sender's node name, 1..64 bytes of UTF-8
	Target string // election.Released: the node the VIP was released for; 0..64 bytes
	// Groups are the sender's VIP groups (at most MaxGroups, ids
	// ascending), each with its own election state; nil for a node
	// without groups, whose one election is the frame's own State,
	// Priority, Epoch, Flags and Target. Kind is the frame's: a Bye ends
	// every group, and a Released frame names its target in the group
	// entry that released.
	Groups []Group
	// Sessions are the sender's sessions with its peers' boots (at most
	// MaxSessions): each names a peer boot, the challenge the sender gave
	// it and the challenge it gave the sender. A receiver counts the frame
	// only if it echoes the receiver's current challenge (see Receiver).
	Sessions []Session
}

// Group is one VIP group's election state in a frame.
type Group struct {
	ID       uint8 // the group's id, 1..255, the same on every node
	Flags    election.Flags
	State    election.State
	Priority uint8 // effective priority in this group
	Epoch    uint64
	Target   string // the node this group's VIPs were released for; 0..64 bytes
}

// Session is one entry of a frame's session list, as seen by the sender.
type Session struct {
	PeerBoot  uint64 // the boot id of the peer this entry is for
	Challenge uint64 // the sender's challenge to that boot: its frames must echo it
	Echo      uint64 // the challenge that boot gave the sender; 0 while unknown
}

// sessionFor returns the entry addressed to boot, if any.
func (f *Frame) sessionFor(boot uint64) (Session, bool) {
	for _, s := range f.Sessions {
		if s.PeerBoot == boot {
			return s, true
		}
	}
	return Session{}, false
}

// Sentinel errors. Returned errors wrap them with detail; branch with
// errors.Is and label metrics with Reason.
var (
	ErrTruncated   = errors.New("heartbeat: truncated frame")
	ErrBadMagic    = errors.New("heartbeat: bad magic")
	ErrVersion     = errors.New("heartbeat: unsupported version")
	ErrMalformed   = errors.New("heartbeat: malformed frame")
	ErrBadTag      = errors.New("heartbeat: bad authentication tag")
	ErrCluster     = errors.New("heartbeat: wrong cluster id")
	ErrSelf        = errors.New("heartbeat: frame carries our own node name")
	ErrReplay      = errors.New("heartbeat: replayed frame")
	ErrNoSession   = errors.New("heartbeat: frame outside a live session")
	ErrDuplicate   = errors.New("heartbeat: duplicate frame")
	ErrStale       = errors.New("heartbeat: stale frame")
	ErrUnknownPeer = errors.New("heartbeat: source is not a configured peer")
)

// reasons lists every sentinel with its metrics label, in the order Reason
// tests them. The label strings are a stable interface (dashboards, alerts).
var reasons = []struct {
	err  error
	name string
}{
	{ErrTruncated, "truncated"},
	{ErrBadMagic, "bad_magic"},
	{ErrVersion, "version"},
	{ErrMalformed, "malformed"},
	{ErrBadTag, "bad_tag"},
	{ErrCluster, "cluster"},
	{ErrSelf, "self"},
	{ErrReplay, "replay"},
	{ErrNoSession, "no_session"},
	{ErrDuplicate, "duplicate"},
	{ErrStale, "stale"},
	{ErrUnknownPeer, "unknown_peer"},
}

// Reason returns the stable, short metrics label of err: "truncated",
// "bad_magic", "version", "malformed", "bad_tag", "cluster", "self",
// "replay", "no_session", "duplicate", "stale", "unknown_peer"; "other" for any other
// error and "" for nil.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "other"
}

func checkName(what, s string, min int) error {
	if len(s) < min || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s name length %d not in %d..%d", ErrMalformed, what, len(s), min, MaxNameLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s name is not valid UTF-8", ErrMalformed, what)
	}
	return nil
}

// Validate reports whether f can be encoded: a known kind, a node name of
// 1..64 bytes and a target of 0..64 bytes, both valid UTF-8.
func (f *Frame) Validate() error {
	if !f.Kind.Valid() {
		return fmt.Errorf("%w: unknown %v", ErrMalformed, f.Kind)
	}
	if err := checkName("node", f.Node, 1); err != nil {
		return err
	}
	if len(f.Sessions) > MaxSessions {
		return fmt.Errorf("%w: %d sessions, at most %d", ErrMalformed, len(f.Sessions), MaxSessions)
	}
	if len(f.Groups) > MaxGroups {
		return fmt.Errorf("%w: %d groups, at most %d", ErrMalformed, len(f.Groups), MaxGroups)
	}
	for i, g := range f.Groups {
		if g.ID == 0 || (i > 0 && g.ID <= f.Groups[i-1].ID) {
			return fmt.Errorf("%w: group ids must be 1..255 in ascending order, without repeats", ErrMalformed)
		}
		if err := checkName("group target", g.Target, 0); err != nil {
			return err
		}
	}
	return checkName("target", f.Target, 0)
}

func (f *Frame) sentNanos() int64 {
	if f.SentAt.IsZero() {
		return 0
	}
	return f.SentAt.UnixNano()
}

// appendBody appends the unsigned encoding of f (everything the tag covers).
// f must be valid.
func (f *Frame) appendBody(dst []byte) []byte {
	version := byte(Version)
	if len(f.Groups) > 0 {
		version = VersionGroups
	}
	dst = append(dst, magic0, magic1, version, byte(f.Kind))
	dst = binary.BigEndian.AppendUint32(dst, f.Cluster)
	dst = append(dst, byte(f.Flags), byte(f.State), f.Priority)
	dst = binary.BigEndian.AppendUint64(dst, f.Boot)
	dst = binary.BigEndian.AppendUint64(dst, f.Seq)
	dst = binary.BigEndian.AppendUint64(dst, f.Epoch)
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.sentNanos()))
	dst = append(dst, byte(len(f.Node)))
	dst = append(dst, f.Node...)
	dst = append(dst, byte(len(f.Target)))
	dst = append(dst, f.Target...)
	dst = append(dst, byte(len(f.Sessions)))
	for _, s := range f.Sessions {
		dst = binary.BigEndian.AppendUint64(dst, s.PeerBoot)
		dst = binary.BigEndian.AppendUint64(dst, s.Challenge)
		dst = binary.BigEndian.AppendUint64(dst, s.Echo)
	}
	if len(f.Groups) > 0 {
		dst = append(dst, byte(len(f.Groups)))
		for _, g := range f.Groups {
			dst = append(dst, g.ID, byte(g.Flags), byte(g.State), g.Priority)
			dst = binary.BigEndian.AppendUint64(dst, g.Epoch)
			dst = append(dst, byte(len(g.Target)))
			dst = append(dst, g.Target...)
		}
	}
	return dst
}

// AppendSigned appends the encoded frame, authenticated with key, to dst and
// returns the extended slice. It fails if f does not Validate or key is
// empty. It is safe for concurrent use as long as f is not being modified.
func (f *Frame) AppendSigned(dst, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return dst, errors.New("heartbeat: signing frame: empty key")
	}
	if err := f.Validate(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = f.appendBody(dst)
	mac := hmac.New(sha256.New, key)
	mac.Write(dst[start:])
	var sum [sha256.Size]byte
	return append(dst, mac.Sum(sum[:0])[:TagSize]...), nil
}

// Marshal returns the encoded frame authenticated with key.
func (f *Frame) Marshal(key []byte) ([]byte, error) {
	return f.AppendSigned(make([]byte, 0, MaxFrameSize), key)
}

// Unmarshal parses b and verifies its tag with key (in constant time). It
// does not check the cluster id or replay: that is Receiver's job. The
// returned frame does not alias b.
func Unmarshal(b, key []byte) (Frame, error) {
	f, err := parse(b)
	if err != nil {
		return Frame{}, err
	}
	if err := verify(b, key); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// verify checks the tag at the end of b, which parse has accepted.
func verify(b, key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrBadTag)
	}
	mac := hmac.New(sha256.New, key)
	return verifyWith(mac, b)
}

// verifyWith checks the tag at the end of b with a fresh or Reset mac.
func verifyWith(mac hash.Hash, b []byte) error {
	body, tag := b[:len(b)-TagSize], b[len(b)-TagSize:]
	mac.Write(body)
	var sum [sha256.Size]byte
	if !hmac.Equal(mac.Sum(sum[:0])[:TagSize], tag) {
		return ErrBadTag
	}
	return nil
}

// parse decodes the structure of b without verifying the tag. Every length
// is checked and b must end exactly after the tag, so a frame that parses
// re-encodes to the same bytes.
func parse(b []byte) (Frame, error) {
	if len(b) < minFrameSize {
		if len(b) >= 2 && (b[0] != magic0 || b[1] != magic1) {
			return Frame{}, ErrBadMagic
		}
		return Frame{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrTruncated, len(b), minFrameSize)
	}
	if b[0] != magic0 || b[1] != magic1 {
		return Frame{}, ErrBadMagic
	}
	if b[2] != Version && b[2] != VersionGroups {
		return Frame{}, fmt.Errorf("%w: frame version %d, this hbd speaks versions %d and %d", ErrVersion, b[2], Version, VersionGroups)
	}
	if len(b) > MaxFrameSize {
		return Frame{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformed, len(b), MaxFrameSize)
	}
	f := Frame{
		Kind:     election.Kind(b[3]),
		Cluster:  binary.BigEndian.Uint32(b[4:]),
		Flags:    election.Flags(b[8]),
		State:    election.State(b[9]),
		Priority: b[10],
		Boot:     binary.BigEndian.Uint64(b[11:]),
		Seq:      binary.BigEndian.Uint64(b[19:]),
		Epoch:    binary.BigEndian.Uint64(b[27:]),
	}
	if !f.Kind.Valid() {
		return Frame{}, fmt.Errorf("%w: unknown %v", ErrMalformed, f.Kind)
	}
	if ns := int64(binary.BigEndian.Uint64(b[35:])); ns != 0 {
		f.SentAt = time.Unix(0, ns)
	}
	rest := b[headerSize : len(b)-TagSize]
	var err error
	if f.Node, rest, err = parseName("node", rest, 1); err != nil {
		return Frame{}, err
	}
	if f.Target, rest, err = parseName("target", rest, 0); err != nil {
		return Frame{}, err
	}
	if f.Sessions, rest, err = parseSessions(rest); err != nil {
		return Frame{}, err
	}
	if b[2] == VersionGroups {
		if f.Groups, rest, err = parseGroups(rest); err != nil {
			return Frame{}, err
		}
	}
	if len(rest) != 0 {
		return Frame{}, fmt.Errorf("%w: %d bytes between names and tag", ErrMalformed, len(rest))
	}
	return f, nil
}

func parseSessions(b []byte) ([]Session, []byte, error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("%w: no session count", ErrTruncated)
	}
	k := int(b[0])
	if k > MaxSessions {
		return nil, nil, fmt.Errorf("%w: %d sessions, at most %d", ErrMalformed, k, MaxSessions)
	}
	b = b[1:]
	if len(b) < k*sessionSize {
		return nil, nil, fmt.Errorf("%w: %d sessions need %d bytes, %d left", ErrTruncated, k, k*sessionSize, len(b))
	}
	if k == 0 {
		return nil, b, nil
	}
	ss := make([]Session, k)
	for i := range ss {
		e := b[i*sessionSize:]
		ss[i] = Session{
			PeerBoot:  binary.BigEndian.Uint64(e),
			Challenge: binary.BigEndian.Uint64(e[8:]),
			Echo:      binary.BigEndian.Uint64(e[16:]),
		}
	}
	return ss, b[k*sessionSize:], nil
}

// parseGroups decodes a version 3 frame's group block: at least one
// group (a frame without groups is version 2), ids ascending.
func parseGroups(b []byte) ([]Group, []byte, error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("%w: no group count", ErrTruncated)
	}
	g := int(b[0])
	if g < 1 || g > MaxGroups {
		return nil, nil, fmt.Errorf("%w: %d groups in a version %d frame, want 1..%d", ErrMalformed, g, VersionGroups, MaxGroups)
	}
	b = b[1:]
	gs := make([]Group, g)
	for i := range gs {
		if len(b) < groupFixed {
			return nil, nil, fmt.Errorf("%w: group %d needs %d bytes, %d left", ErrTruncated, i, groupFixed, len(b))
		}
		gs[i] = Group{ID: b[0], Flags: election.Flags(b[1]), State: election.State(b[2]), Priority: b[3], Epoch: binary.BigEndian.Uint64(b[4:])}
		if gs[i].ID == 0 || (i > 0 && gs[i].ID <= gs[i-1].ID) {
			return nil, nil, fmt.Errorf("%w: group ids must be 1..255 in ascending order, without repeats", ErrMalformed)
		}
		var err error
		if gs[i].Target, b, err = parseName("group target", b[groupFixed-1:], 0); err != nil {
			return nil, nil, err
		}
	}
	return gs, b, nil
}

func parseName(what string, b []byte, min int) (string, []byte, error) {
	if len(b) < 1 {
		return "", nil, fmt.Errorf("%w: no %s name length", ErrTruncated, what)
	}
	n := int(b[0])
	if n < min || n > MaxNameLen {
		return "", nil, fmt.Errorf("%w: %s name length %d not in %d..%d", ErrMalformed, what, n, min, MaxNameLen)
	}
	if len(b)-1 < n {
		return "", nil, fmt.Errorf("%w: %s name needs %d bytes, %d left", ErrTruncated, what, n, len(b)-1)
	}
	s := b[1 : 1+n]
	if !utf8.Valid(s) {
		return "", nil, fmt.Errorf("%w: %s name is not valid UTF-8", ErrMalformed, what)
	}
	return string(s), b[1+n:], nil
}
