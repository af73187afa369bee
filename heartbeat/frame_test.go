package heartbeat

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat/election"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func testFrame() Frame {
	return Frame{
		Kind:     election.Heartbeat,
		Cluster:  42,
		Flags:    election.FlagReady | election.FlagWantMaster,
		State:    2,
		Priority: 150,
		Boot:     0x0123456789abcdef,
		Seq:      7,
		Epoch:    3,
		SentAt:   time.Unix(1_700_000_000, 123_456_789),
		Node:     "alpha",
	}
}

func mustSign(t testing.TB, f Frame, key []byte) []byte {
	t.Helper()
	b, err := f.AppendSigned(nil, key)
	if err != nil {
		t.Fatalf("AppendSigned(%+v): %v", f, err)
	}
	return b
}

// resign replaces the tag of b (which must end with one) with a valid one,
// so that a test reaches the checks after the tag.
func resign(b, key []byte) []byte {
	body := b[:len(b)-TagSize]
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return append(append([]byte(nil), body...), mac.Sum(nil)[:TagSize]...)
}

// sameFrame compares frames field by field, SentAt by instant.
func sameFrame(a, b Frame) bool {
	if !a.SentAt.Equal(b.SentAt) {
		return false
	}
	if !slices.Equal(a.Sessions, b.Sessions) {
		return false
	}
	a.SentAt, b.SentAt = time.Time{}, time.Time{}
	a.Sessions, b.Sessions = nil, nil
	return reflect.DeepEqual(a, b)
}

func TestFrameRoundTrip(t *testing.T) {
	tests := map[string]func(*Frame){
		"heartbeat": func(*Frame) {},
		"bye":       func(f *Frame) { f.Kind = election.Bye; f.Flags = 0 },
		"released":  func(f *Frame) { f.Kind = election.Released; f.Target = "bravo" },
		"max names": func(f *Frame) {
			f.Kind = election.Released
			f.Node = strings.Repeat("n", MaxNameLen)
			f.Target = strings.Repeat("t", MaxNameLen)
		},
		"utf8 name":     func(f *Frame) { f.Node = "nœud-é" },
		"zero time":     func(f *Frame) { f.SentAt = time.Time{} },
		"pre-1970 time": func(f *Frame) { f.SentAt = time.Unix(-5, 7) },
		"max values": func(f *Frame) {
			f.Cluster, f.Flags, f.State, f.Priority = math.MaxUint32, 0xff, 0xff, 0xff
			f.Boot, f.Seq, f.Epoch = math.MaxUint64, math.MaxUint64, math.MaxUint64
			f.SentAt = time.Unix(0, math.MaxInt64)
		},
		"min time": func(f *Frame) { f.SentAt = time.Unix(0, math.MinInt64) },
		"groups": func(f *Frame) {
			f.Groups = []Group{{ID: 1, Flags: election.FlagReady, State: election.Master, Priority: 150, Epoch: 9},
				{ID: 7, State: election.Backup, Priority: 100, Epoch: 3, Target: "bravo"}}
		},
		"max groups": func(f *Frame) {
			f.Sessions = make([]Session, MaxSessions)
			f.Node, f.Target = strings.Repeat("n", MaxNameLen), strings.Repeat("t", MaxNameLen)
			for i := range MaxGroups {
				f.Groups = append(f.Groups, Group{ID: uint8(250 + i - MaxGroups), Flags: 0xff, State: 0xff, Priority: 0xff,
					Epoch: math.MaxUint64, Target: strings.Repeat("g", MaxNameLen)})
			}
		},
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			f := testFrame()
			mod(&f)
			b := mustSign(t, f, testKey)
			if len(b) > MaxFrameSize {
				t.Fatalf("encoded %d bytes, more than MaxFrameSize %d", len(b), MaxFrameSize)
			}
			got, err := Unmarshal(b, testKey)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !sameFrame(got, f) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
			}
			if f.SentAt.IsZero() != got.SentAt.IsZero() {
				t.Fatalf("SentAt zero-ness changed: %v -> %v", f.SentAt, got.SentAt)
			}
			if again := mustSign(t, got, testKey); !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
			}
		})
	}
}

