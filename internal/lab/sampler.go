package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// maxSamples bounds every sampling loop (about 2.9 hours at 10ms).
const maxSamples = 1 << 20

// NodeSymbol maps a node name to the one character that stands for it in a
// timeline.
type NodeSymbol func(node string) rune

// DefaultNodeSymbol uses a node name's last character if it is a digit
// ("pc01" → '1', "pc02" → '2'), else its first character ("redis" → 'r').
// '?' stands for an empty name or one that would read as a timeline mark
// ('.', 'x', '!').
func DefaultNodeSymbol(node string) rune {
	if node == "" {
		return '?'
	}
	r := rune(node[len(node)-1])
	if r < '0' || r > '9' {
		r = []rune(node)[0]
	}
	switch r {
	case '.', 'x', '!':
		return '?'
	}
	return r
}

// HolderSample is which hosts held the address from one instant until the
// next sample.
type HolderSample struct {
	At      time.Time
	Holders []string // in the order the hosts were given
}

// HolderSamples is a timeline of samples in time order, with pure analysis
// methods. A HolderWatch makes one sample per change of the holder set, and
// a last one when it stops (the end of the timeline).
type HolderSamples []HolderSample

// MaxConcurrent is the largest number of simultaneous holders seen.
func (s HolderSamples) MaxConcurrent() int {
	m := 0
	for _, x := range s {
		m = max(m, len(x.Holders))
	}
	return m
}

// durationWhere sums, over samples matching pred, the time to the next
// sample; the last sample, whose end is unknown, counts nothing.
func (s HolderSamples) durationWhere(pred func(HolderSample) bool) time.Duration {
	var d time.Duration
	for i := 0; i+1 < len(s); i++ {
		if pred(s[i]) {
			d += s[i+1].At.Sub(s[i].At)
		}
	}
	return d
}

// DoubleHolderDuration is the time during which two or more hosts held the
// address, each such sample lasting until the next one.
func (s HolderSamples) DoubleHolderDuration() time.Duration {
	return s.durationWhere(func(x HolderSample) bool { return len(x.Holders) >= 2 })
}

// NoHolderDuration is the time during which no host held the address.
func (s HolderSamples) NoHolderDuration() time.Duration {
	return s.durationWhere(func(x HolderSample) bool { return len(x.Holders) == 0 })
}

// Window is the part of a timeline in [from, to): a sample at from with the
// holders as of then, the changes inside, and a sample at to that ends it.
func (s HolderSamples) Window(from, to time.Time) HolderSamples {
	var out HolderSamples
	var cur []string
	for _, x := range s {
		switch {
		case !x.At.After(from):
			cur = x.Holders
		case x.At.Before(to):
			if out == nil {
				out = HolderSamples{{At: from, Holders: cur}}
			}
			out = append(out, x)
			cur = x.Holders
		}
	}
	if out == nil {
		out = HolderSamples{{At: from, Holders: cur}}
	}
	return append(out, HolderSample{At: to, Holders: cur})
}

// HolderChange is a sample whose holder set differs from the previous one.
type HolderChange struct {
	At      time.Time
	Holders []string
}

// Changes lists the first sample and every change of holder set after it.
func (s HolderSamples) Changes() []HolderChange {
	var out []HolderChange
	for i, x := range s {
		if i == 0 || !slices.Equal(x.Holders, s[i-1].Holders) {
			out = append(out, HolderChange{At: x.At, Holders: x.Holders})
		}
	}
	return out
}

// String renders one character per sample (per change, for a HolderWatch): '.' no holder, the node's symbol
// for one holder, '!' for two or more.
func (s HolderSamples) String() string { return s.Render(DefaultNodeSymbol) }

// Render is String with a chosen symbol mapping.
func (s HolderSamples) Render(sym NodeSymbol) string {
	var b strings.Builder
	for _, x := range s {
		switch len(x.Holders) {
		case 0:
			b.WriteByte('.')
		case 1:
			b.WriteRune(sym(x.Holders[0]))
		default:
			b.WriteByte('!')
		}
	}
	return b.String()
}

// AddrEvent is one rtnetlink address notification for the watched address.
type AddrEvent struct {
	At    time.Time // when it was read; events are in the kernel's order
	Host  string
	Added bool // RTM_NEWADDR (added, or its lifetime renewed); false: RTM_DELADDR (deleted or expired)
}

