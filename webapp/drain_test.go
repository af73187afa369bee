package webapp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/redistest"
	"github.com/hbdproject/hbd/webapp"
)

// slowRequest is a POST /api/session whose body arrives in two parts, so the
// request is in flight (its handler waits for the rest of the body) for as
// long as the test likes. It uses a raw connection to control the timing.
type slowRequest struct {
	t    *testing.T
	conn net.Conn
	rest string
}

func startSlowSave(t *testing.T, base, name string) *slowRequest {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.DialTimeout("tcp", u.Host, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := `{"name":"` + name + `"}`
	head, rest := body[:5], body[5:]
	fmt.Fprintf(conn, "POST /api/session HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		u.Host, len(body), head)
	return &slowRequest{t: t, conn: conn, rest: rest}
}

// finish sends the rest of the body and reads the response.
func (s *slowRequest) finish() (*http.Response, string) {
	s.t.Helper()
	_ = s.conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(s.conn, s.rest); err != nil {
		s.t.Fatalf("finishing the slow request: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		s.t.Fatalf("reading the slow request's response: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func waitInflight(t *testing.T, srv *webapp.Server, n int) {
	t.Helper()
	eventually(t, wait, fmt.Sprintf("inflight reaches %d", n), func() error {
		if got := srv.Inflight(); got != n {
			return fmt.Errorf("inflight %d", got)
		}
		return nil
	})
}

func TestDrainLetsInflightFinish(t *testing.T) {
	r := redistest.Start(t)
	ra := runApp(t, webapp.Config{Node: "pc01", Redis: redisconn.Options{URL: r.URL()}})
	c := newClient(t)
	admin := newClient(t)

	res := admin.get(ra.Admin + "/admin/inflight")
	wantStatus(t, "inflight", res, 200)
	if res.JSON["inflight"] != 0.0 || res.JSON["draining"] != false {
		t.Fatalf("idle inflight %s", res.Body)
	}

	slow := startSlowSave(t, ra.URL, "Slowpoke")
	waitInflight(t, ra.srv, 1)

	res = admin.do("POST", ra.Admin+"/admin/drain", "", nil)
	wantStatus(t, "drain", res, 200)
	if res.JSON["draining"] != true {
		t.Fatalf("drain answer %s", res.Body)
	}
	res = admin.get(ra.Admin + "/admin/inflight")
	if res.JSON["inflight"] != 1.0 || res.JSON["draining"] != true {
		t.Fatalf("inflight while draining %s", res.Body)
	}

	res = c.get(ra.URL + "/healthz")
	wantStatus(t, "healthz while draining", res, 503)
	if res.str("status") != "draining" {
		t.Fatalf("healthz body %s", res.Body)
	}
	if !res.Close {
		t.Errorf("healthz while draining lacks Connection: close: %v", res.Header)
	}
	res = c.get(ra.URL + "/api/whoami")
	wantStatus(t, "whoami while draining", res, 200)
	if res.JSON["draining"] != true {
		t.Errorf("whoami while draining %s", res.Body)
	}

	// The request that was in flight when drain began finishes normally,
	// and tells its client to go elsewhere next time.
	hres, body := slow.finish()
	if hres.StatusCode != 200 || !strings.Contains(body, "Slowpoke") {
		t.Fatalf("in-flight request: %d %s", hres.StatusCode, body)
	}
	if !hres.Close {
		t.Errorf("in-flight request finished during drain without Connection: close: %v", hres.Header)
	}
	waitInflight(t, ra.srv, 0)

	// Drain keeps serving: new requests still work (the handover moves
	// the VIP, the app does not refuse work).
	wantStatus(t, "save while draining", c.saveName(ra.URL, "Late"), 200)

	res = admin.do("POST", ra.Admin+"/admin/undrain", "", nil)
	wantStatus(t, "undrain", res, 200)
	res = c.get(ra.URL + "/healthz")
	wantStatus(t, "healthz after undrain", res, 200)
	if res.Close {
		t.Error("Connection: close after undrain")
	}
	if res := admin.get(ra.Admin + "/admin/drain"); res.Status != 405 {
		t.Errorf("GET /admin/drain: %d", res.Status)
	}

	// The admin endpoints are not on the main listener.
	wantStatus(t, "admin on main listener", c.do("POST", ra.URL+"/admin/drain", "", nil), 404)
	if ra.srv.Draining() {
		t.Fatal("POST /admin/drain on the main listener drained the server")
	}
}

// Ending Run's context drains and shuts down gracefully: a request in flight
// completes, and Serve returns nil once it has.
func TestGracefulShutdown(t *testing.T) {
	r := redistest.Start(t)
	ra := runApp(t, webapp.Config{Node: "pc01", DrainTimeout: wait, Redis: redisconn.Options{URL: r.URL()}})
	slow := startSlowSave(t, ra.URL, "LastOne")
	waitInflight(t, ra.srv, 1)

	stopped := make(chan error, 1)
	go func() { stopped <- ra.stop() }()
	eventually(t, wait, "drain on shutdown", func() error {
		if !ra.srv.Draining() {
			return fmt.Errorf("not draining")
		}
		return nil
	})
	// New connections are refused once shutdown has begun...
	eventually(t, wait, "listener closed", func() error {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(ra.URL, "http://"), time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("still accepting")
		}
		return nil
	})
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	// ...but the one in flight completes.
	hres, body := slow.finish()
	if hres.StatusCode != 200 || !strings.Contains(body, "LastOne") {
		t.Fatalf("in-flight request during shutdown: %d %s", hres.StatusCode, body)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return after the last request")
	}
}

// A request that never finishes does not hold shutdown past DrainTimeout.
func TestShutdownTimeout(t *testing.T) {
	r := redistest.Start(t)
	ra := runApp(t, webapp.Config{Node: "pc01", DrainTimeout: 300 * time.Millisecond, Redis: redisconn.Options{URL: r.URL()}})
	startSlowSave(t, ra.URL, "Never")
	waitInflight(t, ra.srv, 1)
	start := time.Now()
	err := ra.stop()
	if err == nil || !strings.Contains(err.Error(), "in flight") {
		t.Fatalf("Serve returned %v, want a timeout naming the requests in flight", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %v with a 300ms drain timeout", d)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []webapp.Config{
		{Node: "pc01", Admin: "0.0.0.0:8081"},
		{Node: "pc01", Admin: "192.0.2.1:8081"},
		{Node: "pc01", Admin: "nohost"},
		{Node: "pc01", Admin: "127.0.0.1:8081"}, // TCP without a token
		{Node: "pc01", Admin: "unix:relative.sock"},
		{Node: "pc01", Listen: "8080"},
		{Node: "pc01", SessionTTL: time.Millisecond},
		{Node: "bad\nname"},
	} {
		if _, err := webapp.New(cfg, nil, nil); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
	for _, o := range []redisconn.Options{
		{URL: "http://localhost"},
		{URL: "redis://u:secret@host:notaport/0"},
		{SentinelMaster: "m"},
		{SentinelAddrs: []string{"127.0.0.1:26379"}},
		{SentinelMaster: "m", SentinelAddrs: []string{"a:1"}, ClusterAddrs: []string{"b:2"}},
	} {
		_, err := redisconn.New(o)
		if err == nil {
			t.Errorf("redisconn.New(%+v) accepted invalid options", o)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q leaks the password", err)
		}
	}
	for _, admin := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		srv, err := webapp.New(webapp.Config{Node: "pc01", Admin: admin, AdminToken: "t"}, nil, nil)
		if err != nil {
			t.Errorf("admin %s refused: %v", admin, err)
			continue
		}
		srv.Close()
	}
}
