package webapp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/redistest"
)

// TestCrossSiteRequestsRefused is finding 6 of the security review: a
// cross-site form post to /test/save got 200 and a Set-Cookie (login CSRF).
func TestCrossSiteRequestsRefused(t *testing.T) {
	r := redistest.Start(t)
	a := startAppOn(t, "pc01", r)
	post := func(path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("POST", a.URL+path, strings.NewReader("personName=mallory"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, tt := range []struct {
		name string
		path string
		hdr  map[string]string
		want int
	}{
		{"cross-site form post by Origin", "/test/save", map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site by Sec-Fetch-Site", "/test/save", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"same-site sibling", "/test/save", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"opaque origin", "/test/query", map[string]string{"Origin": "null"}, 403},
		{"JSON API cross-site", "/api/session", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-origin page", "/test/save", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": a.URL}, 200},
		{"same origin, older browser", "/test/save", map[string]string{"Origin": a.URL}, 200},
		{"no browser headers (curl, the seed's client)", "/test/save", nil, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := post(tt.path, tt.hdr)
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
			if tt.want == 403 && res.Header.Get("Set-Cookie") != "" {
				t.Fatalf("refused request set a cookie: %s", res.Header.Get("Set-Cookie"))
			}
		})
	}
}
