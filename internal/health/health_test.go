package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/config"
)

// bound is the generous limit for anything that should happen at once: the
// test machine is small and noisy.
const bound = 10 * time.Second

// manualTicks makes r's checks run only when the test sends on the returned
// channel. Sending blocks until the check has finished its previous run
// (including any send on out), so a send after run k means run k is done.
// Use it with one check per runner.
func manualTicks(r *Runner) chan<- time.Time {
	c := make(chan time.Time)
	r.ticker = func(time.Duration) (<-chan time.Time, func()) { return c, func() {} }
	return c
}

func tick(t *testing.T, c chan<- time.Time) {
	t.Helper()
	select {
	case c <- time.Now():
	case <-time.After(bound):
		t.Fatal("check did not come back for its next run")
	}
}

// start runs r until the test ends; out is buffered so that checks never
// block on it.
func start(t *testing.T, r *Runner) (out chan Result, stop func()) {
	t.Helper()
	out = make(chan Result, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx, out)
		close(done)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(bound):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return out, stop
}

func recv(t *testing.T, out <-chan Result) Result {
	t.Helper()
	select {
	case r := <-out:
		return r
	case <-time.After(bound):
		t.Fatal("no result")
		return Result{}
	}
}

func drainAll(out chan Result) []Result {
	var rs []Result
	for {
		select {
		case r := <-out:
			rs = append(rs, r)
		default:
			return rs
		}
	}
}

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// TestHTTPRiseFall scripts the statuses a server returns run by run and
// checks that the state changes on exactly the runs rise and fall predict.
func TestHTTPRiseFall(t *testing.T) {
	script := []int{
		503,           // 1: still failing
		200, 200, 503, // 2-4: two passes, then a failure resets rise
		200, 200, 200, // 5-7: three in a row: healthy at run 7
		503, 200, // 8-9: one failure, a pass resets fall
		503, 503, // 10-11: two in a row: failing at run 11
		200, // 12
	}
	var (
		mu       sync.Mutex
		requests int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		status := 200
		if n <= len(script) {
			status = script[n-1]
		}
		w.WriteHeader(status)
		fmt.Fprintln(w, "body", n)
	}))
	defer srv.Close()

	r := New([]config.Track{{
		Name: "web", Type: "http", URL: srv.URL + "/healthz", ExpectStatus: 200,
		Interval: dur(bound / 2), Timeout: dur(bound / 2), Rise: 3, Fall: 2, Weight: 50,
	}}, nil)
	ticks := manualTicks(r)
	out, stop := start(t, r)

	first := recv(t, out)
	if first.Healthy || first.Name != "web" || first.Weight != 50 || first.Detail != notChecked {
		t.Fatalf("initial result = %+v, want failing, web, weight 50, %q", first, notChecked)
	}

	var changedAt []int
	seen := 0
	for run := 1; run <= len(script); run++ {
		tick(t, ticks) // returns once run is done
		if n := len(out); n > seen {
			changedAt = append(changedAt, run)
			seen = n
		}
	}
	stop()
	if want := []int{7, 11}; fmt.Sprint(changedAt) != fmt.Sprint(want) {
		t.Errorf("state changed on runs %v, want %v", changedAt, want)
	}
	rs := drainAll(out)
	if len(rs) != 2 {
		t.Fatalf("got %d changes, want 2: %+v", len(rs), rs)
	}
	if !rs[0].Healthy || rs[0].Detail != "GET "+srv.URL+"/healthz: status 200" {
		t.Errorf("first change = %+v, want healthy with status 200", rs[0])
	}
	if rs[1].Healthy || !strings.Contains(rs[1].Detail, "status 503") {
		t.Errorf("second change = %+v, want failing with status 503", rs[1])
	}
	mu.Lock()
	defer mu.Unlock()
	// Run 13 may have started before the cancel.
	if requests < len(script) || requests > len(script)+1 {
		t.Errorf("server saw %d requests, want %d runs", requests, len(script))
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	const timeout = 100 * time.Millisecond
	r := New([]config.Track{{
		Name: "hang", Type: "http", URL: srv.URL, Interval: dur(timeout), Timeout: dur(timeout),
		Rise: 1, Fall: 1, Fault: true,
	}}, nil)
	ticks := manualTicks(r)
	out, _ := start(t, r)
	recv(t, out)
	begin := time.Now()
	tick(t, ticks) // run 1 done
	took := time.Since(begin)
	if took < timeout {
		t.Errorf("run took %s, less than the %s timeout", took, timeout)
	}
	s := r.Snapshot()[0]
	if s.Healthy || s.Detail != "GET "+srv.URL+": timeout after 100ms" {
		t.Errorf("snapshot = %+v, want failing with a timeout", s)
	}
	if len(out) != 0 {
		t.Errorf("a failing check that stays failing sent a change: %+v", <-out)
	}
}

func TestHTTPRedirectNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	p := newHTTPProbe(srv.URL, 302, time.Second)
	if pass, detail := p.probe(context.Background(), time.Second); !pass {
		t.Errorf("probe expecting 302 failed: %s", detail)
	}
}

func TestHTTPRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	p := newHTTPProbe(u, 200, time.Second)
	pass, detail := p.probe(context.Background(), time.Second)
	if want := "GET " + u + ": dial tcp " + strings.TrimPrefix(u, "http://") + ": connect: connection refused"; pass || detail != want {
		t.Errorf("probe = %v, %q; want false, %q", pass, detail, want)
	}
}

