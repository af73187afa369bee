package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func runbooks(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocumentedReasonLabels keeps the runbooks' list of the transitions
// metric's reason labels equal to the labels the code emits.
func TestDocumentedReasonLabels(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| `hbd_transitions_total` .*$").FindString(runbooks(t))
	_, list, ok := strings.Cut(row, "one of ")
	if !ok {
		t.Fatalf("docs/runbooks.md: no reason list in the hbd_transitions_total row: %q", row)
	}
	list, _, _ = strings.Cut(list, ";")
	var documented []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(list, -1) {
		documented = append(documented, m[1])
	}
	code := append(slices.Clone(reasonLabels), "other")
	slices.Sort(documented)
	slices.Sort(code)
	if !slices.Equal(documented, code) {
		t.Errorf("docs/runbooks.md lists reason labels %q; the code emits %q", documented, code)
	}
}

// TestDocumentedMetrics: every hbd_ series the daemon defines is in the
// runbooks' metrics table.
func TestDocumentedMetrics(t *testing.T) {
	doc := runbooks(t)
	files, _ := filepath.Glob("*.go")
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(hbd_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			seen++
			if !strings.Contains(doc, "| `"+m[1]+"` |") {
				t.Errorf("%s defines %s; docs/runbooks.md's metrics table lacks it", f, m[1])
			}
		}
	}
	if seen < 15 {
		t.Errorf("found only %d metric names in the sources: the scan is broken", seen)
	}
}

func TestObservedGauges(t *testing.T) {
	m := newMetrics(func() float64 { return 0 })
	now := time.Now()
	m.observe(election.Status{
		Peers:      []election.PeerStatus{{Node: "pc02", Alive: true}, {Node: "pc03", Alive: false}},
		LeaseUntil: now.Add(time.Second),
	}, now)
	if v := gaugeValue(t, m.peerAlive.WithLabelValues("pc02")); v != 1 {
		t.Errorf("hbd_peer_alive{peer=pc02} = %v, want 1", v)
	}
	if v := gaugeValue(t, m.peerAlive.WithLabelValues("pc03")); v != 0 {
		t.Errorf("hbd_peer_alive{peer=pc03} = %v, want 0", v)
	}
	if v := gaugeValue(t, m.leaseHeld); v != 1 {
		t.Errorf("hbd_witness_lease_held = %v, want 1", v)
	}
	m.observe(election.Status{Peers: []election.PeerStatus{{Node: "pc02"}}, LeaseUntil: now.Add(-time.Millisecond)}, now)
	if v := gaugeValue(t, m.leaseHeld); v != 0 {
		t.Errorf("expired lease: hbd_witness_lease_held = %v, want 0", v)
	}
	ch := make(chan prometheus.Metric, 8)
	m.peerAlive.Collect(ch)
	if n := len(ch); n != 1 {
		t.Errorf("after a peer went away: %d hbd_peer_alive series, want 1", n)
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var d dto.Metric
	if err := g.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetGauge().GetValue()
}
