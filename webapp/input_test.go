package webapp_test

import (
	"io"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/redistest"
)

// Every bad request gets a clear 4xx with a JSON error code, never a 500.
func TestBadInput(t *testing.T) {
	r := redistest.Start(t)
	a := startAppOn(t, "pc01", r)
	json := "application/json"
	form := "application/x-www-form-urlencoded"
	name257 := strings.Repeat("a", 257)
	cjk256 := strings.Repeat("小", 85) + "a" // 85*3+1 = 256 bytes: just fits
	cases := []struct {
		what, method, path, ctype, body string
		cookie                          string
		status                          int
		code                            string
	}{
		{"empty name", "POST", "/api/session", json, `{"name":""}`, "", 400, "empty_name"},
		{"blank name", "POST", "/api/session", json, `{"name":"   "}`, "", 400, "empty_name"},
		{"missing name", "POST", "/api/session", json, `{}`, "", 400, "bad_json"},
		{"name not a string", "POST", "/api/session", json, `{"name":42}`, "", 400, "bad_json"},
		{"not JSON", "POST", "/api/session", json, `name=Alice`, "", 400, "bad_json"},
		{"too long", "POST", "/api/session", json, `{"name":"` + name257 + `"}`, "", 400, "name_too_long"},
		{"too long in bytes, not runes", "POST", "/api/session", json, `{"name":"` + cjk256 + `小"}`, "", 400, "name_too_long"},
		{"invalid UTF-8", "POST", "/api/session", json, "{\"name\":\"a\xff\xfeb\"}", "", 400, "invalid_utf8"},
		{"control character", "POST", "/api/session", json, `{"name":"a\u0007b"}`, "", 400, "invalid_name"},
		{"wrong content type", "POST", "/api/session", "text/plain", `{"name":"Alice"}`, "", 415, "unsupported_media_type"},
		{"huge body", "POST", "/api/session", json, `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, "", 413, "body_too_large"},
		{"wrong method", "DELETE", "/api/session", "", "", "", 405, "method_not_allowed"},
		{"wrong method on whoami", "POST", "/api/whoami", "", "", "", 405, "method_not_allowed"},
		{"wrong method on healthz", "POST", "/healthz", "", "", "", 405, "method_not_allowed"},
		{"wrong method on readyz", "POST", "/readyz", "", "", "", 405, "method_not_allowed"},
		{"GET on seed save", "GET", "/test/save", "", "", "", 405, "method_not_allowed"},
		{"GET on seed query", "GET", "/test/query", "", "", "", 405, "method_not_allowed"},
		{"POST on the page", "POST", "/", "", "", "", 405, "method_not_allowed"},
		{"read without cookie", "GET", "/api/session", "", "", "", 404, "no_session"},
		{"read with garbage cookie", "GET", "/api/session", "", "", "garbage;'\"<>", 404, "no_session"},
		{"read with over-long cookie", "GET", "/api/session", "", "", strings.Repeat("A", 3000), 404, "no_session"},
		{"unknown path", "GET", "/nope", "", "", "", 404, "not_found"},
		{"seed save empty", "POST", "/test/save", form, "personName=", "", 400, "empty_name"},
		{"seed save missing field", "POST", "/test/save", form, "other=1", "", 400, "empty_name"},
		{"seed save invalid UTF-8", "POST", "/test/save", form, "personName=%FF%FE", "", 400, "invalid_utf8"},
		{"seed save too long", "POST", "/test/save", form, "personName=" + name257, "", 400, "name_too_long"},
		{"seed save huge body", "POST", "/test/save", form, "personName=" + strings.Repeat("x", 1<<20), "", 413, "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.what, func(t *testing.T) {
			c := newClient(t)
			if tc.cookie != "" {
				c.hc.Jar = nil // send the raw header, as a hostile client would
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := newRequest(t, tc.method, a.URL+tc.path, tc.ctype, body)
			if tc.cookie != "" {
				req.Header.Set("Cookie", "hbd_session="+tc.cookie)
			}
			res := c.send(req)
			if res.Status != tc.status || res.str("error") != tc.code {
				t.Fatalf("status %d error %q, want %d %q; body %.300s", res.Status, res.str("error"), tc.status, tc.code, res.Body)
			}
			if res.str("message") == "" || res.str("node") != "pc01" {
				t.Fatalf("error body lacks message or node: %.300s", res.Body)
			}
			if tc.status == 405 && res.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}

	// The longest allowed name round-trips.
	c := newClient(t)
	res := c.saveName(a.URL, cjk256)
	wantStatus(t, "256-byte name", res, 200)
	if got := c.readName(a.URL).str("name"); got != cjk256 {
		t.Fatalf("256-byte name came back as %q", got)
	}
}
