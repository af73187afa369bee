package vip

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// resubscribeDelay spaces new link subscriptions after the kernel dropped
// one (for example on a receive buffer overrun), so a persistent failure
// does not spin.
const resubscribeDelay = 100 * time.Millisecond

// LinkUp reports whether the interface ifname is up: administratively up,
// with carrier, and operationally up (or "unknown", which is what links
// without a state machine, like dummy or tun, report).
func LinkUp(ifname string) (bool, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, fmt.Errorf("vip: looking up interface %s: %w", ifname, err)
	}
	return isUp(link.Attrs()), nil
}

// WatchLink calls fn with the current state of the interface ifname (see
// LinkUp), then again every time the state changes, from netlink link
// notifications. A missing, deleted or renamed interface counts as down; one
// that appears later is followed. fn is called from the goroutine running
// WatchLink, never twice in a row with the same value.
//
// WatchLink returns ctx.Err() when ctx is done, or an error if it cannot
// subscribe to link notifications. If the kernel drops the subscription
// (a receive buffer overrun loses notifications), WatchLink subscribes
// again and re-reads the state, so no change goes unreported.
func WatchLink(ctx context.Context, ifname string, fn func(up bool)) error {
	w := linkWatch{ifname: ifname, fn: fn}
	for {
		if err := w.subscribe(ctx); err != nil {
			return err
		}
		// The subscription ended without ctx being done: start over.
		t := time.NewTimer(resubscribeDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// linkWatch is the state of one WatchLink call.
type linkWatch struct {
	ifname string
	fn     func(up bool)

	reported bool // fn was called at least once
	last     bool // the value of the last call
	index    int  // interface index last seen with our name; 0 if none
}

// subscribe watches until ctx is done (returning ctx.Err()) or the kernel
// ends the subscription (returning nil).
func (w *linkWatch) subscribe(ctx context.Context) error {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	// Subscribe before reading the state, so no change falls between.
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		// A fatal receive error closes ch; we then subscribe again.
	})
	if err != nil {
		close(done)
		return fmt.Errorf("vip: watching interface %s: subscribing to link updates: %w", w.ifname, err)
	}
	defer func() {
		close(done)
		// Unblock the library's receiver, which may be sending to ch,
		// until it sees the closed socket and closes ch.
		for range ch {
		}
	}()

	link, err := netlink.LinkByName(w.ifname)
	switch {
	case err == nil:
		w.index = link.Attrs().Index
		w.report(isUp(link.Attrs()))
	case isLinkNotFound(err):
		w.index = 0
		w.report(false)
	default:
		return fmt.Errorf("vip: watching interface %s: %w", w.ifname, err)
	}

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case u, ok := <-ch:
			if !ok {
				return nil
			}
			w.update(u)
		}
	}
}

// update handles one link notification.
func (w *linkWatch) update(u netlink.LinkUpdate) {
	attrs := u.Attrs()
	switch {
	case attrs.Name == w.ifname && u.Header.Type == unix.RTM_DELLINK:
		w.index = 0
		w.report(false)
	case attrs.Name == w.ifname:
		w.index = attrs.Index
		w.report(isUp(attrs))
	case w.index != 0 && attrs.Index == w.index:
		// Our interface was renamed away.
		w.index = 0
		w.report(false)
	}
}

func (w *linkWatch) report(up bool) {
	if w.reported && w.last == up {
		return
	}
	w.reported, w.last = true, up
	w.fn(up)
}

// isUp: administratively up, carrier present, and operationally up or
// unknown (links without an operational state machine report unknown).
func isUp(attrs *netlink.LinkAttrs) bool {
	return attrs.Flags&net.FlagUp != 0 &&
		attrs.RawFlags&unix.IFF_LOWER_UP != 0 &&
		(attrs.OperState == netlink.OperUp || attrs.OperState == netlink.OperUnknown)
}
