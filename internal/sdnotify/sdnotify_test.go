package sdnotify

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// listen opens a unixgram socket standing in for systemd's notify socket
// and returns its name and a channel of the datagrams it receives.
func listen(t *testing.T, name string) (string, <-chan string) {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listening on %s: %v", name, err)
	}
	ch := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return name, ch
}

func socketPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "notify.sock")
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram within 10s")
		return ""
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	t.Setenv(envSocket, "")
	sent, err := Ready()
	if sent || err != nil {
		t.Fatalf("Ready() = %v, %v; want false, nil outside systemd", sent, err)
	}
}

func TestReadyArrives(t *testing.T) {
	name, ch := listen(t, socketPath(t))
	t.Setenv(envSocket, name)
	for _, tc := range []struct {
		call func() (bool, error)
		want string
	}{
		{Ready, "READY=1"},
		{Watchdog, "WATCHDOG=1"},
		{Reloading, "RELOADING=1"},
		{Stopping, "STOPPING=1"},
		{func() (bool, error) { return Status("MASTER\nepoch 3") }, "STATUS=MASTER epoch 3"},
	} {
		sent, err := tc.call()
		if !sent || err != nil {
			t.Fatalf("sending %q: sent=%v err=%v", tc.want, sent, err)
		}
		if got := recv(t, ch); got != tc.want {
			t.Errorf("received %q, want %q", got, tc.want)
		}
	}
}

func TestAbstractSocket(t *testing.T) {
	b := make([]byte, 8)
	rand.Read(b)
	name, ch := listen(t, "@hbd-sdnotify-test-"+hex.EncodeToString(b))
	t.Setenv(envSocket, name)
	if sent, err := Ready(); !sent || err != nil {
		t.Fatalf("Ready() = %v, %v", sent, err)
	}
	if got := recv(t, ch); got != "READY=1" {
		t.Errorf("received %q, want READY=1", got)
	}
}

func TestNotifyErrors(t *testing.T) {
	t.Setenv(envSocket, filepath.Join(t.TempDir(), "nobody-listens"))
	if sent, err := Ready(); sent || err == nil || !strings.Contains(err.Error(), "sdnotify: connecting") {
		t.Errorf("Ready() to a missing socket = %v, %v; want a connect error", sent, err)
	}
	t.Setenv(envSocket, "vsock:2:1234")
	if _, err := Ready(); err == nil || !strings.Contains(err.Error(), "unsupported NOTIFY_SOCKET") {
		t.Errorf("vsock socket: err = %v, want unsupported", err)
	}
}

func TestWatchdogFrom(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		ok        bool
	}{
		{"", "", 0, false},
		{"5000000", "", 5 * time.Second, true},
		{"5000000", "42", 5 * time.Second, true},
		{"5000000", "43", 0, false}, // meant for another process (a child of ours)
		{"0", "", 0, false},
		{"abc", "", 0, false},
		{"5000000", "x", 0, false},
	} {
		got, err := watchdogFrom(tc.usec, tc.pid, 42)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("watchdogFrom(%q, %q) = %v, %v; want %v, ok=%v", tc.usec, tc.pid, got, err, tc.want, tc.ok)
		}
	}
	t.Setenv(envWatchdogUS, "200000")
	t.Setenv(envWatchdogPID, "")
	if d, ok := WatchdogInterval(); !ok || d != 200*time.Millisecond {
		t.Errorf("WatchdogInterval() = %v, %v; want 200ms, true", d, ok)
	}
	if p := NewPinger(); p.Every() != 100*time.Millisecond {
		t.Errorf("NewPinger().Every() = %v, want 100ms", p.Every())
	}
	t.Setenv(envWatchdogUS, "")
	if p := NewPinger(); p.Enabled() {
		t.Error("NewPinger() without WATCHDOG_USEC is enabled")
	}
}

// TestPingerTiming drives the pure timing decision with a fake clock.
func TestPingerTiming(t *testing.T) {
	var sent []time.Duration
	t0 := time.Unix(1_000_000, 0)
	now := t0
	p := NewPingerFunc(time.Second, func() (bool, error) { sent = append(sent, now.Sub(t0)); return true, nil })
	if !p.Due(now) || p.Next(now) != now {
		t.Fatal("the first ping is not due at once")
	}
	// The loop turns every 70ms for 2s.
	for ; now.Sub(t0) <= 2*time.Second; now = now.Add(70 * time.Millisecond) {
		if _, err := p.Ping(now); err != nil {
			t.Fatal(err)
		}
		if next := p.Next(now); next.Sub(now) > 500*time.Millisecond {
			t.Fatalf("at %v Next is %v away, more than half the interval", now.Sub(t0), next.Sub(now))
		}
	}
	want := []time.Duration{0, 560 * time.Millisecond, 1120 * time.Millisecond, 1680 * time.Millisecond}
	if len(sent) != len(want) {
		t.Fatalf("pings at %v, want %v", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] {
			t.Fatalf("pings at %v, want %v", sent, want)
		}
	}
	// Disabled pingers never ping.
	for _, p := range []*Pinger{nil, {}, NewPingerFunc(0, Watchdog)} {
		if p.Due(now) || !p.Next(now).IsZero() {
			t.Errorf("disabled pinger %+v is due", p)
		}
		if sent, err := p.Ping(now); sent || err != nil {
			t.Errorf("disabled pinger pinged: %v, %v", sent, err)
		}
	}
}

// TestPingerStopsWhenLoopStalls runs a loop that pings a real notify
// socket, stalls it on purpose, and checks that the pings stop while it is
// stuck and come back when it turns again: the pinger has no goroutine of
// its own.
func TestPingerStopsWhenLoopStalls(t *testing.T) {
	name, ch := listen(t, socketPath(t))
	t.Setenv(envSocket, name)
	t.Setenv(envWatchdogUS, "100000") // 100ms: pings every 50ms
	t.Setenv(envWatchdogPID, "")
	p := NewPinger()
	if p.Every() != 50*time.Millisecond {
		t.Fatalf("Every() = %v, want 50ms", p.Every())
	}

	stall := make(chan chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the daemon's main loop, in miniature
		defer wg.Done()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-stop:
				return
			case resume := <-stall:
				<-resume // stuck: a hung handler
			case <-timer.C:
			}
			now := time.Now()
			if _, err := p.Ping(now); err != nil {
				t.Error(err)
				return
			}
			timer.Reset(time.Until(p.Next(time.Now())))
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	count := func(d time.Duration) int {
		n := 0
		deadline := time.After(d)
		for {
			select {
			case m := <-ch:
				if m != "WATCHDOG=1" {
					t.Errorf("unexpected datagram %q", m)
				}
				n++
			case <-deadline:
				return n
			}
		}
	}
	drain := func() {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}

	// Running: about 20 pings in a second; demand a generous 5.
	if n := count(time.Second); n < 5 || n > 25 {
		t.Fatalf("%d pings in 1s from a running loop, want about 20", n)
	}
	resume := make(chan struct{})
	stall <- resume
	time.Sleep(100 * time.Millisecond) // a ping already in flight may still land
	drain()
	if n := count(600 * time.Millisecond); n != 0 {
		t.Fatalf("%d pings while the loop was stuck, want 0", n)
	}
	close(resume)
	if n := count(time.Second); n < 5 {
		t.Fatalf("%d pings in 1s after the loop resumed, want about 20", n)
	}
}
