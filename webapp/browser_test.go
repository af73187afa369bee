package webapp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/redistest"
	"github.com/hbdproject/hbd/internal/testenv"
	"github.com/hbdproject/hbd/webapp"
)

// newBrowser starts headless Chromium for the test and returns a chromedp
// context whose browser is already running.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	chromium := testenv.RequireCommand(t, "chromium", "chromium")
	profile := t.TempDir() // made before the browser's cleanup, so removed after it
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // we run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(900, 720),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx) }() // starts the browser, bound to ctx
	select {
	case err := <-start:
		if err != nil {
			t.Fatalf("starting chromium: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("chromium did not start")
	}
	return ctx
}

// step runs actions with the test's generous bound.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func resultHas(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](
		`document.getElementById("result").textContent.includes(`+jsString(text)+`)`,
		chromedp.WithPollingTimeout(wait))
}

func jsString(s string) string {
	// A template literal: fine for the fixed strings used here (no backticks).
	return "`" + s + "`"
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("HBD_SCREENSHOT_DIR") // keep them past the test
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// A person's use of the page in a real browser: an empty name is refused
// without a request, 小潘 is saved and read back with the node's name, the
// strip draws the polls, and a Redis outage shows on the page.
func TestBrowserPage(t *testing.T) {
	r := redistest.Start(t)
	rdb, err := redisconn.New(redisconn.Options{URL: r.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	srv, err := webapp.New(webapp.Config{Node: "pc02", Version: "1.4.2"}, rdb, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// A second node on the same Redis; swapping which one answers behind
	// the one address is what a VIP move looks like to the browser.
	other, err := webapp.New(webapp.Config{Node: "pc01", Version: "1.4.2"}, rdb, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var serving atomic.Pointer[webapp.Server]
	serving.Store(srv)
	var saves atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == "POST" && req.URL.Path == "/api/session" {
			saves.Add(1)
		}
		serving.Load().Handler().ServeHTTP(w, req)
	}))
	t.Cleanup(hs.Close)

	ctx := newBrowser(t)
	step(t, ctx, "load the page",
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("name")),
	)

	step(t, ctx, "save an empty name",
		chromedp.Click(chromedp.ID("save")),
		resultHas("Please type a name first."),
	)
	if n := saves.Load(); n != 0 {
		t.Fatalf("an empty name sent %d save request(s)", n)
	}

	step(t, ctx, "save 小潘",
		chromedp.SendKeys(chromedp.ID("name"), "小潘"),
		chromedp.Click(chromedp.ID("save")),
		resultHas("Saved 小潘 — served by pc02"),
	)
	step(t, ctx, "read it back",
		// Clear the box, so the name can only come from the session.
		chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = ""`),
		chromedp.Click(chromedp.ID("read")),
		resultHas("Hello, 小潘 — served by pc02"),
	)
	if n := saves.Load(); n != 1 {
		t.Fatalf("%d save requests, want 1", n)
	}
	step(t, ctx, "the strip draws polls",
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#strip .cell:not(.fail)").length >= 4`,
			chromedp.WithPollingTimeout(wait)),
		chromedp.Poll[chromedp.Void](`document.getElementById("legend").textContent.includes("pc02")`,
			chromedp.WithPollingTimeout(wait)),
	)

	serving.Store(other) // "failover"
	step(t, ctx, "the strip shows the other node",
		chromedp.Poll[chromedp.Void](`document.getElementById("legend").textContent.includes("pc01")`,
			chromedp.WithPollingTimeout(wait)),
		chromedp.Click(chromedp.ID("read")),
		resultHas("Hello, 小潘 — served by pc01 (saved on pc02)"),
	)
	screenshot(t, ctx, "webapp-page.png")

	r.Kill()
	step(t, ctx, "read with Redis down",
		chromedp.Click(chromedp.ID("read")),
		resultHas("Error 503"),
	)
	screenshot(t, ctx, "webapp-redis-down.png")
}
