package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/heartbeat/election"
)

// TestHandoverOnBackupShowsTheReason is finding 8 of the security review:
// `hbd handover` on a BACKUP printed "check standby FAILED 0s  is ready".
func TestHandoverOnBackupShowsTheReason(t *testing.T) {
	now := time.Now()
	m := election.New(election.Config{Node: "pc01", Priority: 100, Peers: 1, Interval: 5 * time.Millisecond,
		DeadAfter: 300 * time.Millisecond, Refresh: time.Second, YieldTimeout: time.Second}, now)
	target, err := m.Candidate(now, "")
	if err == nil {
		t.Fatal("Candidate on a node that is not master succeeded")
	}
	s := newStep("check standby", 0, err, target+" is ready")
	if s.OK || !strings.Contains(s.Detail, "not master") || strings.Contains(s.Detail, "is ready") {
		t.Fatalf("step %+v: want the reason (not master), not %q", s, target+" is ready")
	}
	if ok := newStep("check standby", 0, nil, "pc02 is ready"); !ok.OK || ok.Detail != "pc02 is ready" {
		t.Fatalf("successful step %+v", ok)
	}
}
