package health

import "testing"

func TestCounter(t *testing.T) {
	type step struct {
		pass             bool
		changed, healthy bool
	}
	P := func(changed, healthy bool) step { return step{true, changed, healthy} }
	F := func(changed, healthy bool) step { return step{false, changed, healthy} }
	tests := []struct {
		name       string
		rise, fall int
		steps      []step
	}{
		{"starts failing, failures change nothing", 2, 2, []step{F(false, false), F(false, false)}},
		{"rise 1: first pass is healthy", 1, 1, []step{P(true, true), P(false, true), F(true, false)}},
		{"rise 2 fall 2", 2, 2, []step{
			P(false, false), P(true, true), // healthy after 2 passes
			F(false, true), F(true, false), // failing after 2 failures
		}},
		{"a failure resets the rise count", 3, 2, []step{
			P(false, false), P(false, false), F(false, false),
			P(false, false), P(false, false), P(true, true),
		}},
		{"a pass resets the fall count", 1, 3, []step{
			P(true, true),
			F(false, true), F(false, true), P(false, true),
			F(false, true), F(false, true), F(true, false),
		}},
		{"flapping never changes state", 2, 2, []step{
			P(false, false), F(false, false), P(false, false), F(false, false),
		}},
		{"healthy stays healthy on passes", 1, 2, []step{
			P(true, true), P(false, true), P(false, true), F(false, true), P(false, true),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := counter{rise: tt.rise, fall: tt.fall}
			for i, s := range tt.steps {
				changed, healthy := c.observe(s.pass)
				if changed != s.changed || healthy != s.healthy {
					t.Fatalf("step %d (pass=%v): got changed=%v healthy=%v, want changed=%v healthy=%v",
						i+1, s.pass, changed, healthy, s.changed, s.healthy)
				}
			}
		})
	}
}
