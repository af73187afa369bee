package webapp_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/redisconn"
	"github.com/hbdproject/hbd/internal/redistest"
	"github.com/hbdproject/hbd/webapp"
)

// loadResult is what webapp/bench/loadgen prints.
type loadResult struct {
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	RPS       float64 `json:"rps"`
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
}

// BenchmarkSessionRead drives GET /api/session (one fixed session, real
// Redis) and, as the baseline, GET /api/whoami (same server, same
// middleware, no Redis work) at a fixed concurrency from a separate
// load-generator process, and prints both and their ratio. It runs once
// whatever b.N is; use go run ./webapp/bench (make bench-webapp) or
//
//	go test -run '^$' -bench SessionRead -benchtime 1x ./webapp/
//
// HBD_BENCH_DURATION (default 5s) and HBD_BENCH_CONCURRENCY (default 16)
// change the load.
func BenchmarkSessionRead(b *testing.B) {
	dur := 5 * time.Second
	if v := os.Getenv("HBD_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	conc := 16
	if v := os.Getenv("HBD_BENCH_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		conc = n
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("the go command is needed to build the load generator")
	}
	loadgen := filepath.Join(b.TempDir(), "loadgen")
	if out, err := exec.Command(goBin, "build", "-o", loadgen, "github.com/hbdproject/hbd/webapp/bench/loadgen").CombinedOutput(); err != nil {
		b.Fatalf("building loadgen: %v\n%s", err, out)
	}

	r := redistest.Start(b)
	rdb, err := redisconn.New(redisconn.Options{URL: r.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Close() })
	srv, err := webapp.New(webapp.Config{Node: "bench"}, rdb, nil) // no request logs
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(hs.Close)

	c := newClient(b)
	wantStatus(b, "save", c.saveName(hs.URL, "小潘"), 200)
	cookie := webapp.CookieName + "=" + c.sessionID(hs.URL)

	drive := func(path string, withCookie bool) loadResult {
		args := []string{"-url", hs.URL + path, "-c", strconv.Itoa(conc), "-d", dur.String()}
		if withCookie {
			args = append(args, "-cookie", cookie)
		}
		cmd := exec.Command(loadgen, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("loadgen %s: %v", path, err)
		}
		var res loadResult
		if err := json.Unmarshal(out, &res); err != nil {
			b.Fatalf("loadgen %s printed %q: %v", path, out, err)
		}
		if res.Errors > 0 {
			b.Errorf("loadgen %s: %d errors", path, res.Errors)
		}
		return res
	}

	b.ResetTimer()
	bare := drive("/api/whoami", false)
	sess := drive("/api/session", true)
	b.StopTimer()

	fmt.Printf("\nwebapp benchmark: GET at concurrency %d for %v each, load generator in a separate process\n", conc, dur)
	fmt.Printf("%-34s %12s %10s %10s\n", "endpoint", "requests/s", "p50", "p99")
	line := func(name string, x loadResult) {
		fmt.Printf("%-34s %12.0f %9.0fµs %9.0fµs\n", name, x.RPS, x.P50Micros, x.P99Micros)
	}
	line("/api/whoami (bare, no Redis)", bare)
	line("/api/session (Redis HGETALL+PEXPIRE)", sess)
	fmt.Printf("%-34s %12.2f %10.2f %10.2f\n\n", "ratio session/bare", sess.RPS/bare.RPS,
		sess.P50Micros/bare.P50Micros, sess.P99Micros/bare.P99Micros)

	b.ReportMetric(sess.RPS, "session-req/s")
	b.ReportMetric(bare.RPS, "bare-req/s")
	b.ReportMetric(sess.RPS/bare.RPS, "rps-ratio")
	b.ReportMetric(sess.P50Micros, "session-p50-µs")
	b.ReportMetric(sess.P99Micros, "session-p99-µs")
}
