package webapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/redistest"
	"github.com/hbdproject/hbd/webapp"
)

// wait is the generous bound for anything a test waits for: the CI machine
// has two cores and is noisy.
const wait = 30 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// app is one web app instance behind httptest on 127.0.0.1.
type app struct {
	srv *webapp.Server
	hs  *httptest.Server
	rdb redis.UniversalClient
	URL string
}

func (a *app) close() { a.hs.Close(); a.rdb.Close() }

// startApp starts an instance whose sessions live at redisOpts.
func startApp(t testing.TB, cfg webapp.Config, redisOpts redisconn.Options) *app {
	t.Helper()
	rdb, err := redisconn.New(redisOpts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := webapp.New(cfg, rdb, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	a := &app{srv: srv, hs: hs, rdb: rdb, URL: hs.URL}
	t.Cleanup(a.close)
	return a
}

func startAppOn(t testing.TB, node string, r *redistest.Server) *app {
	t.Helper()
	return startApp(t, webapp.Config{Node: node}, redisconn.Options{URL: r.URL()})
}

// client is a browser-like HTTP client with its own cookie jar.
type client struct {
	t   testing.TB
	hc  *http.Client
	jar *cookiejar.Jar
}

func newClient(t testing.TB) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, jar: jar, hc: &http.Client{Jar: jar, Timeout: wait}}
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
	// Close reports Connection: close (net/http strips the header itself).
	Close bool
}

func (r response) str(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

func newRequest(t testing.TB, method, u, contentType string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

func (c *client) do(method, u, contentType string, body io.Reader) response {
	c.t.Helper()
	return c.send(newRequest(c.t, method, u, contentType, body))
}

func (c *client) send(req *http.Request) response {
	c.t.Helper()
	method, u := req.Method, req.URL
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	out := response{Status: res.StatusCode, Header: res.Header, Body: b, Close: res.Close}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &out.JSON); err != nil {
			c.t.Fatalf("%s %s: body is not JSON: %v: %q", method, u, err, b)
		}
	}
	return out
}

func (c *client) get(u string) response { c.t.Helper(); return c.do("GET", u, "", nil) }

func (c *client) saveName(base, name string) response {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"name": name})
	return c.do("POST", base+"/api/session", "application/json", bytes.NewReader(b))
}

func (c *client) readName(base string) response {
	c.t.Helper()
	return c.get(base + "/api/session")
}

// sessionID returns the session cookie the jar holds for base, or "".
func (c *client) sessionID(base string) string {
	u, _ := url.Parse(base)
	for _, k := range c.jar.Cookies(u) {
		if k.Name == webapp.CookieName {
			return k.Value
		}
	}
	return ""
}

// setSessionID plants a session cookie, as an attacker or a stale browser would.
func (c *client) setSessionID(base, id string) {
	u, _ := url.Parse(base)
	c.jar.SetCookies(u, []*http.Cookie{{Name: webapp.CookieName, Value: id, Path: "/"}})
}

func wantStatus(t testing.TB, what string, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, status, r.Body)
	}
}

// eventually polls f every 50ms until it returns nil or d passes.
func eventually(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running is an instance run by runApp.
type running struct {
	srv   *webapp.Server
	URL   string
	Admin string
	stop  func() error
	done  chan error
}

// runApp runs an instance with Serve on real 127.0.0.1 listeners, as the
// command does (cfg.Redis names Redis; the Server owns the client), and
// returns its addresses and a stop func that cancels it and returns Serve's
// result.
func runApp(t testing.TB, cfg webapp.Config) *running {
	t.Helper()
	srv, err := webapp.New(cfg, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, aln) }()
	var once bool
	var result error
	ra := &running{srv: srv, URL: "http://" + ln.Addr().String(), Admin: "http://" + aln.Addr().String(), done: done}
	ra.stop = func() error {
		if once {
			return result
		}
		once = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(wait):
			result = errors.New("Serve did not return")
		}
		return result
	}
	t.Cleanup(func() { _ = ra.stop() })
	return ra
}
