package drain

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/config"
)

// bound is the generous limit for anything that should happen at once: the
// test machine is small and noisy.
const bound = 10 * time.Second

// fakeApp is the web app's admin listener: drain, undrain and an in-flight
// count that follows a script.
type fakeApp struct {
	mu            sync.Mutex
	counts        []int // successive /admin/inflight answers; the last repeats
	drainStatus   int   // status of POST /admin/drain; 0 means 200
	undrainStatus int   // status of POST /admin/undrain; 0 means 200
	inflightBody  string
	draining      bool
	requests      []string // "METHOD /path", in order
}

func (a *fakeApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, r.Method+" "+r.URL.Path)
	status := func(s int) int {
		if s == 0 {
			return http.StatusOK
		}
		return s
	}
	switch r.Method + " " + r.URL.Path {
	case "POST /admin/drain":
		w.WriteHeader(status(a.drainStatus))
		if a.drainStatus == 0 {
			a.draining = true
		} else {
			w.Write([]byte("redis unavailable\n"))
		}
	case "POST /admin/undrain":
		w.WriteHeader(status(a.undrainStatus))
		if a.undrainStatus == 0 {
			a.draining = false
		}
	case "GET /admin/inflight":
		if a.inflightBody != "" {
			w.Write([]byte(a.inflightBody))
			return
		}
		n := a.counts[0]
		if len(a.counts) > 1 {
			a.counts = a.counts[1:]
		}
		json.NewEncoder(w).Encode(map[string]any{"inflight": n, "draining": a.draining})
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeApp) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

func (a *fakeApp) isDraining() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.draining
}

func serve(t *testing.T, a *fakeApp) (cfg config.Drain) {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return config.Drain{
		URL:         srv.URL + "/admin/drain",
		InflightURL: srv.URL + "/admin/inflight",
		UndrainURL:  srv.URL + "/admin/undrain",
		Timeout:     config.Duration(bound),
	}
}

func names(steps []Step) []string {
	var n []string
	for _, s := range steps {
		n = append(n, s.Name)
	}
	return n
}

func TestDrainCountsDown(t *testing.T) {
	app := &fakeApp{counts: []int{3, 2, 0}}
	cfg := serve(t, app)
	steps, err := Drain(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if got, want := names(steps), []string{StepRequest, StepInflight}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if want := "POST " + cfg.URL + ": status 200"; steps[0].Detail != want {
		t.Errorf("request detail %q, want %q", steps[0].Detail, want)
	}
	if want := "in flight 3 → 0 after 3 polls"; steps[1].Detail != want {
		t.Errorf("in-flight detail %q, want %q", steps[1].Detail, want)
	}
	// Three polls, two 10ms waits between them.
	if steps[1].Took < 2*pollEvery || steps[1].Took > bound/2 {
		t.Errorf("waiting took %s", steps[1].Took)
	}
	want := []string{"POST /admin/drain", "GET /admin/inflight", "GET /admin/inflight", "GET /admin/inflight"}
	if got := app.seen(); !slices.Equal(got, want) {
		t.Errorf("app saw %v, want %v", got, want)
	}
	if !app.isDraining() {
		t.Error("app not left draining")
	}
}

func TestDrainTimeout(t *testing.T) {
	app := &fakeApp{counts: []int{5}}
	cfg := serve(t, app)
	const timeout = 300 * time.Millisecond
	cfg.Timeout = config.Duration(timeout)
	begin := time.Now()
	steps, err := Drain(context.Background(), cfg, nil)
	took := time.Since(begin)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "5 still in flight") || !strings.Contains(err.Error(), "300ms") {
		t.Errorf("error %q does not say how many were in flight after how long", err)
	}
	if took < timeout || took > bound/2 {
		t.Errorf("Drain returned after %s; timeout %s", took, timeout)
	}
	if len(steps) != 2 || steps[1].Name != StepInflight || !strings.Contains(steps[1].Detail, "5 still in flight") {
		t.Errorf("steps = %+v, want the in-flight step last with the count", steps)
	}
}

func TestDrainRequestFails(t *testing.T) {
	app := &fakeApp{counts: []int{0}, drainStatus: http.StatusInternalServerError}
	cfg := serve(t, app)
	steps, err := Drain(context.Background(), cfg, nil)
	if err == nil || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want a non-timeout error", err)
	}
	want := "drain: requesting drain: POST " + cfg.URL + ": status 500: redis unavailable"
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if len(steps) != 1 || steps[0].Name != StepRequest {
		t.Errorf("steps = %+v, want only the failed request", steps)
	}
	if got := app.seen(); !slices.Equal(got, []string{"POST /admin/drain"}) {
		t.Errorf("app saw %v: nothing may follow a failed drain request", got)
	}
}