func TestFrameLayout(t *testing.T) {
	f := testFrame()
	b := mustSign(t, f, testKey)
	if want := headerSize + 1 + len(f.Node) + 1 + 1 + TagSize; len(b) != want {
		t.Fatalf("len %d, want %d", len(b), want)
	}
	f.Sessions = []Session{{PeerBoot: 0x0102030405060708, Challenge: 0x1112131415161718, Echo: 0x2122232425262728}}
	bs := mustSign(t, f, testKey)
	at := headerSize + 1 + len(f.Node) + 1
	if len(bs) != len(b)+sessionSize || bs[at] != 1 ||
		!bytes.Equal(bs[at+1:at+1+sessionSize], []byte("\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18\x21\x22\x23\x24\x25\x26\x27\x28")) {
		t.Fatalf("session entry not at offset %d: % x", at, bs[at:])
	}
	f.Sessions = make([]Session, MaxSessions)
	f.Node, f.Target = strings.Repeat("n", MaxNameLen), strings.Repeat("t", MaxNameLen)
	if big := mustSign(t, f, testKey); len(big) > MaxFrameSize {
		t.Fatalf("largest frame is %d bytes, MaxFrameSize %d", len(big), MaxFrameSize)
	}
	f.Sessions = make([]Session, MaxSessions+1)
	if _, err := f.Marshal(testKey); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Marshal with %d sessions: %v", MaxSessions+1, err)
	}
	f = testFrame()
	if string(b[:2]) != "HB" || b[2] != Version || b[3] != byte(election.Heartbeat) {
		t.Fatalf("header % x", b[:4])
	}
	// Groups: version 3, the block after the sessions.
	f.Groups = []Group{{ID: 3, Flags: election.FlagReady, State: election.Master, Priority: 0x96, Epoch: 0x0102030405060708, Target: "ab"}}
	bg := mustSign(t, f, testKey)
	if bg[2] != VersionGroups || !bytes.Equal(bg[:2], b[:2]) || !bytes.Equal(bg[3:len(b)-TagSize], b[3:len(b)-TagSize]) {
		t.Fatalf("a frame with groups differs from one without beyond the version and the block: % x", bg)
	}
	if block := bg[len(b)-TagSize : len(bg)-TagSize]; !bytes.Equal(block, []byte("\x01\x03\x01\x02\x96\x01\x02\x03\x04\x05\x06\x07\x08\x02ab")) {
		t.Fatalf("group block % x", block)
	}
	f.Groups = make([]Group, MaxGroups+1)
	for i := range f.Groups {
		f.Groups[i].ID = uint8(i + 1)
	}
	if _, err := f.Marshal(testKey); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Marshal with %d groups: %v", MaxGroups+1, err)
	}
	f = testFrame()
	if string(b[:2]) != "HB" || b[2] != Version || b[3] != byte(election.Heartbeat) {
		t.Fatalf("header % x", b[:4])
	}
	if b[headerSize] != byte(len(f.Node)) || string(b[headerSize+1:headerSize+1+len(f.Node)]) != f.Node {
		t.Fatalf("node name not at offset %d: % x", headerSize, b[headerSize:])
	}
	// A dst with content is appended to, not overwritten.
	prefix := []byte("xyz")
	b2, err := f.AppendSigned(prefix, testKey)
	if err != nil || !bytes.Equal(b2[:3], prefix) || !bytes.Equal(b2[3:], b) {
		t.Fatalf("AppendSigned with prefix: %v % x", err, b2)
	}
}