// HolderWatch follows which hosts hold an address from the kernel's own
// rtnetlink address notifications, not by polling: one netlink socket in
// the LAN namespace listens to every host namespace
// (NETLINK_LISTEN_ALL_NSID), so the events of all hosts arrive in the one
// order in which the kernel made them (address changes are serialised by
// the RTNL lock). Two holders are therefore never an artefact of reading
// the hosts one after the other; the times between events are when the
// watcher read them, which a loaded machine may delay, but not reorder.
//
// A watch that lost events (a read error, an overflowed socket buffer) says
// so through Result and Stop: a test must fail on it, never read it as "not
// holding". Its methods are safe for concurrent use.
type HolderWatch struct {
	hosts  []string
	fd     int
	done   chan struct{}
	stop   sync.Once
	closed chan struct{}

	mu      sync.Mutex
	initial map[string]bool
	start   time.Time
	events  []AddrEvent
	end     time.Time // zero while running
	err     error
}

// WatchHolders starts watching which of hosts hold vip's address on ifname
// ("" for any interface). It reads the initial state after subscribing, so
// no change is missed. Stop it (or cancel ctx) when done.
func (l *Lab) WatchHolders(ctx context.Context, hosts []string, ifname string, vip netip.Prefix) (*HolderWatch, error) {
	w := &HolderWatch{hosts: slices.Clone(hosts), fd: -1, done: make(chan struct{}), closed: make(chan struct{}), initial: map[string]bool{}}
	want := vip.Addr().Unmap()
	type key struct{ nsid, index int }
	watched := map[key]string{} // (nsid, ifindex) → host; ifindex 0: any
	lan := l.nsc[""]
	if lan == nil {
		return nil, fmt.Errorf("lab: watching holders: %w", ErrClosed)
	}
	for _, h := range hosts {
		c := l.nsc[h]
		if c == nil {
			return nil, fmt.Errorf("lab: watching holders: %w: %q", ErrUnknownHost, h)
		}
		index := 0
		if ifname != "" {
			if err := c.netlink(func(nh *netlink.Handle) error {
				link, err := nh.LinkByName(ifname)
				if err == nil {
					index = link.Attrs().Index
				}
				return err
			}); err != nil {
				return nil, fmt.Errorf("lab: watching holders: %s on %s: %w", ifname, h, err)
			}
		}
		nsid, err := l.nsidOf(c)
		if err != nil {
			return nil, fmt.Errorf("lab: watching holders on %s: %w", h, err)
		}
		watched[key{nsid, index}] = h
	}
	// The socket lives in the LAN namespace, where every host has an nsid.
	err := l.inNetns("", func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		w.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_LISTEN_ALL_NSID, 1); err != nil {
			return fmt.Errorf("NETLINK_LISTEN_ALL_NSID: %w", err)
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		// Wake up every 100 ms to notice Stop.
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR})
	})
	if err != nil {
		if w.fd >= 0 {
			unix.Close(w.fd)
		}
		return nil, fmt.Errorf("lab: watching holders: opening the netlink socket: %w", err)
	}
	w.start = time.Now()
	for _, h := range hosts {
		held, err := l.HasAddr(h, ifname, vip)
		if err != nil {
			unix.Close(w.fd)
			return nil, fmt.Errorf("lab: watching holders: initial state of %s: %w", h, err)
		}
		w.initial[h] = held
	}
	go w.read(func(nsid int, data []byte) (string, bool) {
		if len(data) < unix.SizeofIfAddrmsg {
			return "", false
		}
		msg := nl.DeserializeIfAddrmsg(data)
		host, ok := watched[key{nsid, int(msg.Index)}]
		if !ok {
			if host, ok = watched[key{nsid, 0}]; !ok {
				return "", false
			}
		}
		attrs, err := nl.ParseRouteAttr(data[unix.SizeofIfAddrmsg:])
		if err != nil {
			return "", false
		}
		for _, a := range attrs {
			if a.Attr.Type != unix.IFA_LOCAL && a.Attr.Type != unix.IFA_ADDRESS {
				continue
			}
			if got, ok := netip.AddrFromSlice(a.Value); ok && got.Unmap() == want {
				return host, true
			}
		}
		return "", false
	})
	go func() {
		select {
		case <-ctx.Done():
			w.Stop()
		case <-w.done:
		}
	}()
	return w, nil
}

