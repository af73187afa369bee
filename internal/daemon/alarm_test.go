package daemon

import (
	"testing"
	"time"
)

func TestAlarm(t *testing.T) {
	a, err := newAlarm()
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	start := time.Now()
	a.set(20 * time.Millisecond)
	select {
	case <-a.C:
		if took := time.Since(start); took < 20*time.Millisecond {
			t.Errorf("went off after %s, set for 20ms", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not go off")
	}
	// Moved, it goes off at the new time only.
	a.set(30 * time.Millisecond)
	a.set(time.Hour)
	select {
	case <-a.C:
		t.Error("went off after being moved an hour ahead")
	case <-time.After(100 * time.Millisecond):
	}
	a.set(0)
	select {
	case <-a.C:
	case <-time.After(5 * time.Second):
		t.Fatal("set(0) did not go off at once")
	}
}
