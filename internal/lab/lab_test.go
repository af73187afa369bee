package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the helper processes the lab tests start inside
// namespaces, selected by HBD_LAB_HELPER.
const helperEnv = "HBD_LAB_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "http": // serve "ok" with X-Served-By on HBD_LAB_ADDR
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(HeaderServedBy, os.Getenv("HBD_LAB_NODE"))
			io.WriteString(w, "ok\n")
		})
		err := http.ListenAndServe(os.Getenv("HBD_LAB_ADDR"), nil)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "stubborn": // ignore SIGTERM, live at most a minute
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(0)
	default:
		os.Exit(2)
	}
}

func helper(t *testing.T, mode string, env ...string) ([]string, ProcOptions) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe}, ProcOptions{Name: "helper-" + mode, Env: append([]string{helperEnv + "=" + mode}, env...)}
}

// eventually retries f every 20ms until it succeeds or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for i := 0; i < 10000; i++ {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: still failing after %v: %v", what, d, err)
}

func ping(l *Lab, from string, to netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	return l.Ping(ctx, from, to)
}

func mustReach(t *testing.T, l *Lab, from, to string) {
	t.Helper()
	for _, a := range []netip.Addr{l.Host(to).IPv4, l.Host(to).IPv6} {
		eventually(t, 3*time.Second, fmt.Sprintf("ping %s→%s (%s)", from, to, a), func() error { return ping(l, from, a) })
	}
}

func mustNotReach(t *testing.T, l *Lab, from, to string) {
	t.Helper()
	for _, a := range []netip.Addr{l.Host(to).IPv4, l.Host(to).IPv6} {
		if err := ping(l, from, a); err == nil {
			t.Fatalf("ping %s→%s (%s) succeeded, want failure", from, to, a)
		}
	}
}

func netnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