func TestFrameEncodeRejects(t *testing.T) {
	tests := map[string]func(*Frame){
		"kind zero":      func(f *Frame) { f.Kind = 0 },
		"kind unknown":   func(f *Frame) { f.Kind = 4 },
		"empty node":     func(f *Frame) { f.Node = "" },
		"long node":      func(f *Frame) { f.Node = strings.Repeat("n", MaxNameLen+1) },
		"bad utf8 node":  func(f *Frame) { f.Node = "a\xffb" },
		"long target":    func(f *Frame) { f.Target = strings.Repeat("t", MaxNameLen+1) },
		"bad utf8 targt": func(f *Frame) { f.Target = "\xc0" },
	}
	for name, mod := range tests {
		t.Run(name, func(t *testing.T) {
			f := testFrame()
			mod(&f)
			if _, err := f.AppendSigned(nil, testKey); !errors.Is(err, ErrMalformed) {
				t.Fatalf("AppendSigned: %v, want ErrMalformed", err)
			}
		})
	}
	f := testFrame()
	if _, err := f.AppendSigned(nil, nil); err == nil {
		t.Fatal("AppendSigned with an empty key succeeded")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := mustSign(t, testFrame(), testKey)
	rel := testFrame()
	rel.Kind, rel.Target = election.Released, "bravo"
	goodRel := mustSign(t, rel, testKey)
	nodeOff := headerSize // the node name length byte
	grouped := testFrame()
	grouped.Groups = []Group{{ID: 2, State: election.Master, Priority: 150, Epoch: 4}, {ID: 5, State: election.Backup, Priority: 100, Target: "bravo"}}
	withGroups := mustSign(t, grouped, testKey)
	groupsOff := len(good) - TagSize // the group count byte

	edit := func(b []byte, fn func([]byte) []byte) []byte {
		return fn(append([]byte(nil), b...))
	}
	set := func(b []byte, off int, v byte) []byte {
		return edit(b, func(c []byte) []byte { c[off] = v; return c })
	}

	tests := []struct {
		name string
		b    []byte
		key  []byte
		want error
	}{
		{"empty", nil, testKey, ErrTruncated},
		{"one byte", []byte("H"), testKey, ErrTruncated},
		{"header only", good[:headerSize], testKey, ErrTruncated},
		{"cut by one", good[:len(good)-1], testKey, ErrTruncated},
		{"released cut by one", goodRel[:len(goodRel)-1], testKey, ErrTruncated},
		{"released cut in target", goodRel[:len(goodRel)-TagSize-1], testKey, ErrTruncated},
		{"bad magic", set(good, 0, 'X'), testKey, ErrBadMagic},
		{"bad magic short", []byte("XY"), testKey, ErrBadMagic},
		{"version 0", set(good, 2, 0), testKey, ErrVersion},
		{"version 1 (no sessions)", set(good, 2, 1), testKey, ErrVersion},
		{"version 4", set(good, 2, 4), testKey, ErrVersion},
		{"version 3 without groups", resign(set(good, 2, 3), testKey), testKey, ErrTruncated},
		{"version 3 with 0 groups", resign(edit(good, func(c []byte) []byte {
			c[2] = VersionGroups
			return append(c[:len(c)-TagSize:len(c)-TagSize], append([]byte{0}, c[len(c)-TagSize:]...)...)
		}), testKey), testKey, ErrMalformed},
		{"group id 0", resign(set(withGroups, groupsOff+1, 0), testKey), testKey, ErrMalformed},
		{"group ids descending", resign(set(withGroups, groupsOff+1, 9), testKey), testKey, ErrMalformed},
		{"group cut in target", withGroups[:len(withGroups)-TagSize-1], testKey, ErrTruncated},
		{"group target length 65", resign(set(withGroups, len(withGroups)-TagSize-len("bravo")-1, 65), testKey), testKey, ErrMalformed},
		{"version 2 with a group block", resign(set(withGroups, 2, Version), testKey), testKey, ErrMalformed},
		{"kind 0", resign(set(good, 3, 0), testKey), testKey, ErrMalformed},
		{"kind 9", resign(set(good, 3, 9), testKey), testKey, ErrMalformed},
		{"node length 0", resign(set(good, nodeOff, 0), testKey), testKey, ErrMalformed},
		{"node length 65", resign(edit(good, func(c []byte) []byte {
			// a 65-byte name that fits in the frame, with an empty target
			body := append(append([]byte(nil), c[:nodeOff]...), 65)
			body = append(body, strings.Repeat("n", 65)...)
			body = append(body, 0)
			return append(body, make([]byte, TagSize)...)
		}), testKey), testKey, ErrMalformed},
		{"node length past end", resign(set(good, nodeOff, 60), testKey), testKey, ErrTruncated},
		{"node bad utf8", resign(set(good, nodeOff+1, 0xff), testKey), testKey, ErrMalformed},
		{"target length 65", resign(edit(good, func(c []byte) []byte {
			body := append([]byte(nil), c[:len(c)-TagSize-1]...)
			body = append(body, 65)
			body = append(body, strings.Repeat("t", 65)...)
			return append(body, make([]byte, TagSize)...)
		}), testKey), testKey, ErrMalformed},
		{"target bad utf8", resign(set(goodRel, len(goodRel)-TagSize-1, 0xfe), testKey), testKey, ErrMalformed},
		{"trailing byte", resign(edit(good, func(c []byte) []byte {
			return append(c[:len(c)-TagSize:len(c)-TagSize], append([]byte{0}, c[len(c)-TagSize:]...)...)
		}), testKey), testKey, ErrMalformed},
		{"oversized", edit(good, func(c []byte) []byte { return append(c, make([]byte, MaxFrameSize)...) }), testKey, ErrMalformed},
		{"flipped body bit", set(good, 20, good[20]^1), testKey, ErrBadTag},
		{"flipped tag bit", set(good, len(good)-1, good[len(good)-1]^0x80), testKey, ErrBadTag},
		{"wrong key", good, []byte("another key, quite different!!!!"), ErrBadTag},
		{"empty key", good, nil, ErrBadTag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(tt.b, tt.key)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unmarshal: %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "heartbeat: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestReason(t *testing.T) {
	for _, r := range reasons {
		wrapped := fmt.Errorf("context: %w", fmt.Errorf("%w: detail", r.err))
		if got := Reason(wrapped); got != r.name {
			t.Errorf("Reason(%v) = %q, want %q", wrapped, got, r.name)
		}
		if !strings.HasPrefix(r.err.Error(), "heartbeat: ") {
			t.Errorf("%v lacks the package prefix", r.err)
		}
	}
	if got := Reason(nil); got != "" {
		t.Errorf("Reason(nil) = %q", got)
	}
	if got := Reason(errors.New("x")); got != "other" {
		t.Errorf("Reason(other) = %q", got)
	}
	seen := map[string]bool{}
	for _, r := range reasons {
		if seen[r.name] {
			t.Errorf("duplicate reason label %q", r.name)
		}
		seen[r.name] = true
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{election.Heartbeat.String(), "heartbeat"},
		{election.Bye.String(), "bye"},
		{election.Released.String(), "released"},
		{election.Kind(9).String(), "kind(9)"},
		{election.Flags(0).String(), "0"},
		{(election.FlagReady | election.FlagWantMaster).String(), "ready|want_master"},
		{(election.FlagMaintenance | 0x80).String(), "maintenance|0x80"},
		{PathUDP.String(), "udp"},
		{PathTCP.String(), "tcp"},
		{Path(0).String(), "path(0)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// FuzzFrameUnmarshalMarshal checks that decoding never panics and that any
// input that decodes re-encodes to exactly the same bytes.
func FuzzFrameUnmarshalMarshal(f *testing.F) {
	seeds := []Frame{testFrame()}
	fr := testFrame()
	fr.Kind, fr.Target = election.Released, "bravo"
	seeds = append(seeds, fr)
	fr = testFrame()
	fr.Kind, fr.Flags, fr.SentAt, fr.Node = election.Bye, election.FlagMaintenance, time.Time{}, strings.Repeat("é", 32)
	seeds = append(seeds, fr)
	fr = testFrame()
	fr.Kind, fr.Groups = election.Released, []Group{{ID: 1, State: election.Master, Priority: 150, Epoch: 2}, {ID: 2, State: election.Backup, Target: "bravo"}}
	seeds = append(seeds, fr)
	for _, s := range seeds {
		f.Add(mustSign(f, s, testKey))
	}
	f.Add([]byte{})
	f.Add([]byte("HB\x01"))
	f.Add(make([]byte, minFrameSize))

	rx := NewReceiver(testKey, 42, "self", 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		// The receiver must not panic on anything either.
		_, _ = rx.Accept(b, testPeer)

		fr, err := parse(b)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("parse error without a reason: %v", err)
			}
			if _, err2 := Unmarshal(b, testKey); err2 == nil {
				t.Fatalf("Unmarshal accepted what parse rejected: %v", err)
			}
			return
		}
		if err := fr.Validate(); err != nil {
			t.Fatalf("parsed frame does not validate: %v", err)
		}
		if body := fr.appendBody(nil); !bytes.Equal(body, b[:len(b)-TagSize]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", body, b[:len(b)-TagSize])
		}
		// With its tag fixed the same bytes must verify and re-sign
		// identically.
		signed := resign(b, testKey)
		got, err := Unmarshal(signed, testKey)
		if err != nil {
			t.Fatalf("Unmarshal of re-signed frame: %v", err)
		}
		if !sameFrame(got, fr) {
			t.Fatalf("Unmarshal %+v, parse %+v", got, fr)
		}
		if again := mustSign(t, got, testKey); !bytes.Equal(again, signed) {
			t.Fatalf("re-signing differs:\n got %x\nwant %x", again, signed)
		}
	})
}

func TestSignerMatchesAppendSigned(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	f := Frame{Kind: 1, Cluster: 9, State: 2, Priority: 100, Boot: 5, Seq: 1, Epoch: 3, SentAt: time.Unix(1700000000, 1), Node: "pc01", Target: "pc02"}
	var buf []byte
	for seq := uint64(1); seq <= 3; seq++ { // the HMAC state is reused
		f.Seq = seq
		want, err := f.Marshal(key)
		if err != nil {
			t.Fatal(err)
		}
		if buf, err = s.AppendSigned(buf[:0], &f); err != nil || !bytes.Equal(buf, want) {
			t.Fatalf("seq %d: signer %x, %v; Marshal %x", seq, buf, err, want)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { buf, _ = s.AppendSigned(buf[:0], &f) }); allocs != 0 {
		t.Errorf("%v allocations per frame", allocs)
	}
	if _, err := NewSigner(nil); err == nil {
		t.Error("empty key accepted")
	}
}
