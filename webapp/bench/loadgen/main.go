// Command loadgen drives GET requests at a fixed concurrency against a URL
// on this machine and prints throughput and latency percentiles as JSON. The
// webapp benchmark runs it as a separate process, so that the load
// generator's work is not counted in the server's process.
//
// It refuses targets that are not loopback addresses, and every run is
// bounded by -d and -n.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	URL         string  `json:"url"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"rps"`
	P50Micros   float64 `json:"p50_us"`
	P99Micros   float64 `json:"p99_us"`
}

func main() {
	target := flag.String("url", "", "`URL` to GET (loopback only)")
	cookie := flag.String("cookie", "", "Cookie header to send")
	conc := flag.Int("c", 16, "concurrent connections")
	dur := flag.Duration("d", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", time.Second, "unmeasured warm-up before the run")
	maxReq := flag.Int("n", 5_000_000, "stop after this many requests at most")
	flag.Parse()
	if err := run(*target, *cookie, *conc, *dur, *warm, *maxReq); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(target, cookie string, conc int, dur, warm time.Duration, maxReq int) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT/…", target)
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); (err != nil || !ip.IsLoopback()) && host != "localhost" {
		return fmt.Errorf("-url %q: only loopback targets are allowed", target)
	}
	if conc < 1 || dur <= 0 || maxReq < 1 {
		return fmt.Errorf("need -c ≥ 1, -d > 0, -n ≥ 1")
	}
	tr := &http.Transport{
		MaxIdleConnsPerHost: conc,
		MaxConnsPerHost:     conc,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	get := func() (time.Duration, bool) {
		req, _ := http.NewRequest("GET", target, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return time.Since(start), false
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return time.Since(start), res.StatusCode == 200
	}

	// Warm up: connections, pools, caches.
	deadline := time.Now().Add(warm)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				get()
			}
		})
	}
	wg.Wait()

	var count atomic.Int64
	lat := make([][]time.Duration, conc)
	errs := make([]int, conc)
	start := time.Now()
	deadline = start.Add(dur)
	for i := range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && count.Add(1) <= int64(maxReq) {
				d, ok := get()
				if !ok {
					errs[i]++
					continue
				}
				lat[i] = append(lat[i], d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	r := result{URL: u.Path, Concurrency: conc, Seconds: elapsed.Seconds()}
	for i := range conc {
		all = append(all, lat[i]...)
		r.Errors += errs[i]
	}
	slices.Sort(all)
	r.Requests = len(all)
	if len(all) == 0 {
		return fmt.Errorf("no successful request (%d errors)", r.Errors)
	}
	r.RPS = float64(len(all)) / elapsed.Seconds()
	r.P50Micros = micros(all[len(all)*50/100])
	r.P99Micros = micros(all[min(len(all)-1, len(all)*99/100)])
	return json.NewEncoder(os.Stdout).Encode(r)
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
