package lab

import (
	"context"
	"net/netip"
	"testing"
)

// TestAddrWatchOrdersHostsExactly moves an address between two hosts, once
// cleanly (delete, then add) and once with an overlap of a single kernel
// operation, and checks that the watcher sees exactly one and exactly two
// holders, with no sampling.
func TestAddrWatchOrdersHostsExactly(t *testing.T) {
	l := NewForTest(t)
	ctx := context.Background()
	vip := netip.MustParsePrefix("198.51.100.10/24")
	ip := func(host string, verb string) {
		t.Helper()
		if out, err := l.Run(ctx, host, "ip", "addr", verb, vip.String(), "dev", HostIf); err != nil {
			t.Fatalf("ip addr %s on %s: %v: %s", verb, host, err, out)
		}
	}
	ip("pc01", "add")
	w, err := l.WatchAddr(ctx, []string{"pc01", "pc02"}, HostIf, vip.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if h := w.Holders(); len(h) != 1 || h[0] != "pc01" {
		t.Fatalf("initial holders %v", h)
	}
	for i := 0; i < 20; i++ { // clean moves back and forth
		from, to := "pc01", "pc02"
		if i%2 == 1 {
			from, to = to, from
		}
		ip(from, "del")
		ip(to, "add")
	}
	w.Stop()
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	if got := len(w.Events()); got != 40 {
		t.Fatalf("%d events, want 40: %+v", got, w.Events())
	}
	if m := w.MaxHolders(); m != 1 {
		t.Fatalf("clean moves: max %d holders, want 1: %+v", m, w.Events())
	}

	w, err = l.WatchAddr(ctx, []string{"pc01", "pc02"}, HostIf, vip.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ip("pc02", "add") // pc01 still holds it: two holders, however briefly
	ip("pc01", "del")
	w.Stop()
	if m := w.MaxHolders(); m != 2 {
		t.Fatalf("overlapping move: max %d holders, want 2: %+v", m, w.Events())
	}
	if h := w.Holders(); len(h) != 1 || h[0] != "pc02" {
		t.Fatalf("final holders %v", h)
	}
}
