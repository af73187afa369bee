package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// probeTimeout is the clients' per-request timeout: a request fails only
// if no answer comes within it.
const probeTimeout = 3 * time.Second

func probe(c *cluster.Cluster, keepAlive bool) *lab.Prober {
	return c.Lab.ProbeWith(context.Background(), lab.ProbeConfig{From: "client", URL: cluster.URL("/api/whoami"),
		Every: 10 * time.Millisecond, KeepAlive: keepAlive, Timeout: probeTimeout})
}

func handover(t *testing.T, c *cluster.Cluster, from, to string) {
	t.Helper()
	resp, err := c.Handover(context.Background(), from, to, 10*time.Second)
	must(t, err)
	var b strings.Builder
	for _, s := range resp.Steps {
		fmt.Fprintf(&b, "  %s ok=%v %s %s\n", s.Name, s.OK, time.Duration(s.Took).Round(10*time.Microsecond), s.Detail)
	}
	if !resp.OK {
		t.Fatalf("handover %s → %s failed: %s\n%s", from, to, resp.Error, b.String())
	}
	t.Logf("handover %s → %s:\n%s", from, to, b.String())
}

func TestHandoverBothWaysZeroFailedRequests(t *testing.T) {
	c := startElected(t, cluster.Options{AppTrack: true})
	waitServedBy(t, c, cluster.URL("/api/whoami"), "pc01", 5*time.Second)
	// Let pc02's app check pass (rise) so that it is ready.
	waitNodeReady(t, c, "pc02")

	fresh, kept := probe(c, false), probe(c, true)
	time.Sleep(300 * time.Millisecond)
	mark1 := time.Now()
	handover(t, c, "pc01", "pc02")
	if _, err := c.WaitOnlyHolder("pc02", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	moved := time.Now() // pc02 alone holds the VIP
	time.Sleep(500 * time.Millisecond)
	waitNodeReady(t, c, "pc01")
	mark2 := time.Now()
	handover(t, c, "pc02", "pc01")
	if _, err := c.WaitOnlyHolder("pc01", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	fresh.Stop()
	kept.Stop()

	for name, p := range map[string]*lab.Prober{"new connections": fresh, "keep-alive": kept} {
		// None may fail: a handshake straddling the move is daisy-chained
		// to the old master (internal/handoff).
		rs := noFailedRequests(t, name, p, mark1, mark2)
		// Every request started once pc02 alone held the VIP (the first
		// handover complete) and before the second began is pc02's.
		served := map[string]int{}
		for _, r := range rs {
			if r.OK() && r.Start.After(moved) && r.End().Before(mark2) {
				served[r.ServedBy]++
			}
		}
		if served["pc02"] == 0 || served["pc01"] > 0 {
			t.Errorf("%s: between the handovers answers came from %v, want pc02 only", name, served)
		}
	}
}

// noFailedRequests fails the test for every failed request of p (named
// name), logs the gap around each handover mark and returns the results.
func noFailedRequests(t *testing.T, name string, p *lab.Prober, marks ...time.Time) lab.ProbeResults {
	t.Helper()
	rs := p.Results()
	if n := rs.Failures(); n > 0 {
		t.Errorf("%s: %d failed requests of %d during the handovers\n%s", name, n, len(rs), p.Timeline())
		for _, r := range rs {
			if !r.OK() {
				t.Logf("failed: start %s took %s status %d err %s", r.Start.Format("15:04:05.000"), r.Duration, r.Status, r.Err)
			}
		}
	}
	for i, mark := range marks {
		before, after := rs.LastServedBy(mark), rs.FirstServedBy(mark.Add(50*time.Millisecond))
		g, _ := rs.GapAround(mark)
		t.Logf("%s handover %d: %s → %s, gap %s", name, i+1, before, after, g.Duration().Round(time.Millisecond))
	}
	return rs
}

// waitNodeReady waits until node itself says it is ready.
func waitNodeReady(t *testing.T, c *cluster.Cluster, node string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status(context.Background(), node)
		must(t, err)
		if st.Ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %+v", node, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stayReady fails the test unless node is a ready BACKUP at every look
// for d: the old master of a handover is a standby at once. Its app is
// drained for the hand-off, so its liveness check answers 503, but that is
// hbd's own doing and must not put the node in FAULT.
func stayReady(t *testing.T, c *cluster.Cluster, node string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		st, err := c.Status(context.Background(), node)
		must(t, err)
		if st.State != "BACKUP" || !st.Ready {
			t.Fatalf("%s after handing the VIP over: %s, ready %v, faults %v; want a ready BACKUP", node, st.State, st.Ready, st.Faults)
		}
	}
}

// TestOldMasterIsAReadyStandbyAtOnce: right after a handover, and after a
// preemption (pc01's app restarted: pc02 hands the VIP back by itself),
// the old master stays a ready standby through its drained hand-off
// window, so a handover back is accepted at once.
func TestOldMasterIsAReadyStandbyAtOnce(t *testing.T) {
	c := startElected(t, cluster.Options{AppTrack: true})
	waitReady(t, c, "pc01", "pc02")
	handover(t, c, "pc01", "pc02")
	stayReady(t, c, "pc01", 2*time.Second)
	handover(t, c, "pc02", "pc01")
	stayReady(t, c, "pc02", 2*time.Second)
}

func TestHandoverRefusedWhenStandbyNotReady(t *testing.T) {
	c := startElected(t, cluster.Options{AppTrack: true})
	waitNodeReady(t, c, "pc02")
	must(t, c.KillApp("pc02"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(context.Background(), "pc02")
		must(t, err)
		if st.State == "FAULT" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pc02 not in FAULT after its app died: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The CLI prints the refusal and exits 1; pc01 stays master.
	out, err := exec.Command(hbdBin, "handover", "-s", c.Nodes["pc01"].Socket, "--timeout", "3s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "handover refused") {
		t.Fatalf("handover to a standby in FAULT: err %v, output:\n%s", err, out)
	}
	t.Logf("refused as expected:\n%s", out)
	if h := c.Holders(); len(h) != 1 || h[0] != "pc01" {
		t.Errorf("holders after a refused handover: %v", h)
	}
}

// sessionClient is a client in the client namespace with a cookie jar.
func sessionClient(c *cluster.Cluster) *http.Client {
	hc := c.Client(false, 3*time.Second)
	jar, _ := cookiejar.New(nil)
	hc.Jar = jar
	return hc
}

func saveName(t *testing.T, hc *http.Client, name string) string {
	t.Helper()
	node, err := postName(hc, name)
	must(t, err)
	return node
}

// postName saves name in the session and returns the node that answered;
// safe to call from any goroutine.
func postName(hc *http.Client, name string) (string, error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	resp, err := hc.Post(cluster.URL("/api/session"), "application/json", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("save: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get(lab.HeaderServedBy), nil
}

func readName(hc *http.Client) (name, node string, err error) {
	resp, err := hc.Get(cluster.URL("/api/session"))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var v struct {
		Name string `json:"name"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("read: %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", "", fmt.Errorf("read: %v in %s", err, b)
	}
	return v.Name, resp.Header.Get(lab.HeaderServedBy), nil
}

func TestKill9OfMastersAppMovesVIPAndKeepsSession(t *testing.T) {
	c := startElected(t, cluster.Options{AppTrack: true, Metrics: true})
	waitNodeReady(t, c, "pc01")
	hc := sessionClient(c)
	if node := saveName(t, hc, "小潘"); node != "pc01" {
		t.Fatalf("saved on %s, want pc01", node)
	}
	killed := time.Now()
	must(t, c.KillApp("pc01"))
	took, err := c.WaitOnlyHolder("pc02", 5*time.Second)
	must(t, err)
	t.Logf("VIP on pc02 %s after kill -9 of pc01's app", took)
	deadline := time.Now().Add(5 * time.Second)
	for {
		name, node, err := readName(hc)
		if err == nil && node == "pc02" {
			if name != "小潘" {
				t.Fatalf("session on pc02 says %q", name)
			}
			t.Logf("pc02 answers with the session intact %s after the kill", time.Since(killed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session not served by pc02: %q %q %v", name, node, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// hbd status --json parses and tells the same story.
	out, err := exec.Command(hbdBin, "status", "--json", "-s", c.Nodes["pc01"].Socket).Output()
	must(t, err)
	var st control.Status
	must(t, json.Unmarshal(out, &st))
	if st.State != "FAULT" || len(st.Held) != 0 || !strings.Contains(strings.Join(st.Faults, ";"), "webapp") {
		t.Errorf("pc01 status: state %s held %v faults %v", st.State, st.Held, st.Faults)
	}
	if len(st.Peers) != 1 || st.Peers[0].Node != "pc02" || st.Peers[0].State != "MASTER" || !st.Peers[0].Alive {
		t.Errorf("pc01's view of its peer: %+v", st.Peers)
	}
	if st.Peers[0].Received["udp"] == 0 || st.Peers[0].Received["tcp"] == 0 {
		t.Errorf("frames per path: %v", st.Peers[0].Received)
	}
	if len(st.Checks) != 2 || st.Checks[0].Name != "webapp" || st.Checks[0].Healthy || !st.Checks[0].Fault {
		t.Errorf("checks: %+v; want the failing liveness check first (and readiness)", st.Checks)
	}
	out, err = exec.Command(hbdBin, "status", "-s", c.Nodes["pc02"].Socket).Output()
	must(t, err)
	if !strings.Contains(string(out), "MASTER") {
		t.Errorf("hbd status on pc02:\n%s", out)
	}
	t.Logf("hbd status on pc02:\n%s", out)

	// /metrics scrapes, and the failover-phase histogram has samples.
	m := scrape(t, c, "pc02")
	if m[`hbd_state{state="MASTER"}`] != 1 {
		t.Errorf("hbd_state MASTER = %v", m[`hbd_state{state="MASTER"}`])
	}
	if m[`hbd_failover_phase_seconds_count{phase="claim"}`] < 1 || m[`hbd_vip_claims_total`] < 1 {
		t.Errorf("failover phases not recorded: %v", m)
	}
	if m[`hbd_frames_total{direction="received",path="udp"}`] < 1 {
		t.Errorf("frames not counted")
	}
}

// scrape fetches a node's metrics (in its namespace, on loopback).
func scrape(t *testing.T, c *cluster.Cluster, node string) map[string]float64 {
	t.Helper()
	resp, err := c.Lab.HTTPClient(node, false, 2*time.Second).Get("http://127.0.0.1:9707/metrics")
	must(t, err)
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestTenHandovers hands the VIP back and forth ten times under a request
// every 10 ms on new and on keep-alive connections, and reports the gap of
// each handover (last answer from the old master → first from the new).
func TestTenHandovers(t *testing.T) {
	c := startElected(t, cluster.Options{AppTrack: true})
	waitNodeReady(t, c, "pc02")
	fresh, kept := probe(c, false), probe(c, true)
	time.Sleep(200 * time.Millisecond)
	var marks []time.Time
	from, to := "pc01", "pc02"
	for i := 0; i < 10; i++ {
		waitNodeReady(t, c, to)
		marks = append(marks, time.Now())
		handover(t, c, from, to)
		if _, err := c.WaitOnlyHolder(to, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		from, to = to, from
	}
	fresh.Stop()
	kept.Stop()
	for name, p := range map[string]*lab.Prober{"new connections": fresh, "keep-alive": kept} {
		rs := p.Results()
		var gaps []time.Duration
		for _, m := range marks {
			g, _ := rs.GapAround(m.Add(5 * time.Millisecond))
			gaps = append(gaps, g.Duration().Round(time.Millisecond))
		}
		t.Logf("%s: %d requests, %d failed; gaps %v", name, len(rs), rs.Failures(), gaps)
		if n := rs.Failures(); n > 0 {
			t.Errorf("%s: %d failed requests", name, n)
			for _, r := range rs {
				if !r.OK() {
					t.Logf("failed: start %s took %s status %d err %s", r.Start.Format("15:04:05.000"), r.Duration, r.Status, r.Err)
				}
			}
		}
	}
}

// hbd maintenance on a master hands over first and pins the node out;
// off lets it back in (and, with preempt, it takes the VIP back).
func TestMaintenance(t *testing.T) {
	c := startElected(t, cluster.Options{AppTrack: true})
	waitNodeReady(t, c, "pc02")
	out, err := exec.Command(hbdBin, "maintenance", "on", "-s", c.Nodes["pc01"].Socket).CombinedOutput()
	if err != nil {
		t.Fatalf("maintenance on: %v\n%s", err, out)
	}
	t.Logf("hbd maintenance on:\n%s", out)
	if _, err := c.WaitOnlyHolder("pc02", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// The handover keeps pc01's app drained for the hand-off window, so its
	// liveness check may still be failing (FAULT wins over MAINTENANCE)
	// until the app's rise passes after the undrain.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(context.Background(), "pc01")
		must(t, err)
		if st.State == "MAINTENANCE" && st.Maintenance {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pc01 after maintenance on: %s (maintenance %v)", st.State, st.Maintenance)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// pc02's app dies: pc01, in maintenance, must not take over.
	must(t, c.KillApp("pc02"))
	time.Sleep(time.Second)
	if c.Holds("pc01") {
		t.Error("a node in maintenance claimed the VIP")
	}
	out, err = exec.Command(hbdBin, "maintenance", "off", "-s", c.Nodes["pc01"].Socket).CombinedOutput()
	if err != nil {
		t.Fatalf("maintenance off: %v\n%s", err, out)
	}
	if _, err := c.WaitOnlyHolder("pc01", 3*time.Second); err != nil {
		t.Fatal(err)
	}
}
