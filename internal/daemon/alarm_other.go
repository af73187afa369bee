//go:build !linux

package daemon

import "time"

// alarm is the loop's one timer; on Linux a timerfd, elsewhere a Go timer.
type alarm struct {
	C <-chan time.Time
	t *time.Timer
}

func newAlarm() (*alarm, error) {
	t := time.NewTimer(time.Hour)
	return &alarm{C: t.C, t: t}, nil
}

func (a *alarm) set(d time.Duration) { a.t.Reset(max(d, 0)) }

func (a *alarm) close() { a.t.Stop() }
