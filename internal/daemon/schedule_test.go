package daemon

import (
	"testing"
	"time"
)

func TestBurstDeadlines(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b burst
	if !b.deadline().IsZero() || b.due(t0) {
		t.Fatal("a burst never begun has a deadline")
	}
	b.begin(t0, 1) // the claim sent round 0
	var sent []time.Duration
	for now := t0; now.Before(t0.Add(10 * time.Second)); now = now.Add(time.Millisecond) {
		dl := b.deadline()
		if b.due(now) {
			if now.Before(dl) {
				t.Fatalf("round due at %s before its deadline %s", now.Sub(t0), dl.Sub(t0))
			}
			sent = append(sent, now.Sub(t0))
		}
	}
	want := burstSchedule[1:]
	if len(sent) != len(want) {
		t.Fatalf("rounds sent at %v, want %v", sent, want)
	}
	for i := range want {
		if sent[i] != want[i] {
			t.Errorf("round %d at %s, want %s", i+1, sent[i], want[i])
		}
	}
	if !b.deadline().IsZero() {
		t.Errorf("deadline after the last round: %v", b.deadline())
	}

	// A busy loop that wakes late sends the rounds that fell due as one.
	b.begin(t0, 1)
	if !b.due(t0.Add(time.Second)) || b.deadline() != t0.Add(burstSchedule[3]) {
		t.Errorf("late wake: next deadline %v", b.deadline().Sub(t0))
	}
	b.stop()
	if !b.deadline().IsZero() || b.due(t0.Add(time.Hour)) {
		t.Error("a stopped burst is still due")
	}
}

func TestEarliest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var zero time.Time
	for _, tc := range []struct {
		in   []time.Time
		want time.Time
	}{
		{nil, zero},
		{[]time.Time{zero, zero}, zero},
		{[]time.Time{zero, t0.Add(2), t0.Add(1), zero}, t0.Add(1)},
		{[]time.Time{t0.Add(5), zero}, t0.Add(5)},
	} {
		if got := earliest(tc.in...); !got.Equal(tc.want) {
			t.Errorf("earliest(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
