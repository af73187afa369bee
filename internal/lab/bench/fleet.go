package bench

import (
	"context"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
)

// Probing: a new connection every probeSpacing, each with probeTimeout.
// lab.Prober sends one request at a time, so a request hanging until its
// timeout would hold back the next one; a fleet of probeTimeout /
// probeSpacing probers started probeSpacing apart keeps a new connection
// starting every probeSpacing even while every request hangs, so the first
// good answer after a failover is seen within about probeSpacing.
const (
	probeSpacing = 5 * time.Millisecond
	probeTimeout = 150 * time.Millisecond
)

type fleet struct{ ps []*lab.Prober }

// startFleet starts the probers from the client; they run until Stop.
func startFleet(ctx context.Context, l *lab.Lab) *fleet { return startFleetAt(ctx, l, url) }

// startFleetAt is startFleet probing another URL.
func startFleetAt(ctx context.Context, l *lab.Lab, url string) *fleet {
	n := int(probeTimeout / probeSpacing)
	f := &fleet{}
	for i := range n {
		if i > 0 {
			time.Sleep(probeSpacing)
		}
		f.ps = append(f.ps, l.ProbeWith(ctx, lab.ProbeConfig{
			From: "client", URL: url, Every: probeTimeout, Timeout: probeTimeout,
		}))
	}
	return f
}

// Results merges every prober's results in start order.
func (f *fleet) Results() lab.ProbeResults { return lab.Merged(f.ps...) }

// Stop stops every prober.
func (f *fleet) Stop() {
	for _, p := range f.ps {
		p.Stop()
	}
}