func TestLab(t *testing.T) {
	l := NewForTest(t)
	pc01, pc02, client := l.Host("pc01"), l.Host("pc02"), l.Host("client")
	if pc01 == nil || l.Host("nope") != nil {
		t.Fatal("Host lookup broken")
	}
	if pc01.IPv4 != netip.MustParseAddr("198.51.100.11") || pc02.IPv6 != netip.MustParseAddr("2001:db8::12") ||
		client.IPv4 != netip.MustParseAddr("198.51.100.100") || l.Host("redis").IPv6 != netip.MustParseAddr("2001:db8::20") {
		t.Fatalf("addresses: %+v %+v %+v", pc01, pc02, client)
	}
	if len(l.MAC("pc01")) != 6 || l.MAC("pc01").String() == l.MAC("pc02").String() {
		t.Fatalf("MACs: %v %v", l.MAC("pc01"), l.MAC("pc02"))
	}
	ctx := context.Background()

	t.Run("Run", func(t *testing.T) {
		out, err := l.Run(ctx, "pc01", "ip", "-br", "addr", "show", "dev", HostIf)
		if err != nil || !strings.Contains(string(out), "198.51.100.11/24") || !strings.Contains(string(out), "2001:db8::11/64") {
			t.Fatalf("Run: %v: %s", err, out)
		}
		if strings.Contains(string(out), "tentative") {
			t.Errorf("DAD still on: %s", out)
		}
		if _, err := l.Run(ctx, "pc01", "false"); err == nil {
			t.Error("Run(false) succeeded")
		}
	})

	t.Run("Reachability", func(t *testing.T) {
		for _, from := range l.Hosts() {
			for _, to := range l.Hosts() {
				if from != to {
					mustReach(t, l, from, to)
				}
			}
		}
	})

	t.Run("Neigh", func(t *testing.T) {
		mustReach(t, l, "client", "pc01")
		mac, err := l.Neigh("client", pc01.IPv4)
		if err != nil || mac.String() != pc01.MAC.String() {
			t.Fatalf("Neigh v4 = %v, %v; want %v", mac, err, pc01.MAC)
		}
		if mac, err := l.Neigh("client", pc01.IPv6); err != nil || mac.String() != pc01.MAC.String() {
			t.Fatalf("Neigh v6 = %v, %v; want %v", mac, err, pc01.MAC)
		}
		if _, err := l.Neigh("client", netip.MustParseAddr("198.51.100.77")); !errors.Is(err, ErrNoNeighbor) {
			t.Fatalf("Neigh(absent) err = %v, want ErrNoNeighbor", err)
		}
	})

	t.Run("HTTPAndCable", func(t *testing.T) {
		argv, po := helper(t, "http", "HBD_LAB_ADDR=198.51.100.11:8080", "HBD_LAB_NODE=pc01")
		p, err := l.Start("pc01", argv, po)
		if err != nil {
			t.Fatal(err)
		}
		c := l.HTTPClient("client", false, 500*time.Millisecond)
		get := func() error {
			resp, err := c.Get("http://198.51.100.11:8080/")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if by := resp.Header.Get(HeaderServedBy); by != "pc01" {
				return fmt.Errorf("served by %q", by)
			}
			return nil
		}
		eventually(t, 5*time.Second, "GET from client", get)

		if err := l.CablePull("pc01"); err != nil {
			t.Fatal(err)
		}
		if err := get(); err == nil {
			t.Fatal("GET succeeded with pc01's cable pulled")
		}
		mustNotReach(t, l, "client", "pc01")
		if err := l.CablePlug("pc01"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 3*time.Second, "GET after plug", get)

		pr := l.Probe(ctx, "client", "http://198.51.100.11:8080/", 10*time.Millisecond, true)
		time.Sleep(300 * time.Millisecond)
		pr.Stop()
		rs := pr.Results()
		if len(rs) < 5 || rs.Failures() != 0 || rs.ServedBy(time.Time{}, time.Time{})["pc01"] != len(rs) {
			t.Fatalf("probe: %v\n%s", rs, pr.Timeline())
		}
		if tl := pr.Timeline(); !strings.Contains(tl, "1") || strings.Contains(tl, "x") {
			t.Fatalf("timeline %q", tl)
		}
		if err := p.Stop(2 * time.Second); err != nil || !p.Exited() {
			t.Fatalf("Stop: %v", err)
		}
	})

	t.Run("Isolate", func(t *testing.T) {
		if err := l.Isolate("pc01", "pc02"); err != nil {
			t.Fatal(err)
		}
		mustNotReach(t, l, "pc01", "pc02")
		mustReach(t, l, "pc01", "client")
		mustReach(t, l, "pc02", "client")
		mustReach(t, l, "pc02", "redis")
		if err := l.Unisolate("pc01", "pc02"); err != nil {
			t.Fatal(err)
		}
		mustReach(t, l, "pc01", "pc02")
	})

	t.Run("Partition", func(t *testing.T) {
		if err := l.Partition([]string{"pc01"}, []string{"pc02", "redis"}); err != nil {
			t.Fatal(err)
		}
		mustNotReach(t, l, "pc01", "pc02")
		mustNotReach(t, l, "redis", "pc01")
		mustReach(t, l, "pc02", "redis")
		mustReach(t, l, "pc01", "client")
		mustReach(t, l, "client", "pc02")
		if err := l.Partition([]string{"pc01"}, []string{"pc01"}); err == nil {
			t.Error("a host on two sides accepted")
		}
		if err := l.Heal(); err != nil {
			t.Fatal(err)
		}
		mustReach(t, l, "pc01", "pc02")
		mustReach(t, l, "redis", "pc01")
	})

	t.Run("LossAndBlackout", func(t *testing.T) {
		if err := l.SetLoss("pc01", 100); err != nil {
			t.Fatal(err)
		}
		mustNotReach(t, l, "pc01", "client")
		mustNotReach(t, l, "client", "pc01") // replies are lost
		if err := l.SetLoss("pc01", 101); err == nil {
			t.Error("SetLoss(101) accepted")
		}
		if err := l.ClearLoss("pc01"); err != nil {
			t.Fatal(err)
		}
		mustReach(t, l, "pc01", "client")

		if err := l.Blackout("pc02", true); err != nil {
			t.Fatal(err)
		}
		mustNotReach(t, l, "client", "pc02")
		mustNotReach(t, l, "pc02", "redis")
		if err := l.Blackout("pc02", false); err != nil {
			t.Fatal(err)
		}
		mustReach(t, l, "client", "pc02")

		// A timed blackout ends by itself.
		if err := l.BlackoutFor("pc02", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		begun := time.Now()
		mustNotReach(t, l, "client", "pc02")
		if time.Since(begun) > 1500*time.Millisecond {
			t.Fatalf("checking the blackout took %s: too long to tell", time.Since(begun))
		}
		time.Sleep(time.Until(begun.Add(2 * time.Second)))
		mustReach(t, l, "client", "pc02")
	})

	t.Run("HasAddrAndWatchHolders", func(t *testing.T) {
		vip := VIP4
		w, err := l.WatchHolders(ctx, []string{"pc01", "pc02"}, HostIf, vip)
		if err != nil {
			t.Fatal(err)
		}
		has := func(host string) bool {
			t.Helper()
			ok, err := l.HasAddr(host, HostIf, vip)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		addr := func(host, op string) {
			t.Helper()
			if out, err := l.Run(ctx, host, "ip", "addr", op, vip.String(), "dev", HostIf); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if has("pc01") || has("pc02") {
			t.Fatal("VIP held before it was added")
		}
		addr("pc01", "add")
		if !has("pc01") || has("pc02") {
			t.Fatal("HasAddr misses the VIP on pc01")
		}
		if ok, err := l.HasAddr("pc01", "", vip); !ok || err != nil {
			t.Fatalf("HasAddr(any interface) = %v, %v", ok, err)
		}
		addr("pc02", "add")
		addr("pc01", "del")
		addr("pc02", "del")
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		s, err := w.Result()
		if err != nil {
			t.Fatal(err)
		}
		// Exactly: nobody, pc01, both, pc02, nobody (and the end sample).
		if got := s.String(); got != ".1!2.." {
			t.Errorf("holders %q, want .1!2..; events %v", got, w.Events())
		}
		if d := s.DoubleHolderDuration(); d < 40*time.Millisecond || d > 5*time.Second {
			t.Errorf("DoubleHolderDuration = %v, want about 50ms", d)
		}
		// A watch on a host that is not in the lab fails, never reads as
		// "not holding".
		if _, err := l.WatchHolders(ctx, []string{"pc01", "nosuch"}, HostIf, vip); err == nil {
			t.Error("WatchHolders on an unknown host did not fail")
		}
		// A failed read makes Result and Stop fail.
		w2, err := l.WatchHolders(ctx, []string{"pc01"}, HostIf, vip)
		if err != nil {
			t.Fatal(err)
		}
		w2.fail(errors.New("lost events"))
		if _, err := w2.Result(); err == nil {
			t.Error("Result after a failed read returned no error")
		}
		if err := w2.Stop(); err == nil {
			t.Error("Stop after a failed read returned no error")
		}
	})

	t.Run("Redis", func(t *testing.T) {
		addr, err := l.StartRedis(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if addr != "198.51.100.20:6379" {
			t.Fatalf("addr = %q", addr)
		}
		for _, a := range []string{addr, "[2001:db8::20]:6379"} {
			c, err := l.DialContext(ctx, "client", "tcp", a)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			io.WriteString(c, "PING\r\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil || line != "+PONG\r\n" {
				t.Fatalf("PING %s: %q, %v", a, line, err)
			}
		}
	})

	t.Run("Forbidden", func(t *testing.T) {
		for _, a := range []string{"192.0.2.1:80", "[2001:4860::1]:80", "example.com:80"} {
			if c, err := l.DialContext(ctx, "client", "tcp", a); err == nil {
				c.Close()
				t.Errorf("DialContext(%s) succeeded", a)
			}
		}
		if err := l.Ping(ctx, "client", netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrForbidden) {
			t.Errorf("Ping(192.0.2.1) = %v, want ErrForbidden", err)
		}
	})

	t.Run("ProcExit", func(t *testing.T) {
		p, err := l.Start("client", []string{"sh", "-c", "echo hello; exit 3"}, ProcOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(5 * time.Second); err == nil || p.ExitCode() != 3 {
			t.Fatalf("Wait = %v, exit code %d", err, p.ExitCode())
		}
		if b, _ := os.ReadFile(p.LogPath()); string(b) != "hello\n" {
			t.Fatalf("log = %q", b)
		}
		if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("Signal after exit = %v", err)
		}
	})
}

func TestCloseEndsProcessesAndNamespaces(t *testing.T) {
	l := NewForTest(t, Options{StopTimeout: 300 * time.Millisecond})
	argv, po := helper(t, "stubborn")
	p, err := l.Start("pc02", argv, po)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "helper ready", func() error {
		if b, _ := os.ReadFile(p.LogPath()); !strings.Contains(string(b), "ready") {
			return errors.New("not ready")
		}
		return nil
	})
	if !strings.Contains(netnsList(t), l.ID()+"-pc02") {
		t.Fatalf("namespace %s-pc02 missing:\n%s", l.ID(), netnsList(t))
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if !p.Exited() {
		t.Fatal("stubborn process survived Close")
	}
	if list := netnsList(t); strings.Contains(list, l.ID()+"-") {
		t.Fatalf("namespaces left behind:\n%s", list)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Start("pc01", []string{"true"}, ProcOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
	if _, err := l.HasAddr("pc01", HostIf, VIP4); !errors.Is(err, ErrClosed) {
		t.Fatalf("HasAddr after Close = %v, want ErrClosed", err)
	}
	if _, err := l.DialContext(context.Background(), "client", "tcp", "198.51.100.11:1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("DialContext after Close = %v, want ErrClosed", err)
	}
}

func TestNewFailureCleansUp(t *testing.T) {
	NewForTest(t) // root and prerequisites, or skip/fail
	var b [3]byte
	rand.Read(b[:])
	prefix := "t" + hex.EncodeToString(b[:])
	assertNone := func() {
		t.Helper()
		if list := netnsList(t); strings.Contains(list, prefix+"-") {
			t.Fatalf("namespaces with prefix %s left behind:\n%s", prefix, list)
		}
	}
	ctx := context.Background()

	// Fails after the namespaces exist: the directory cannot be created.
	if _, err := New(ctx, Options{Prefix: prefix, Dir: "/proc/hbd-lab-no-such-dir"}); err == nil {
		t.Fatal("New with an impossible Dir succeeded")
	}
	assertNone()

	// Fails after everything was built.
	testHookBuilt = func() error { return errors.New("injected") }
	defer func() { testHookBuilt = nil }()
	if _, err := New(ctx, Options{Prefix: prefix}); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("New = %v, want injected failure", err)
	}
	assertNone()

	// Invalid options fail before touching the system.
	for _, o := range []Options{{Prefix: "Bad"}, {Hosts: []string{"pc01", "pc01"}}, {Hosts: []string{"averyveryverylonghost"}}, {Hosts: []string{"lan"}}} {
		if _, err := New(ctx, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}
