package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
	"github.com/vishvananda/netns"
)

// DefaultForwardListen is where Forward listens by default.
const DefaultForwardListen = "127.0.0.1:8080"

// FindKept returns the kept lab under stateDir with the given ID (or
// directory name), or the only one when id is empty.
func FindKept(stateDir, id string) (*State, error) {
	states, err := ReadStates(stateDir)
	if err != nil {
		return nil, err
	}
	var found []*State
	for _, s := range states {
		if s.ID == "" || s.ClientNetns == "" {
			continue
		}
		if id == "" || s.ID == id || strings.HasSuffix(s.Dir, "/"+id) {
			found = append(found, s)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && id != "":
		return nil, fmt.Errorf("no lab %q under %s", id, stateDir)
	case len(found) == 0:
		return nil, fmt.Errorf("no running lab under %s: start one with `hbd-lab --keep`", stateDir)
	}
	var ids []string
	for _, s := range found {
		ids = append(ids, s.ID)
	}
	return nil, fmt.Errorf("several labs under %s (%s): choose one with --lab ID", stateDir, strings.Join(ids, ", "))
}

// Forward accepts TCP connections on listen (on this host, outside the lab)
// and joins each to a connection to the web app through the VIP dialled
// from inside the kept lab's client namespace, so a browser on this machine
// can open the page. It runs until ctx is done.
func Forward(ctx context.Context, st *State, listen string, w io.Writer) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("demo: listening on %s: %w", listen, err)
	}
	return ServeForward(ctx, st, ln, w)
}

// ServeForward is Forward on a listener of the caller's; it closes ln.
func ServeForward(ctx context.Context, st *State, ln net.Listener, w io.Writer) error {
	defer ln.Close()
	target := netip.AddrPortFrom(cluster.VIP4.Addr(), cluster.Port)
	if !lab.Subnet4.Contains(target.Addr()) || !nameRE.MatchString(st.ClientNetns) {
		return fmt.Errorf("demo: refusing to forward to %s in namespace %q", target, st.ClientNetns)
	}
	ns, err := netns.GetFromName(st.ClientNetns)
	if err != nil {
		return fmt.Errorf("demo: opening namespace %s (is the lab still up? `hbd-lab --keep` starts one): %w", st.ClientNetns, err)
	}
	defer ns.Close()
	fmt.Fprintf(w, "forwarding http://%s/ → %s in namespace %s (lab %s); Ctrl-C stops\n", ln.Addr(), target, st.ClientNetns, st.ID)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("demo: accepting on %s: %w", ln.Addr(), err)
		}
		wg.Go(func() { forwardOne(ctx, ns, c, target.String(), w) })
	}
}

func forwardOne(ctx context.Context, ns netns.NsHandle, c net.Conn, target string, w io.Writer) {
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	up, err := dialIn(dctx, ns, target)
	cancel()
	if err != nil {
		fmt.Fprintf(w, "dialling %s for %s: %v\n", target, c.RemoteAddr(), err)
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// dialIn dials TCP from inside the namespace ns: on a thread switched into
// it, so the socket belongs to that namespace for its whole life. A thread
// that cannot switch back stays locked and dies with its goroutine.
func dialIn(ctx context.Context, ns netns.NsHandle, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if serr := netns.Set(orig); serr != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{err: errors.Join(err, serr)}
			return // still locked: the runtime retires the thread
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
