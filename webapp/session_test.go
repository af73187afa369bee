package webapp_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/redistest"
	"github.com/hbdproject/hbd/webapp"
)

// A session saved on one node is read on another, and survives a restart of
// the app that saved it: it lives in Redis, not in the app.
func TestSessionSurvivesRestartAndMovesToOtherNode(t *testing.T) {
	r := redistest.Start(t)
	c := newClient(t)

	a := startAppOn(t, "pc01", r)
	res := c.saveName(a.URL, "小潘")
	wantStatus(t, "save on pc01", res, 200)
	if res.str("name") != "小潘" || res.str("node") != "pc01" {
		t.Fatalf("save answer %s", res.Body)
	}
	if res.Header.Get("X-Served-By") != "pc01" || res.Header.Get("X-App-Version") != "dev" {
		t.Fatalf("identity headers %v", res.Header)
	}
	a.close() // the app goes away

	// A second instance (another node) reads it. The jar is keyed by
	// host, and both instances are on 127.0.0.1, as behind one VIP.
	b := startApp(t, webapp.Config{Node: "pc02", Version: "v2"}, redisconn.Options{URL: r.URL()})
	res = c.readName(b.URL)
	wantStatus(t, "read on pc02", res, 200)
	if res.str("name") != "小潘" || res.str("node") != "pc02" || res.str("saved_by") != "pc01" || res.str("version") != "v2" {
		t.Fatalf("read answer %s", res.Body)
	}

	// The restarted first instance reads it too, through the seed endpoint.
	a2 := startAppOn(t, "pc01", r)
	res = c.do("POST", a2.URL+"/test/query", "application/x-www-form-urlencoded", nil)
	wantStatus(t, "seed query on restarted pc01", res, 200)
	if got := string(res.Body); got != "Hello,小潘,I am pc01" {
		t.Fatalf("seed query answered %q", got)
	}
}

func TestSeedEndpoints(t *testing.T) {
	r := redistest.Start(t)
	a := startAppOn(t, "pc02", r)
	c := newClient(t)

	res := c.do("POST", a.URL+"/test/query", "", nil)
	wantStatus(t, "query without session", res, 200)
	if string(res.Body) != "Session is empty" {
		t.Fatalf("empty query answered %q", res.Body)
	}
	res = c.do("POST", a.URL+"/test/save", "application/x-www-form-urlencoded",
		strings.NewReader("personName="+"%E5%B0%8F%E6%BD%98"))
	wantStatus(t, "seed save", res, 200)
	if string(res.Body) != "pc02,Session saved" {
		t.Fatalf("seed save answered %q", res.Body)
	}
	res = c.do("POST", a.URL+"/test/query", "", nil)
	if string(res.Body) != "Hello,小潘,I am pc02" {
		t.Fatalf("seed query answered %q", res.Body)
	}
	// The JSON API sees the same session.
	res = c.readName(a.URL)
	wantStatus(t, "JSON read", res, 200)
	if res.str("name") != "小潘" {
		t.Fatalf("JSON read %s", res.Body)
	}
}

func pttl(t *testing.T, r *redistest.Server, id string) time.Duration {
	t.Helper()
	s, err := r.Do("PTTL", webapp.DefaultKeyPrefix+id)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("PTTL answered %q", s)
	}
	return time.Duration(ms) * time.Millisecond
}

// Reading a session restarts its TTL; an unread one expires.
func TestSessionTTLSlides(t *testing.T) {
	r := redistest.Start(t)
	const ttl = time.Minute
	a := startApp(t, webapp.Config{Node: "pc01", SessionTTL: ttl}, redisconn.Options{URL: r.URL()})
	c := newClient(t)
	wantStatus(t, "save", c.saveName(a.URL, "Alice"), 200)
	id := c.sessionID(a.URL)
	if id == "" {
		t.Fatal("no session cookie after save")
	}
	if d := pttl(t, r, id); d <= ttl-5*time.Second || d > ttl {
		t.Fatalf("TTL right after save is %v, want about %v", d, ttl)
	}
	time.Sleep(1100 * time.Millisecond)
	before := pttl(t, r, id)
	if before > ttl-time.Second {
		t.Fatalf("TTL did not run down: %v", before)
	}
	wantStatus(t, "read", c.readName(a.URL), 200)
	if after := pttl(t, r, id); after <= before {
		t.Fatalf("TTL after read %v, not above %v before it: it did not slide", after, before)
	}

	// With a 1s TTL, an unread session is gone, and reading it afterwards
	// answers 404 and clears the cookie.
	short := startApp(t, webapp.Config{Node: "pc01", SessionTTL: time.Second}, redisconn.Options{URL: r.URL()})
	c2 := newClient(t)
	wantStatus(t, "save", c2.saveName(short.URL, "Bob"), 200)
	id2 := c2.sessionID(short.URL)
	eventually(t, wait, "session expires", func() error {
		if n, _ := r.Do("EXISTS", webapp.DefaultKeyPrefix+id2); n != "0" {
			return fmt.Errorf("key still exists")
		}
		return nil
	})
	res := c2.readName(short.URL)
	wantStatus(t, "read expired", res, 404)
	if res.str("error") != "no_session" {
		t.Fatalf("expired read %s", res.Body)
	}
	if c2.sessionID(short.URL) != "" {
		t.Fatal("the cookie of an expired session was not cleared")
	}
}

