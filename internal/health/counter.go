package health

// counter debounces a check's runs into a state: a failing check becomes
// healthy after rise passes in a row, a healthy one fails after fall
// failures in a row. Its zero state (with rise and fall set) is failing.
// It is pure: no clock, no I/O.
type counter struct {
	rise, fall int  // runs in a row needed to change state; at least 1
	healthy    bool // current debounced state
	run        int  // runs in a row that disagree with healthy
}

// observe counts one run and returns whether the state changed and the
// state after it.
func (c *counter) observe(pass bool) (changed, healthy bool) {
	if pass == c.healthy {
		c.run = 0
		return false, c.healthy
	}
	c.run++
	need := c.rise
	if c.healthy {
		need = c.fall
	}
	if c.run < need {
		return false, c.healthy
	}
	c.healthy, c.run = pass, 0
	return true, c.healthy
}
