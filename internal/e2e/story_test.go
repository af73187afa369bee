package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbdproject/hbd/internal/lab/cluster"
	"github.com/hbdproject/hbd/internal/testenv"
)

func TestKill9OfMastersDaemonKeepsSessions(t *testing.T) {
	c := startElected(t, cluster.Options{})
	hc := sessionClient(c)
	saveName(t, hc, "小潘")
	must(t, c.KillHbd("pc01"))
	if _, err := c.WaitOnlyHolder("pc02", 6*time.Second); err != nil {
		t.Fatal(err)
	}
	name, node, err := readName(hc)
	must(t, err)
	if name != "小潘" || node != "pc02" {
		t.Errorf("after kill -9 of pc01's hbd: %q from %s", name, node)
	}
}

func TestSIGSTOPOfMasterThenSIGCONT(t *testing.T) {
	c := startElected(t, cluster.Options{Preempt: ptr(false)})
	s := watchHolders(t, c)
	hbd1 := c.Nodes["pc01"].Hbd
	must(t, hbd1.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	// The standby takes over after dead_after; the frozen node's VIP
	// expires by itself within its kernel lifetime.
	deadline := time.Now().Add(2 * time.Second)
	for !c.Holds("pc02") {
		if time.Now().After(deadline) {
			t.Fatal("pc02 did not take over from a frozen pc01")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("pc02 claimed %s after SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	if _, err := c.WaitOnlyHolder("pc02", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("frozen pc01's VIP gone %s after SIGSTOP", time.Since(stopped).Round(time.Millisecond))
	time.Sleep(time.Second)
	must(t, hbd1.Signal(syscall.SIGCONT))
	time.Sleep(3 * time.Second)
	must(t, s.Stop())
	double := holders(t, s).DoubleHolderDuration()
	t.Logf("two holders for %s in all (VIP lifetime 2s)", double)
	if double > 3*time.Second {
		t.Errorf("two holders for %s, longer than the VIP lifetime plus the kernel's slack", double)
	}
	if h := c.Holders(); len(h) != 1 || h[0] != "pc02" {
		t.Errorf("after SIGCONT holders %v, want [pc02]", h)
	}
	st, err := c.Status(context.Background(), "pc01")
	must(t, err)
	st2, err := c.Status(context.Background(), "pc02")
	must(t, err)
	if st.State != "BACKUP" || st.Epoch >= st2.Epoch {
		t.Errorf("woken pc01: %s epoch %d (pc02 epoch %d); want BACKUP with an older epoch", st.State, st.Epoch, st2.Epoch)
	}
	if !strings.Contains(st.LastReason, "stalled") {
		t.Errorf("pc01's last transition: %q", st.LastReason)
	}
}

func TestWholeHostDies(t *testing.T) {
	c := startElected(t, cluster.Options{})
	hc := sessionClient(c)
	saveName(t, hc, "小潘")
	// All of pc01's processes die and its cable is pulled at once.
	// (t.Fatal belongs to the test's goroutine: the others report errors.)
	fs := []func() error{func() error { return c.KillHbd("pc01") }, func() error { return c.KillApp("pc01") }, func() error { return c.Lab.CablePull("pc01") }}
	errs := make(chan error, len(fs))
	for _, f := range fs {
		go func() { errs <- f() }()
	}
	for range fs {
		must(t, <-errs)
	}
	took := waitServedBy(t, c, cluster.URL("/api/whoami"), "pc02", 5*time.Second)
	t.Logf("pc02 serves %s after pc01 died", took.Round(time.Millisecond))
	name, node, err := readName(hc)
	must(t, err)
	if name != "小潘" || node != "pc02" {
		t.Errorf("session after the host died: %q from %s", name, node)
	}
}

func TestFailBack(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("preempt=%v", preempt), func(t *testing.T) {
			c := startElected(t, cluster.Options{Preempt: ptr(preempt)})
			must(t, c.Lab.CablePull("pc01"))
			if _, err := c.WaitOnlyHolder("pc02", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			s := watchHolders(t, c)
			must(t, c.Lab.CablePlug("pc01"))
			want := "pc02"
			if preempt {
				want = "pc01"
				if _, err := c.WaitOnlyHolder("pc01", 10*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(3 * time.Second) // hold-down (1s) and then some
			must(t, s.Stop())
			if h := c.Holders(); len(h) != 1 || h[0] != want {
				t.Errorf("holders %v, want [%s]", h, want)
			}
			if holders(t, s).MaxConcurrent() > 1 {
				t.Errorf("two holders during fail-back:\n%s", holders(t, s))
			}
		})
	}
}

func TestThousandSessionsSurviveTenFailovers(t *testing.T) {
	c := startElected(t, cluster.Options{AppTrack: true})
	const n = 1000
	clients := make([]*httpClientWithName, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range clients {
		clients[i] = &httpClientWithName{hc: sessionClient(c), name: fmt.Sprintf("user-%04d-小潘", i)}
		wg.Add(1)
		sem <- struct{}{}
		go func(cl *httpClientWithName) {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := postName(cl.hc, cl.name)
			errs <- err
		}(clients[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err) // on the test's goroutine
	}
	// Ten failovers, alternating: kill -9 the master's web app, wait for
	// the other host to hold the VIP, restart the app.
	master := "pc01"
	for i := 0; i < 10; i++ {
		other := map[string]string{"pc01": "pc02", "pc02": "pc01"}[master]
		waitNodeReady(t, c, other)
		must(t, c.KillApp(master))
		if _, err := c.WaitOnlyHolder(other, 5*time.Second); err != nil {
			t.Fatalf("failover %d: %v", i+1, err)
		}
		must(t, c.StartApp(master, "v1"))
		if i < 9 {
			// With preempt the restarted higher-priority pc01 takes the VIP
			// back by handover; wait until things settle either way.
			time.Sleep(500 * time.Millisecond)
			h := c.Holders()
			if len(h) != 1 {
				t.Fatalf("holders %v after failover %d", h, i+1)
			}
			master = h[0]
		}
	}
	var mu sync.Mutex
	lost := 0
	for i, cl := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name, _, err := readName(cl.hc)
			if err != nil || name != cl.name {
				mu.Lock()
				lost++
				mu.Unlock()
				t.Errorf("session %d: %q, %v", i, name, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d sessions written, %d lost after 10 failovers", n, lost)
}

type httpClientWithName struct {
	hc   *http.Client
	name string
}

// TestBrowserThroughVIP drives the page in a real headless Chromium running
// in the client namespace: save, pull the master's cable, read.
func TestBrowserThroughVIP(t *testing.T) {
	chromium := testenv.RequireCommand(t, "chromium", "chromium")
	c := startElected(t, cluster.Options{})
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "chromium-in-client")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", c.Lab.Host("client").Netns, chromium)
	must(t, os.WriteFile(wrapper, []byte(script), 0o755))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(wrapper), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(900, 720))
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The browser belongs to the first context it is run with: start it on
	// ctx itself, not on a step's shorter-lived one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium in the client namespace: %v", err)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	resultHas := func(s string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void]("document.getElementById('result').textContent.includes(`"+s+"`)", chromedp.WithPollingTimeout(20*time.Second))
	}
	run("load the page through the VIP", chromedp.Navigate(cluster.URL("/")), chromedp.WaitVisible(chromedp.ID("name")))
	run("save 小潘", chromedp.SendKeys(chromedp.ID("name"), "小潘"), chromedp.Click(chromedp.ID("save")), resultHas("served by pc01"))
	must(t, c.Lab.CablePull("pc01"))
	if _, err := c.WaitOnlyHolder("pc02", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	run("read after the cable pull",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = ""`),
		chromedp.Click(chromedp.ID("read")),
		resultHas("Hello, 小潘 — served by pc02"))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	must(t, err)
	shot := filepath.Join(dir, "after-cable-pull.png")
	must(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot: %s", shot)
}