func TestExecTrueFalse(t *testing.T) {
	for _, tc := range []struct {
		argv    []string
		healthy bool
		detail  string
	}{
		{[]string{"/bin/true"}, true, "exit status 0"},
		{[]string{"/bin/false"}, false, "exit status 1"},
		{[]string{"/bin/sh", "-c", "echo broken >&2; exit 3"}, false, "exit status 3: broken"},
		{[]string{"/nonexistent/prog"}, false, "fork/exec /nonexistent/prog: no such file or directory"},
	} {
		t.Run(tc.argv[0], func(t *testing.T) {
			r := New([]config.Track{{
				Name: "x", Type: "exec", Command: tc.argv,
				Interval: dur(bound / 2), Timeout: dur(bound / 2), Rise: 1, Fall: 1, Weight: 10,
			}}, nil)
			ticks := manualTicks(r)
			out, _ := start(t, r)
			recv(t, out)
			tick(t, ticks)
			s := r.Snapshot()[0]
			if s.Healthy != tc.healthy || s.Detail != tc.detail {
				t.Errorf("snapshot = %+v, want healthy=%v detail %q", s, tc.healthy, tc.detail)
			}
			if tc.healthy {
				if c := recv(t, out); !c.Healthy {
					t.Errorf("change = %+v, want healthy", c)
				}
			}
		})
	}
}

// TestExecTimeoutKillsGroup runs a script that starts a grandchild and
// hangs; on timeout both must be gone, not just the script.
func TestExecTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hang.sh")
	body := "#!/bin/sh\n/bin/sleep 60 &\necho $! > \"$1/child\"\necho $$ > \"$1/leader\"\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	const timeout = 2 * time.Second // long enough for the script to write its pids on a loaded machine
	r := New([]config.Track{{
		Name: "slow", Type: "exec", Command: []string{"/bin/sh", script, dir},
		Interval: dur(timeout), Timeout: dur(timeout), Rise: 1, Fall: 1, Weight: 10,
	}}, nil)
	ticks := manualTicks(r)
	out, _ := start(t, r)
	recv(t, out)
	begin := time.Now()
	tick(t, ticks)
	if took := time.Since(begin); took > bound/2 {
		t.Errorf("run took %s; the timeout is %s", took, timeout)
	}
	if s := r.Snapshot()[0]; s.Healthy || s.Detail != "timeout after 2s" {
		t.Errorf("snapshot = %+v, want failing, timeout after 2s", s)
	}
	for _, name := range []string{"leader", "child"} {
		pid := readPID(t, filepath.Join(dir, name))
		waitGone(t, name, pid)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the script did not write its pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("bad pid %q in %s", b, path)
	}
	return pid
}

// waitGone waits until pid no longer runs: it does not exist, or it is a
// zombie (killed, waiting for its new parent to reap it).
func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // don't leave it behind
			t.Fatalf("%s (pid %d) still runs after the timeout", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func TestInterface(t *testing.T) {
	for _, tc := range []struct {
		iface   string
		healthy bool
		detail  string
	}{
		{"lo", true, "link up"},
		{"hbdnosuch0", false, "interface hbdnosuch0: no such network interface"},
	} {
		t.Run(tc.iface, func(t *testing.T) {
			r := New([]config.Track{{
				Name: "link", Type: "interface", Interface: tc.iface,
				Interval: dur(bound / 2), Rise: 1, Fall: 1, Fault: true,
			}}, nil)
			ticks := manualTicks(r)
			out, _ := start(t, r)
			recv(t, out)
			tick(t, ticks)
			if s := r.Snapshot()[0]; s.Healthy != tc.healthy || s.Detail != tc.detail {
				t.Errorf("snapshot = %+v, want healthy=%v %q", s, tc.healthy, tc.detail)
			}
		})
	}
}

// TestRunRealClock runs two checks on the real ticker: both report their
// initial state, the passing one turns healthy, and Run returns on cancel.
func TestRunRealClock(t *testing.T) {
	r := New([]config.Track{
		{Name: "ok", Type: "exec", Command: []string{"/bin/true"}, Interval: dur(500 * time.Millisecond), Rise: 2, Weight: 1},
		{Name: "bad", Type: "exec", Command: []string{"/bin/false"}, Interval: dur(500 * time.Millisecond), Fault: true},
	}, nil)
	if s := r.Snapshot(); len(s) != 2 || s[0].Healthy || s[1].Healthy || s[0].Detail != notChecked {
		t.Fatalf("snapshot before Run = %+v, want two failing checks", s)
	}
	out, stop := start(t, r)
	got := map[string][]bool{}
	for len(got["ok"]) < 2 || len(got["bad"]) < 1 {
		res := recv(t, out)
		got[res.Name] = append(got[res.Name], res.Healthy)
	}
	stop()
	if fmt.Sprint(got["ok"]) != "[false true]" || fmt.Sprint(got["bad"]) != "[false]" {
		t.Errorf("changes = %v, want ok [false true], bad [false]", got)
	}
	if s := r.Snapshot(); !s[0].Healthy || s[1].Healthy || s[1].Detail != "exit status 1" {
		t.Errorf("snapshot = %+v", s)
	}
}

func TestUnknownType(t *testing.T) {
	r := New([]config.Track{{Name: "x", Type: "carrier-pigeon", Rise: 1}}, nil)
	ticks := manualTicks(r)
	out, _ := start(t, r)
	recv(t, out)
	tick(t, ticks)
	if s := r.Snapshot()[0]; s.Healthy || !strings.Contains(s.Detail, "unknown check type") {
		t.Errorf("snapshot = %+v", s)
	}
}

func TestRunNoChecks(t *testing.T) {
	r := New(nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, nil); close(done) }()
	select {
	case <-done:
		t.Fatal("Run with no checks returned before cancel")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatal("Run did not return after cancel")
	}
	if s := r.Snapshot(); len(s) != 0 {
		t.Errorf("snapshot = %+v", s)
	}
}