// A session ID the server never issued is not adopted: reading with it
// finds nothing, and saving with it issues a new ID. Saving also rotates a
// real ID, so a planted one never carries the victim's data.
func TestSessionFixation(t *testing.T) {
	r := redistest.Start(t)
	a := startAppOn(t, "pc01", r)
	c := newClient(t)

	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	planted := base64.RawURLEncoding.EncodeToString(raw)
	c.setSessionID(a.URL, planted)

	res := c.readName(a.URL)
	wantStatus(t, "read with planted ID", res, 404)
	if c.sessionID(a.URL) != "" {
		t.Fatal("planted cookie not cleared")
	}

	c.setSessionID(a.URL, planted)
	wantStatus(t, "save with planted ID", c.saveName(a.URL, "Victim"), 200)
	issued := c.sessionID(a.URL)
	if issued == "" || issued == planted {
		t.Fatalf("save kept the planted ID (cookie %q)", issued)
	}
	if n, _ := r.Do("EXISTS", webapp.DefaultKeyPrefix+planted); n != "0" {
		t.Fatal("a session was stored under the planted ID")
	}
	if len(issued) < 22 { // 128 bits in base64url
		t.Fatalf("issued ID %q is shorter than 128 bits", issued)
	}

	// An attacker who knows a real, issued ID (say, their own) and plants
	// it: the victim's save moves to a fresh ID and the old one dies.
	attacker := newClient(t)
	wantStatus(t, "attacker save", attacker.saveName(a.URL, "Mallory"), 200)
	known := attacker.sessionID(a.URL)
	victim := newClient(t)
	victim.setSessionID(a.URL, known)
	wantStatus(t, "victim save", victim.saveName(a.URL, "Victim"), 200)
	if victim.sessionID(a.URL) == known {
		t.Fatal("save did not rotate the session ID")
	}
	res = attacker.readName(a.URL)
	wantStatus(t, "attacker reads the old ID", res, 404)

	// The cookie's attributes.
	res = newClient(t).saveName(a.URL, "Carol")
	sc := res.Header.Get("Set-Cookie")
	for _, want := range []string{webapp.CookieName + "=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q is Secure though CookieSecure is off", sc)
	}
	sec := startApp(t, webapp.Config{Node: "pc01", CookieSecure: true}, redisconn.Options{URL: r.URL()})
	if sc := newClient(t).saveName(sec.URL, "Dan").Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q is not Secure though CookieSecure is on", sc)
	}
}

// Redis dies mid-test: the session endpoints answer 503 with a JSON reason
// (never a panic or a hang), /readyz says so while /healthz (liveness), the
// page and /api/whoami keep answering, and everything works again, with
// the sessions saved before, once Redis is back.
func TestRedisDownGives503AndRecovers(t *testing.T) {
	r := redistest.Start(t)
	a := startAppOn(t, "pc01", r)
	c := newClient(t)
	wantStatus(t, "save", c.saveName(a.URL, "Alice"), 200)
	wantStatus(t, "healthz", c.get(a.URL+"/healthz"), 200)
	wantStatus(t, "readyz", c.get(a.URL+"/readyz"), 200)

	r.Kill()

	start := time.Now()
	res := c.readName(a.URL)
	wantStatus(t, "read with Redis down", res, 503)
	if res.str("error") != "store_unavailable" || res.str("message") == "" || res.str("node") != "pc01" {
		t.Fatalf("503 body %s", res.Body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("503 took %v", d)
	}
	wantStatus(t, "save with Redis down", c.saveName(a.URL, "Bob"), 503)
	res = c.get(a.URL + "/readyz")
	wantStatus(t, "readyz with Redis down", res, 503)
	if res.str("status") != "redis_unavailable" {
		t.Fatalf("readyz body %s", res.Body)
	}
	wantStatus(t, "healthz (liveness) with Redis down", c.get(a.URL+"/healthz"), 200)
	wantStatus(t, "page with Redis down", c.get(a.URL+"/"), 200)
	res = c.do("POST", a.URL+"/test/query", "", nil)
	wantStatus(t, "seed query with Redis down", res, 503)
	// The Redis-free endpoint still answers.
	wantStatus(t, "whoami with Redis down", c.get(a.URL+"/api/whoami"), 200)

	r.Restart()
	eventually(t, wait, "app recovers", func() error {
		if res := c.readName(a.URL); res.Status != 200 {
			return fmt.Errorf("status %d: %s", res.Status, res.Body)
		}
		return nil
	})
	res = c.readName(a.URL)
	if res.str("name") != "Alice" {
		t.Fatalf("after recovery read %s", res.Body)
	}
	wantStatus(t, "readyz after recovery", c.get(a.URL+"/readyz"), 200)
}
