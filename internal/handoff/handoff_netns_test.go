package handoff

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/vishvananda/netns"
)

// The test binary doubles as a line server inside the lab's hosts.
const helperEnv = "HBD_HANDOFF_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "serve" {
		serve()
		return
	}
	os.Exit(m.Run())
}

// serve answers every line on every connection to port 8080 with the
// host's name.
func serve() {
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() {
			defer c.Close()
			r := bufio.NewScanner(c)
			for r.Scan() {
				fmt.Fprintln(c, os.Getenv("HBD_NODE"))
			}
		}()
	}
}

var (
	vip  = netip.MustParsePrefix("198.51.100.10/24")
	vip2 = netip.MustParsePrefix("198.51.100.111/24") // a second group's VIP
)

// inHost runs fn on a thread switched into host's namespace.
func inHost(t *testing.T, l *lab.Lab, host string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromName(l.Host(host).Netns)
		if err != nil {
			t.Error(err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

func run(t *testing.T, l *lab.Lab, host string, argv ...string) {
	t.Helper()
	if out, err := l.Run(context.Background(), host, argv...); err != nil {
		t.Fatalf("%s on %s: %v: %s", strings.Join(argv, " "), host, err, out)
	}
}

// ask sends one line on c and returns the answer.
func ask(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, "who"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// chainLab starts the line server on pc01 and pc02 and attaches a chain
// on pc02.
func chainLab(t *testing.T) (*lab.Lab, *Chain) {
	l := lab.NewForTest(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"pc01", "pc02"} {
		if _, err := l.Start(h, []string{exe}, lab.ProcOptions{Name: "serve", Env: []string{helperEnv + "=serve", "HBD_NODE=" + h}}); err != nil {
			t.Fatal(err)
		}
	}
	var chain *Chain
	inHost(t, l, "pc02", func() {
		var err error
		if chain, err = New(lab.HostIf, nil); err != nil {
			t.Error(err)
		}
	})
	if chain == nil {
		t.FailNow()
	}
	t.Cleanup(func() { chain.Close() })
	t.Logf("attached with %s", chain.How())
	return l, chain
}

// dial opens a connection from the client to v's line server.
func dial(t *testing.T, l *lab.Lab, v netip.Prefix) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ { // the servers may still be starting
		if c, err = l.DialContext(ctx, "client", "tcp4", netip.AddrPortFrom(v.Addr(), 8080).String()); err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("dialling %s: %v", v.Addr(), err)
	return nil
}

// move moves v from → to the way a handover does: a local route on from,
// then the address goes; the client learns the new MAC.
func move(t *testing.T, l *lab.Lab, v netip.Prefix, from, to string) {
	t.Helper()
	run(t, l, from, "ip", "route", "replace", "local", v.Addr().String(), "dev", lab.HostIf, "table", "local", "metric", "1")
	shift(t, l, v, from, to)
}

// moveBack undoes move(v, from, to).
func moveBack(t *testing.T, l *lab.Lab, v netip.Prefix, from, to string) {
	t.Helper()
	run(t, l, from, "ip", "route", "del", "local", v.Addr().String(), "dev", lab.HostIf, "table", "local", "metric", "1")
	shift(t, l, v, to, from)
}

// shift moves v's address from → to and points the client's neighbour
// entry at to.
func shift(t *testing.T, l *lab.Lab, v netip.Prefix, from, to string) {
	t.Helper()
	run(t, l, from, "ip", "addr", "del", v.String(), "dev", lab.HostIf)
	run(t, l, to, "ip", "addr", "add", v.String(), "dev", lab.HostIf)
	run(t, l, "client", "ip", "neigh", "replace", v.Addr().String(), "lladdr", l.MAC(to).String(), "dev", lab.HostIf)
}

// TestDaisyChain moves the VIP from pc01 to pc02 the way a handover does
// (pc01 keeps a local route, the client's ARP entry flips) while the
// client has a connection open with pc01. Without forwarding pc02 resets
// it; with forwarding it is served by pc01 through pc02, and a new
// connection is served by pc02 itself.
func TestDaisyChain(t *testing.T) {
	l, chain := chainLab(t)
	run(t, l, "pc01", "ip", "addr", "add", vip.String(), "dev", lab.HostIf)
	for _, forward := range []bool{false, true} {
		t.Run(fmt.Sprintf("forward=%v", forward), func(t *testing.T) {
			c := dial(t, l, vip)
			if got, err := ask(c); err != nil || got != "pc01" {
				t.Fatalf("before the move: %q, %v", got, err)
			}
			if forward {
				if err := chain.Forward([]netip.Addr{vip.Addr()}, l.MAC("pc01")); err != nil {
					t.Fatal(err)
				}
			}
			move(t, l, vip, "pc01", "pc02")
			got, err := ask(c)
			switch {
			case forward && (err != nil || got != "pc01"):
				t.Errorf("open connection after the move, forwarding on: %q, %v; want pc01's answer", got, err)
			case !forward && err == nil:
				t.Errorf("open connection after the move, forwarding off: %q; want a reset", got)
			}
			if got, err := ask(dial(t, l, vip)); err != nil || got != "pc02" {
				t.Errorf("new connection after the move: %q, %v; want pc02", got, err)
			}
			if err := chain.Stop([]netip.Addr{vip.Addr()}); err != nil {
				t.Fatal(err)
			}
			if f := chain.Forwarding(); len(f) != 0 {
				t.Errorf("forwarding %v after Stop", f)
			}
			moveBack(t, l, vip, "pc01", "pc02") // for the next round
		})
	}
}

// TestDaisyChainPerVIP forwards two VIPs (two groups' hand-offs) and
// stops one: the other's straddling connections are still forwarded, the
// stopped one's are not.
func TestDaisyChainPerVIP(t *testing.T) {
	l, chain := chainLab(t)
	for _, v := range []netip.Prefix{vip, vip2} {
		run(t, l, "pc01", "ip", "addr", "add", v.String(), "dev", lab.HostIf)
	}
	c1, c2 := dial(t, l, vip), dial(t, l, vip2)
	for _, c := range []net.Conn{c1, c2} {
		if got, err := ask(c); err != nil || got != "pc01" {
			t.Fatalf("before the move: %q, %v", got, err)
		}
	}
	if err := chain.Forward([]netip.Addr{vip.Addr(), vip2.Addr()}, l.MAC("pc01")); err != nil {
		t.Fatal(err)
	}
	move(t, l, vip, "pc01", "pc02")
	move(t, l, vip2, "pc01", "pc02")
	if err := chain.Stop([]netip.Addr{vip2.Addr()}); err != nil {
		t.Fatal(err)
	}
	if f := chain.Forwarding(); len(f) != 1 || f[0] != vip.Addr() {
		t.Errorf("forwarding %v, want only %s", f, vip.Addr())
	}
	if got, err := ask(c1); err != nil || got != "pc01" {
		t.Errorf("%s, still forwarded: %q, %v; want pc01's answer", vip.Addr(), got, err)
	}
	if got, err := ask(c2); err == nil {
		t.Errorf("%s, forwarding stopped: %q; want a reset", vip2.Addr(), got)
	}
	if got, err := ask(dial(t, l, vip2)); err != nil || got != "pc02" {
		t.Errorf("new connection to %s: %q, %v; want pc02", vip2.Addr(), got, err)
	}
}
