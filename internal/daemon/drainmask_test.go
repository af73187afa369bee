package daemon

import (
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/health"
)

func TestDrainMask(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	fail := func(name string) health.Result { return health.Result{Name: name, Fault: true} }
	pass := func(name string) health.Result { return health.Result{Name: name, Healthy: true} }
	const settle = 300 * time.Millisecond

	var m drainMask
	if m.hold(at(0), fail("web")) {
		t.Fatal("a failure with no drain of ours is held back")
	}
	m.set(at(0), true, settle)
	if !m.hold(at(10), fail("web")) || !m.hold(at(20), fail("ready")) {
		t.Fatal("a failure while we drain is not held back")
	}
	if !m.deadline().IsZero() || m.due(at(5000)) != nil {
		t.Fatal("held results come due while the drain lasts")
	}
	m.set(at(1000), false, settle) // undrained
	if d := m.deadline(); !d.Equal(at(1300)) {
		t.Fatalf("deadline %v, want the undrain plus settle", d)
	}
	if !m.hold(at(1100), fail("web")) {
		t.Fatal("a failure in the settle time is not held back")
	}
	if m.hold(at(1200), pass("web")) {
		t.Fatal("a pass is held back")
	}
	if got := m.due(at(1299)); got != nil {
		t.Fatalf("due before the deadline: %v", got)
	}
	got := m.due(at(1300))
	if len(got) != 1 || got[0].Name != "ready" || got[0].Healthy {
		t.Fatalf("due = %+v, want the still failing ready check only", got)
	}
	if !m.deadline().IsZero() || m.due(at(2000)) != nil {
		t.Fatal("results due twice")
	}
	if m.hold(at(1400), fail("web")) {
		t.Fatal("a failure after the settle time is held back")
	}
}

func TestDrainSettle(t *testing.T) {
	tracks := []config.Track{
		{Rise: 2, Interval: config.Duration(100 * time.Millisecond), Timeout: config.Duration(50 * time.Millisecond)},
		{Rise: 1, Interval: config.Duration(time.Second), Timeout: config.Duration(200 * time.Millisecond)},
	}
	if got, want := drainSettle(tracks), 2200*time.Millisecond; got != want {
		t.Errorf("drainSettle = %s, want %s", got, want)
	}
	if got := drainSettle(nil); got != 0 {
		t.Errorf("drainSettle without checks = %s", got)
	}
}