// TestDrainBadInflight: an answer that asking again won't fix fails at
// once instead of at the timeout.
func TestDrainBadInflight(t *testing.T) {
	for _, body := range []string{`{"draining":true}`, `not json`, `{"inflight":-1}`} {
		app := &fakeApp{inflightBody: body}
		cfg := serve(t, app)
		cfg.URL = ""
		begin := time.Now()
		_, err := Drain(context.Background(), cfg, nil)
		if err == nil || errors.Is(err, ErrTimeout) {
			t.Errorf("body %s: err = %v, want an immediate error", body, err)
		}
		if took := time.Since(begin); took > bound/2 {
			t.Errorf("body %s: took %s", body, took)
		}
	}
	cfg := serve(t, &fakeApp{counts: []int{0}})
	cfg.URL, cfg.InflightURL = "", strings.Replace(cfg.InflightURL, "inflight", "nope", 1)
	if _, err := Drain(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("404: err = %v", err)
	}
}

// TestDrainAppDown: with nothing listening, the drain request fails and
// says where it tried.
func TestDrainAppDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cfg := config.Drain{InflightURL: url + "/admin/inflight", Timeout: config.Duration(200 * time.Millisecond)}
	_, err := Drain(context.Background(), cfg, nil)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "in-flight count unknown") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want a timeout naming the last error", err)
	}
}

func TestDrainEmpty(t *testing.T) {
	steps, err := Drain(context.Background(), config.Drain{Timeout: config.Duration(time.Second)}, nil)
	if steps != nil || err != nil {
		t.Errorf("empty config: %v, %v; want nothing", steps, err)
	}
	if err := Undrain(context.Background(), config.Drain{}, nil); err != nil {
		t.Errorf("Undrain with no URL: %v", err)
	}
}

func TestDrainCancelled(t *testing.T) {
	cfg := serve(t, &fakeApp{counts: []int{1}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Drain(ctx, cfg, nil)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want the caller's context error, not ErrTimeout", err)
	}
}

func TestDrainCommand(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "drain.sh")
	body := "#!/bin/sh\necho \"$1\" >> " + filepath.Join(dir, "ran") + "\necho drained 12 connections\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}

	t.Run("after the URLs", func(t *testing.T) {
		app := &fakeApp{counts: []int{1, 0}}
		cfg := serve(t, app)
		cfg.Command = []string{script, "after"}
		steps, err := Drain(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := names(steps), []string{StepRequest, StepInflight, StepCommand}; !slices.Equal(got, want) {
			t.Fatalf("steps %v, want %v", got, want)
		}
		if want := "exit status 0: drained 12 connections"; steps[2].Detail != want {
			t.Errorf("command detail %q, want %q", steps[2].Detail, want)
		}
	})
	t.Run("alone", func(t *testing.T) {
		steps, err := Drain(context.Background(), config.Drain{Command: []string{"/bin/true"}}, nil)
		if err != nil || len(steps) != 1 || steps[0].Name != StepCommand {
			t.Errorf("steps %+v, err %v", steps, err)
		}
	})
	t.Run("fails", func(t *testing.T) {
		_, err := Drain(context.Background(), config.Drain{Command: []string{"/bin/false"}}, nil)
		if err == nil || err.Error() != "drain: running /bin/false: exit status 1" {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("timeout kills it", func(t *testing.T) {
		begin := time.Now()
		steps, err := Drain(context.Background(), config.Drain{
			Command: []string{"/bin/sleep", "60"}, Timeout: config.Duration(200 * time.Millisecond),
		}, nil)
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("err = %v, want ErrTimeout", err)
		}
		if took := time.Since(begin); took > bound/2 {
			t.Errorf("took %s: the command was not killed", took)
		}
		if len(steps) != 1 || !strings.HasPrefix(steps[0].Detail, "killed") {
			t.Errorf("steps = %+v", steps)
		}
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "ran")); string(b) != "after\n" {
		t.Errorf("script ran with %q", b)
	}
}

func TestUndrain(t *testing.T) {
	app := &fakeApp{counts: []int{0}}
	cfg := serve(t, app)
	if _, err := Drain(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	if err := Undrain(context.Background(), cfg, nil); err != nil {
		t.Fatalf("Undrain: %v", err)
	}
	if app.isDraining() {
		t.Error("app still draining after Undrain")
	}
	if got := app.seen(); got[len(got)-1] != "POST /admin/undrain" {
		t.Errorf("app saw %v", got)
	}

	app.mu.Lock()
	app.undrainStatus = http.StatusServiceUnavailable
	app.mu.Unlock()
	err := Undrain(context.Background(), cfg, nil)
	if want := "drain: requesting undrain: POST " + cfg.UndrainURL + ": status 503"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}
