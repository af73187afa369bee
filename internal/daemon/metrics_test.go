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
	var code []string
	for _, c := range election.Causes() {
		code = append(code, c.String())
	}
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
	m.leaseHeld = m.reg.NewGauge("hbd_witness_lease_held", "as the leaser registers it")
	now := time.Now()
	m.observe(election.Status{
		Peers:      []election.PeerStatus{{Node: "pc02", Alive: true}, {Node: "pc03", Alive: false}},
		LeaseUntil: now.Add(time.Second),
		Quorum:     election.Quorum{Size: 3, Need: 2, Have: 2},
	}, now)
	if h, n := m.quorumHave.Value(), m.quorumNeed.Value(); h != 2 || n != 2 {
		t.Errorf("hbd_quorum_contact_nodes %v, hbd_quorum_needed_nodes %v; want 2 and 2", h, n)
	}
	if v := m.peerAlive.With("pc02").Value(); v != 1 {
		t.Errorf("hbd_peer_alive{peer=pc02} = %v, want 1", v)
	}
	if v := m.peerAlive.With("pc03").Value(); v != 0 {
		t.Errorf("hbd_peer_alive{peer=pc03} = %v, want 0", v)
	}
	if v := m.leaseHeld.Value(); v != 1 {
		t.Errorf("hbd_witness_lease_held = %v, want 1", v)
	}
	m.observe(election.Status{Peers: []election.PeerStatus{{Node: "pc02"}}, LeaseUntil: now.Add(-time.Millisecond)}, now)
	if v := m.leaseHeld.Value(); v != 0 {
		t.Errorf("expired lease: hbd_witness_lease_held = %v, want 0", v)
	}
	var b strings.Builder
	if _, err := m.reg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\nhbd_peer_alive{"); n != 1 {
		t.Errorf("after a peer went away: %d hbd_peer_alive series, want 1:\n%s", n, b.String())
	}
	// Without a witness there is no lease gauge, and observe copes.
	m2 := newMetrics(func() float64 { return 0 })
	m2.observe(election.Status{}, now)
}
