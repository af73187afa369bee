package heartbeat

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat/election"
)

// FuzzSignedFrames sends frames that are signed with the key, so that they
// pass the tag and reach what is behind it: the sessions, the replay
// window and the election core. Each input is a sequence of frames
// (fuzzer-chosen fields, some echoing alpha's current challenge) from a
// peer bravo whose session with alpha is established first. Nothing may
// panic; every accepted frame is new by its (boot, sequence); a frame
// whose boot never echoed a current challenge is never accepted; and the
// core keeps its own invariants (it panics on a broken one).
func FuzzSignedFrames(f *testing.F) {
	f.Add([]byte{0, 1, 2, 150, 0, 5, 0, 1, 1, 2, 2, 150, 3, 9, 1, 1})
	f.Add([]byte{1, 3, 2, 255, 0xb1, 7, 1, 0, 2, 2, 1, 100, 0xb2, 1, 1, 1})
	f.Add(bytes.Repeat([]byte{0, 1, 2, 200, 0, 0, 1, 1}, 8))
	f.Fuzz(func(t *testing.T, in []byte) {
		alpha, bravo := pair(t, 0xb1)
		now := time.Unix(1_700_000_000, 0)
		m := election.New(election.Config{Node: "alpha", Priority: 150, Peers: 1, Interval: 5 * time.Millisecond,
			DeadAfter: 300 * time.Millisecond, Refresh: time.Second, YieldTimeout: time.Second, Preempt: true}, now)
		m.Tick(now)
		accepted := map[[2]uint64]bool{}
		for len(in) >= 8 {
			rec := in[:8]
			in = in[8:]
			fr := bravo.next()
			fr.Kind = election.Kind(rec[0]%3 + 1)
			fr.State = election.State(rec[1] % 5)
			fr.Flags = election.Flags(rec[2])
			fr.Priority = rec[3]
			if rec[4] != 0 { // another boot: one that never echoed alpha
				fr.Boot = uint64(rec[4]) << 8
			}
			if back := uint64(rec[5]); back < fr.Seq && rec[5]%2 == 1 {
				fr.Seq -= back // an old sequence number
			}
			fr.Epoch = uint64(rec[6])
			if rec[7]%2 == 0 {
				fr.Target = "alpha"
			}
			if rec[7]&2 != 0 && len(fr.Sessions) > 0 {
				fr.Sessions[0].Echo ^= uint64(rec[7]) << 8 // a wrong echo
			}
			b, err := fr.Marshal(testKey)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := alpha.rx.Accept(b, testPeer)
			now = now.Add(time.Duration(rec[5]) * time.Millisecond)
			if err != nil {
				if Reason(err) == "other" {
					t.Fatalf("error without a reason: %v", err)
				}
				m.Tick(now)
				continue
			}
			k := [2]uint64{got.Boot, got.Seq}
			if accepted[k] {
				t.Fatalf("boot %x seq %d accepted twice", got.Boot, got.Seq)
			}
			accepted[k] = true
			if got.Boot != bravo.boot {
				t.Fatalf("a frame of boot %x, which never completed a session, was accepted", got.Boot)
			}
			m.Receive(now, election.Heard{Node: got.Node, Kind: got.Kind, Advert: election.Advert{
				State: got.State, Priority: int(got.Priority), Epoch: got.Epoch, Flags: got.Flags, Target: got.Target}})
			m.Tick(now)
			_, _ = bravo.rx.Accept(alpha.signed(t), testPeer)
		}
	})
}

// FuzzTCPStream writes arbitrary bytes to an incoming TCP connection's
// reader: it must deliver exactly the well-framed frames up to the first
// bad length prefix, and stop there.
func FuzzTCPStream(f *testing.F) {
	frame := func(b []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...) }
	f.Add(frame([]byte("hello")))
	f.Add(append(frame([]byte("a")), frame(make([]byte, MaxFrameSize))...))
	f.Add(append(frame([]byte("a")), 0, 0, 1))
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		// What a correct reader delivers.
		var want [][]byte
		for rest := stream; len(rest) >= 2; {
			n := int(binary.BigEndian.Uint16(rest))
			if n == 0 || n > MaxFrameSize || len(rest)-2 < n {
				break
			}
			want = append(want, rest[2:2+n])
			rest = rest[2+n:]
		}
		tr := &TCPTransport{opts: TCPOptions{}.withDefaults()}
		tr.log = tr.opts.Logger
		server, client := net.Pipe()
		go func() {
			_, _ = client.Write(stream)
			client.Close()
		}()
		var got [][]byte
		tr.readConn(server, netip.MustParseAddrPort("198.51.100.2:8707"), func(in Inbound) bool {
			if in.Path != PathTCP || len(in.Data) == 0 || len(in.Data) > MaxFrameSize {
				t.Fatalf("delivered %+v", in)
			}
			got = append(got, in.Data)
			return len(got)%2 == 0
		})
		server.Close()
		_, _ = io.Copy(io.Discard, client)
		if len(got) != len(want) {
			t.Fatalf("delivered %d frames, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("frame %d: %x, want %x", i, got[i], want[i])
			}
		}
	})
}
