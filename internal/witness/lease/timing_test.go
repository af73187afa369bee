package lease

import (
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestDefaultTTL(t *testing.T) {
	tests := []struct {
		interval, deadAfter, lifetime time.Duration
		want                          time.Duration
	}{
		// (2000 + 1500 + 50 + 300 + 10) ms / (0.99/1.01) = 3938 ms → 4 s
		{50 * ms, 300 * ms, 2 * time.Second, 4 * time.Second},
		// (1000 + 1500 + 100 + 500 + 10) / 0.9802 = 3173 → 3.2 s
		{100 * ms, 500 * ms, time.Second, 3200 * ms},
		// (3000 + 1500 + 1000 + 3000 + 10) / 0.9802 = 8682 → 8.7 s
		{time.Second, 3 * time.Second, 3 * time.Second, 8700 * ms},
	}
	for _, tt := range tests {
		got := DefaultTTL(tt.interval, tt.deadAfter, tt.lifetime)
		if got != tt.want {
			t.Errorf("DefaultTTL(%v, %v, %v) = %v, want %v", tt.interval, tt.deadAfter, tt.lifetime, got, tt.want)
		}
		tm := Timing{Interval: tt.interval, DeadAfter: tt.deadAfter, Lifetime: tt.lifetime, TTL: got}
		if err := Validate(tm); err != nil {
			t.Errorf("Validate(default TTL %v): %v", got, err)
		}
		tm.TTL = got - 100*ms
		if err := Validate(tm); err == nil {
			t.Errorf("Validate(TTL %v, 100 ms under the default): no error; DefaultTTL is not the shortest", tm.TTL)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Timing{Interval: 50 * ms, DeadAfter: 300 * ms, Lifetime: 2 * time.Second}
	tests := []struct {
		name    string
		change  func(*Timing)
		wantErr string // "" for valid
	}{
		{"defaults", func(*Timing) {}, ""},
		{"explicit long TTL", func(t *Timing) { t.TTL = 10 * time.Second }, ""},
		{"small drift", func(t *Timing) { t.Drift = 0.0001; t.TTL = 3900 * ms }, ""},
		{"no interval", func(t *Timing) { t.Interval = 0 }, "interval"},
		{"dead_after below interval", func(t *Timing) { t.DeadAfter = 10 * ms }, "dead_after"},
		{"no lifetime", func(t *Timing) { t.Lifetime = 0 }, "lifetime"},
		{"fractional lifetime", func(t *Timing) { t.Lifetime = 1500 * ms }, "whole seconds"},
		{"negative drift", func(t *Timing) { t.Drift = -0.01 }, "drift"},
		{"huge drift", func(t *Timing) { t.Drift = 0.5 }, "drift"},
		{"negative margin", func(t *Timing) { t.Margin = -ms }, "margin"},
		{"negative renew", func(t *Timing) { t.Renew = -ms }, "renew"},
		{"negative budget", func(t *Timing) { t.Delay = -ms }, "budget"},
		{"sub-millisecond TTL", func(t *Timing) { t.TTL = 4*time.Second + 1 }, "whole milliseconds"},
		{"TTL shorter than the lifetime", func(t *Timing) { t.TTL = 2 * time.Second }, "too short"},
		{"TTL without the kernel slack", func(t *Timing) { t.TTL = 2500 * ms }, "too short"},
		{"slow renew", func(t *Timing) { t.TTL = 4 * time.Second; t.Renew = time.Second }, "too short"},
		{"slow renew, default TTL", func(t *Timing) { t.Renew = time.Second }, ""},
		{"long call budget", func(t *Timing) { t.TTL = 4 * time.Second; t.Delay = 2 * time.Second }, "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := ok
			tt.change(&tm)
			err := Validate(tm)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate(%+v): %v", tm, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Validate(%+v): no error, want one about %q", tm, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Validate(%+v) = %v, want it to mention %q", tm, err, tt.wantErr)
			}
		})
	}
}

func TestBelief(t *testing.T) {
	tm := Timing{Interval: 50 * ms, DeadAfter: 300 * ms, Lifetime: 2 * time.Second, TTL: 4 * time.Second}.WithDefaults()
	// 4 s × 0.99/1.01 − 10 ms = 3910.7 ms
	if got, want := tm.Belief(), 3910*ms; got < want || got > want+ms {
		t.Errorf("Belief() = %v, want about %v", got, want)
	}
	sent := time.Now()
	if got := tm.ValidUntil(sent); got.Sub(sent) != tm.Belief() {
		t.Errorf("ValidUntil(sent) - sent = %v, want %v", got.Sub(sent), tm.Belief())
	}
}

func TestMayRefreshVIP(t *testing.T) {
	now := time.Now()
	L := 2 * time.Second
	tests := []struct {
		left time.Duration // validUntil - now
		want bool
	}{
		{10 * time.Second, true},
		{L + KernelSlack, true}, // the boundary is allowed: expiry ≤ validUntil
		{L + KernelSlack - 1, false},
		{L, false},
		{0, false},
		{-time.Second, false},
	}
	for _, tt := range tests {
		if got := MayRefreshVIP(now, now.Add(tt.left), L); got != tt.want {
			t.Errorf("MayRefreshVIP(belief %v ahead, lifetime %v) = %v, want %v", tt.left, L, got, tt.want)
		}
	}
}
