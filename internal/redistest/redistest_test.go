package redistest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/redistest"
)

func TestStartKillRestart(t *testing.T) {
	s := redistest.Start(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || s.PID() == 0 {
		t.Fatalf("URL %q PID %d", s.URL(), s.PID())
	}
	if _, err := s.Do("SET", "k", "小潘"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.PID() != 0 {
		t.Fatal("PID after Kill")
	}
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart()
	if v, err := s.Do("GET", "k"); err != nil || v != "小潘" {
		t.Fatalf("after Restart GET k = %q, %v (append-only file should keep it)", v, err)
	}
	if _, err := s.Do("NOSUCHCOMMAND"); err == nil {
		t.Fatal("an error reply came back as success")
	}
}

func TestReplicaAndSentinel(t *testing.T) {
	m := redistest.Start(t)
	r := redistest.StartReplica(t, m)
	sen := redistest.StartSentinel(t, "mymaster", m, 500*time.Millisecond)
	addr, err := sen.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
	if err != nil || addr != "127.0.0.1\n"+m.Port() {
		t.Fatalf("sentinel's master: %q, %v", addr, err)
	}
	if role, err := r.Do("ROLE"); err != nil || !strings.HasPrefix(role, "slave") {
		t.Fatalf("replica role %q, %v", role, err)
	}
}
