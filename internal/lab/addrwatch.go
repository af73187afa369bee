package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddrEvent is one rtnetlink address event for the watched address.
type AddrEvent struct {
	Seq     int       // position in the kernel's order of events (0, 1, …)
	At      time.Time // when the watcher read it (for reports; Seq orders)
	Host    string
	Added   bool // RTM_NEWADDR (also a renewal); false: RTM_DELADDR
	Holders int  // hosts holding the address right after this event
}

// AddrWatch follows one address on one interface of several hosts through
// rtnetlink address events, in the order the kernel made the changes. One
// netlink socket in the test's own namespace listens to every host's
// namespace at once (NETLINK_LISTEN_ALL_NSID): the kernel changes addresses
// under one lock and queues each event to the socket as it makes the
// change, so the order of events on that socket is the true order of the
// changes, whatever the scheduler does to the reader. "Never two holders"
// is then judged exactly, with no sampling interval and no clocks to
// compare.
type AddrWatch struct {
	fd     int
	byNsid map[int32]string // nsid → host
	ifidx  map[string]int   // host → index of the interface
	addr   netip.Addr

	mu      sync.Mutex
	holding map[string]bool
	events  []AddrEvent
	max     int
	err     error // the socket overflowed or failed: the judgement is void

	stop chan struct{}
	done chan struct{}
}

// WatchAddr starts watching addr on ifname of hosts. It assigns the hosts'
// namespaces an nsid in the test's namespace if they have none, subscribes,
// then reads who holds addr now. Stop it when done.
func (l *Lab) WatchAddr(ctx context.Context, hosts []string, ifname string, addr netip.Addr) (*AddrWatch, error) {
	addr = addr.Unmap()
	w := &AddrWatch{
		byNsid: map[int32]string{}, ifidx: map[string]int{}, addr: addr, holding: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	for _, h := range hosts {
		c := l.nsc[h]
		if c == nil {
			return nil, fmt.Errorf("%w: %q", ErrUnknownHost, h)
		}
		nsid, err := nsidOf(c)
		if err != nil {
			return nil, fmt.Errorf("lab: watching addresses of %s: %w", h, err)
		}
		w.byNsid[int32(nsid)] = h
		if err := c.netlink(func(nh *netlink.Handle) error {
			link, err := nh.LinkByName(ifname)
			if err == nil {
				w.ifidx[h] = link.Attrs().Index
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("lab: watching %s on %s: %w", ifname, h, err)
		}
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("lab: opening a netlink socket: %w", err)
	}
	groups := uint32(unix.RTMGRP_IPV4_IFADDR)
	if addr.Is6() {
		groups = unix.RTMGRP_IPV6_IFADDR
	}
	setup := []error{
		unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_LISTEN_ALL_NSID, 1),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 50_000}),
		unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}),
	}
	if err := errors.Join(setup...); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: subscribing to address events of every namespace: %w", err)
	}
	w.fd = fd
	// Subscribed first, listed second: a change in between shows in both,
	// and adding or removing a host twice changes nothing.
	for _, h := range hosts {
		held, err := l.HasAddr(h, ifname, netip.PrefixFrom(addr, addr.BitLen()))
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		w.holding[h] = held
	}
	w.max = w.count()
	go w.read()
	return w, nil
}

// nsidOf returns the nsid the test's namespace knows the host's namespace
// by, asking the kernel to allocate one if there is none.
func nsidOf(c *nsConn) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.done {
		return 0, ErrClosed
	}
	id, err := netlink.GetNetNsIdByFd(int(c.fd))
	if err == nil && id < 0 {
		if err = netlink.SetNetNsIdByFd(int(c.fd), -1); err == nil { // -1: any free id
			id, err = netlink.GetNetNsIdByFd(int(c.fd))
		}
	}
	if err == nil && id < 0 {
		err = errors.New("no nsid assigned")
	}
	return id, err
}

func (w *AddrWatch) count() int {
	n := 0
	for _, h := range w.holding {
		if h {
			n++
		}
	}
	return n
}

func (w *AddrWatch) read() {
	defer close(w.done)
	defer unix.Close(w.fd)
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4)*4)
	draining := false
	for {
		flags := 0
		if !draining {
			select {
			case <-w.stop:
				// Read what the kernel queued before Stop, then end.
				draining, flags = true, unix.MSG_DONTWAIT
			default:
			}
		} else {
			flags = unix.MSG_DONTWAIT
		}
		n, oobn, _, _, err := unix.Recvmsg(w.fd, buf, oob, flags)
		switch {
		case draining && errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			w.fail(fmt.Errorf("lab: reading address events: %w", err)) // ENOBUFS: events were lost
			return
		}
		nsid, ok := nsidFrom(oob[:oobn])
		host := w.byNsid[nsid]
		if !ok || host == "" {
			continue // our own namespace, or one we do not watch
		}
		at := time.Now()
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			w.fail(fmt.Errorf("lab: parsing address events: %w", err))
			return
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR {
				continue
			}
			if w.matches(host, m) {
				w.note(host, m.Header.Type == unix.RTM_NEWADDR, at)
			}
		}
	}
}

// matches reports whether an address message is about the watched address
// on the watched interface of host.
func (w *AddrWatch) matches(host string, m syscall.NetlinkMessage) bool {
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return false
	}
	if idx := int(binary.NativeEndian.Uint32(m.Data[4:8])); idx != w.ifidx[host] {
		return false
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return false
	}
	for _, a := range attrs {
		if a.Attr.Type != unix.IFA_LOCAL && a.Attr.Type != unix.IFA_ADDRESS {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.Value); ok && ip.Unmap() == w.addr {
			return true
		}
	}
	return false
}

func nsidFrom(oob []byte) (int32, bool) {
	cms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, c := range cms {
		if c.Header.Level == unix.SOL_NETLINK && c.Header.Type == unix.NETLINK_LISTEN_ALL_NSID && len(c.Data) >= 4 {
			return int32(binary.NativeEndian.Uint32(c.Data)), true
		}
	}
	return 0, false
}

func (w *AddrWatch) note(host string, added bool, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holding[host] = added
	n := w.count()
	w.max = max(w.max, n)
	w.events = append(w.events, AddrEvent{Seq: len(w.events), At: at, Host: host, Added: added, Holders: n})
}

func (w *AddrWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

// Stop stops watching after reading every event the kernel queued before
// the call; judge after Stop. The results stay readable.
func (w *AddrWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Err is non-nil if events may have been lost (the socket overflowed or
// failed): then MaxHolders proves nothing.
func (w *AddrWatch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// MaxHolders is the largest number of hosts that held the address at the
// same time since the watch started, in the kernel's order of changes.
func (w *AddrWatch) MaxHolders() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// Holders lists the hosts that hold the address now, sorted.
func (w *AddrWatch) Holders() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var hs []string
	for h, on := range w.holding {
		if on {
			hs = append(hs, h)
		}
	}
	slices.Sort(hs)
	return hs
}

// Events returns the events seen so far, in the kernel's order.
func (w *AddrWatch) Events() []AddrEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}
