package lab

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxSamples bounds every sampling loop (about 2.9 hours at 10ms).
const maxSamples = 1 << 20

// NodeSymbol maps a node name to the one character that stands for it in a
// timeline.
type NodeSymbol func(node string) rune

// DefaultNodeSymbol uses a node name's last character if it is a digit
// ("pc01" → '1', "pc02" → '2'), else its first character ("redis" → 'r').
// '?' stands for an empty name or one that would read as a timeline mark
// ('.', 'x', '!').
func DefaultNodeSymbol(node string) rune {
	if node == "" {
		return '?'
	}
	r := rune(node[len(node)-1])
	if r < '0' || r > '9' {
		r = []rune(node)[0]
	}
	switch r {
	case '.', 'x', '!':
		return '?'
	}
	return r
}

// HolderSample is which hosts held the address at one instant.
type HolderSample struct {
	At      time.Time
	Holders []string // in the order the hosts were given
	Errors  int      // hosts whose check failed (counted as not holding)
}

// HolderSamples is a timeline of samples in time order, with pure analysis
// methods.
type HolderSamples []HolderSample

// MaxConcurrent is the largest number of simultaneous holders seen.
func (s HolderSamples) MaxConcurrent() int {
	m := 0
	for _, x := range s {
		m = max(m, len(x.Holders))
	}
	return m
}

// durationWhere sums, over samples matching pred, the time to the next
// sample; the last sample, whose end is unknown, counts nothing.
func (s HolderSamples) durationWhere(pred func(HolderSample) bool) time.Duration {
	var d time.Duration
	for i := 0; i+1 < len(s); i++ {
		if pred(s[i]) {
			d += s[i+1].At.Sub(s[i].At)
		}
	}
	return d
}

// DoubleHolderDuration is the time during which two or more hosts held the
// address, each such sample lasting until the next one.
func (s HolderSamples) DoubleHolderDuration() time.Duration {
	return s.durationWhere(func(x HolderSample) bool { return len(x.Holders) >= 2 })
}

// NoHolderDuration is the time during which no host held the address.
func (s HolderSamples) NoHolderDuration() time.Duration {
	return s.durationWhere(func(x HolderSample) bool { return len(x.Holders) == 0 })
}

// HolderChange is a sample whose holder set differs from the previous one.
type HolderChange struct {
	At      time.Time
	Holders []string
}

// Changes lists the first sample and every change of holder set after it.
func (s HolderSamples) Changes() []HolderChange {
	var out []HolderChange
	for i, x := range s {
		if i == 0 || !slices.Equal(x.Holders, s[i-1].Holders) {
			out = append(out, HolderChange{At: x.At, Holders: x.Holders})
		}
	}
	return out
}

// String renders one character per sample: '.' no holder, the node's symbol
// for one holder, '!' for two or more.
func (s HolderSamples) String() string { return s.Render(DefaultNodeSymbol) }

// Render is String with a chosen symbol mapping.
func (s HolderSamples) Render(sym NodeSymbol) string {
	var b strings.Builder
	for _, x := range s {
		switch len(x.Holders) {
		case 0:
			b.WriteByte('.')
		case 1:
			b.WriteRune(sym(x.Holders[0]))
		default:
			b.WriteByte('!')
		}
	}
	return b.String()
}

// HolderSampler records, at a fixed interval, which hosts hold an address.
// Its methods are safe for concurrent use while it runs.
type HolderSampler struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	samples HolderSamples
}

// SampleHolders starts sampling, every `every` (default 10ms), which of hosts
// hold vip's address on ifname, until ctx is done, Stop is called or
// 2^20 samples are taken.
func (l *Lab) SampleHolders(ctx context.Context, hosts []string, ifname string, vip netip.Prefix, every time.Duration) *HolderSampler {
	hosts = slices.Clone(hosts)
	check := func(h string) (bool, error) { return l.HasAddr(h, ifname, vip) }
	return newHolderSampler(ctx, hosts, check, every)
}

func newHolderSampler(ctx context.Context, hosts []string, check func(string) (bool, error), every time.Duration) *HolderSampler {
	if every <= 0 {
		every = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &HolderSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for range maxSamples {
			x := HolderSample{At: time.Now()}
			for _, h := range hosts {
				ok, err := check(h)
				if err != nil {
					x.Errors++
				} else if ok {
					x.Holders = append(x.Holders, h)
				}
			}
			s.mu.Lock()
			s.samples = append(s.samples, x)
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and waits for the loop to finish. Idempotent.
func (s *HolderSampler) Stop() {
	s.cancel()
	<-s.done
}

// Samples returns a copy of the samples so far.
func (s *HolderSampler) Samples() HolderSamples {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// MaxConcurrentHolders is Samples().MaxConcurrent().
func (s *HolderSampler) MaxConcurrentHolders() int { return s.Samples().MaxConcurrent() }

// DoubleHolderDuration is Samples().DoubleHolderDuration().
func (s *HolderSampler) DoubleHolderDuration() time.Duration {
	return s.Samples().DoubleHolderDuration()
}

// Errors is the number of failed checks so far.
func (s *HolderSampler) Errors() int {
	n := 0
	for _, x := range s.Samples() {
		n += x.Errors
	}
	return n
}

// Timeline is Samples().String().
func (s *HolderSampler) Timeline() string { return s.Samples().String() }
