package config

import (
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/witness/lease"
)

// The witness section's timing is the gate that rules out two masters: the
// lease's TTL must outlast the VIP's lifetime with the config's own
// interval, dead_after, lifetime and renew period. A default TTL always
// passes; a TTL too short for the lifetime is refused with the shortest
// that fits.
func TestWitnessTiming(t *testing.T) {
	const w = "witness:\n  redis: redis://198.51.100.20:6379/0\n"
	tests := []struct {
		name, extra string
		wantErr     string // "" for a valid config
	}{
		{"defaults", w, ""},
		{"slow timing, default TTL", "interval: 100ms\ndead_after: 400ms\nvip_lifetime: 5s\n" + w, ""},
		{"explicit TTL that fits", w + "  ttl: 8s\n", ""},
		{"TTL shorter than the VIP lifetime", "vip_lifetime: 3s\n" + w + "  ttl: 3s\n", "witness.ttl"},
		{"TTL without room for renew and the call budget", w + "  ttl: 2200ms\n", "witness.ttl"},
		{"renew out of range", w + "  renew: 2s\n", "witness.renew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := parse(t, good+tt.extra, opts())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			c := res.Config
			tm := c.WitnessTiming()
			if tm.Interval != c.Interval.D() || tm.DeadAfter != c.DeadAfter.D() || tm.Lifetime != c.VIPLifetime.D() ||
				tm.TTL != c.Witness.TTL.D() || tm.Renew != c.Witness.Renew.D() {
				t.Errorf("timing %+v does not match the config %s/%s/%s ttl %s renew %s", tm, c.Interval, c.DeadAfter, c.VIPLifetime, c.Witness.TTL, c.Witness.Renew)
			}
			if err := lease.Validate(tm); err != nil {
				t.Errorf("accepted config has an invalid lease timing: %v", err)
			}
			if tm.Belief() < tm.Lifetime+lease.KernelSlack {
				t.Errorf("belief %s shorter than the VIP lifetime plus slack", tm.Belief())
			}
		})
	}
}

// A TTL the validator accepts at the edge: one millisecond less is refused.
func TestWitnessTTLEdge(t *testing.T) {
	res, err := parse(t, good+"witness:\n  redis: redis://198.51.100.20:6379/0\n", opts())
	if err != nil {
		t.Fatal(err)
	}
	tm := res.Config.WitnessTiming()
	lo, hi := time.Millisecond, tm.TTL
	for lo+time.Millisecond < hi { // the shortest valid TTL
		mid := (lo + hi) / 2 / time.Millisecond * time.Millisecond
		x := tm
		x.TTL = mid
		if lease.Validate(x) == nil {
			hi = mid
		} else {
			lo = mid
		}
	}
	ok := "witness:\n  redis: redis://198.51.100.20:6379/0\n  ttl: " + hi.String() + "\n"
	if _, err := parse(t, good+ok, opts()); err != nil {
		t.Errorf("ttl %s (the shortest that fits): %v", hi, err)
	}
	short := "witness:\n  redis: redis://198.51.100.20:6379/0\n  ttl: " + (hi - time.Millisecond).String() + "\n"
	if _, err := parse(t, good+short, opts()); err == nil || !strings.Contains(err.Error(), "witness.ttl") {
		t.Errorf("ttl %s (1 ms too short) accepted: %v", hi-time.Millisecond, err)
	}
}