// nsidOf returns the id the LAN namespace knows c's namespace by, assigning
// one if it has none.
func (l *Lab) nsidOf(c *nsConn) (int, error) {
	id := -1
	err := l.nsc[""].netlink(func(lan *netlink.Handle) error {
		c.mu.RLock()
		defer c.mu.RUnlock()
		if c.done {
			return ErrClosed
		}
		var err error
		if id, err = lan.GetNetNsIdByFd(int(c.fd)); err != nil {
			return fmt.Errorf("reading its nsid: %w", err)
		}
		if id >= 0 {
			return nil
		}
		if err := lan.SetNetNsIdByFd(int(c.fd), -1); err != nil {
			return fmt.Errorf("assigning an nsid: %w", err)
		}
		id, err = lan.GetNetNsIdByFd(int(c.fd))
		return err
	})
	if err == nil && id < 0 {
		err = errors.New("no nsid assigned")
	}
	return id, err
}

// read is the watch's loop: one socket, events in kernel order.
func (w *HolderWatch) read(match func(nsid int, data []byte) (string, bool)) {
	defer close(w.closed)
	defer unix.Close(w.fd)
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4)*4)
	for {
		select {
		case <-w.done:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(w.fd, buf, oob, 0)
		at := time.Now()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// ENOBUFS: the kernel dropped notifications.
			w.fail(fmt.Errorf("lab: watching holders: reading rtnetlink: %w", err))
			return
		}
		nsid := -1
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_NETLINK && cm.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(cm.Data) >= 4 {
					nsid = int(int32(binary.NativeEndian.Uint32(cm.Data)))
				}
			}
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			w.fail(fmt.Errorf("lab: watching holders: parsing rtnetlink: %w", err))
			return
		}
		for _, m := range msgs {
			added := m.Header.Type == unix.RTM_NEWADDR
			if !added && m.Header.Type != unix.RTM_DELADDR {
				continue
			}
			if host, ok := match(nsid, m.Data); ok {
				w.mu.Lock()
				if len(w.events) < maxSamples {
					w.events = append(w.events, AddrEvent{At: at, Host: host, Added: added})
				} else if w.err == nil {
					w.err = errors.New("lab: watching holders: too many events")
				}
				w.mu.Unlock()
			}
		}
	}
}

func (w *HolderWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// Stop ends the watch and returns the error that makes its timeline
// unreliable, if any. Idempotent.
func (w *HolderWatch) Stop() error {
	w.stop.Do(func() {
		close(w.done)
		<-w.closed
		w.mu.Lock()
		w.end = time.Now()
		w.mu.Unlock()
	})
	return w.Err()
}

// Err is the error that makes the timeline unreliable (events were lost),
// or nil.
func (w *HolderWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Events returns the address events so far, in the kernel's order.
func (w *HolderWatch) Events() []AddrEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

// Result is the holder timeline so far (one sample per change, and one at
// the end: Stop's time, or now while running), or the error that makes it
// unreliable.
func (w *HolderWatch) Result() (HolderSamples, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	end := w.end
	if end.IsZero() {
		end = time.Now()
	}
	return HoldersFromEvents(w.hosts, w.initial, w.start, w.events, end), nil
}

// HoldersFromEvents replays address events over an initial state (who held
// the address at start) and returns a sample at start, one at each change
// of the holder set and one at end.
func HoldersFromEvents(hosts []string, initial map[string]bool, start time.Time, events []AddrEvent, end time.Time) HolderSamples {
	held := map[string]bool{}
	for h, ok := range initial {
		held[h] = ok
	}
	set := func() []string {
		var out []string
		for _, h := range hosts {
			if held[h] {
				out = append(out, h)
			}
		}
		return out
	}
	s := HolderSamples{{At: start, Holders: set()}}
	for _, e := range events {
		held[e.Host] = e.Added
		if hs := set(); !slices.Equal(hs, s[len(s)-1].Holders) {
			s = append(s, HolderSample{At: e.At, Holders: hs})
		}
	}
	if end.After(s[len(s)-1].At) {
		s = append(s, HolderSample{At: end, Holders: set()})
	}
	return s
}
