package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// faultState is the nftables state of one host's bridge port.
type faultState struct {
	loss     int  // percent of frames from the host dropped
	blackout bool // every frame from and to the host dropped
	// cut lists the hosts the host's frames do not reach (a partition);
	// Partition sets both directions.
	cut []string
}

// setupNft creates the bridge table: per host an "in-<host>" chain (frames
// the host sends) and an "out-<host>" chain (frames sent to it), reached from
// a forward-hook base chain. Faults only rewrite the per-host chains. The
// set of ports in a timed blackout (BlackoutFor) comes first.
func (l *Lab) setupNft(ctx context.Context) error {
	var b strings.Builder
	fmt.Fprintf(&b, "table bridge %s {\n", nftTable)
	fmt.Fprintf(&b, "\tset %s {\n\t\ttype ifname\n\t\tflags timeout\n\t}\n", nftTimedSet)
	for _, name := range l.order {
		fmt.Fprintf(&b, "\tchain in-%s {\n\t}\n\tchain out-%s {\n\t}\n", name, name)
	}
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	fmt.Fprintf(&b, "\t\tiifname @%[1]s drop\n\t\toifname @%[1]s drop\n", nftTimedSet)
	for _, name := range l.order {
		port := l.hosts[name].Port
		fmt.Fprintf(&b, "\t\tiifname %q jump in-%s\n\t\toifname %q jump out-%s\n", port, name, port, name)
	}
	b.WriteString("\t}\n}\n")
	if _, err := l.runLAN(ctx, b.String(), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("lab: creating nftables table: %w", err)
	}
	return nil
}

// applyFaults rewrites the hosts' chains to match their new states, all in
// one nft transaction: a partition takes effect on every port at once.
// Called with l.mu held.
func (l *Lab) applyFaults(fs map[string]faultState) error {
	var b strings.Builder
	for _, host := range l.order {
		f, ok := fs[host]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "flush chain bridge %[1]s in-%[2]s\nflush chain bridge %[1]s out-%[2]s\n", nftTable, host)
		if f.blackout {
			fmt.Fprintf(&b, "add rule bridge %[1]s in-%[2]s drop\nadd rule bridge %[1]s out-%[2]s drop\n", nftTable, host)
		}
		if len(f.cut) > 0 {
			ports := make([]string, len(f.cut))
			for i, h := range f.cut {
				ports[i] = fmt.Sprintf("%q", l.hosts[h].Port)
			}
			fmt.Fprintf(&b, "add rule bridge %s in-%s oifname { %s } drop\n", nftTable, host, strings.Join(ports, ", "))
		}
		switch {
		case f.loss >= 100: // nft rejects "< 100" for a mod 100 value
			fmt.Fprintf(&b, "add rule bridge %s in-%s drop\n", nftTable, host)
		case f.loss > 0:
			fmt.Fprintf(&b, "add rule bridge %s in-%s numgen random mod 100 < %d drop\n", nftTable, host, f.loss)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.runLAN(ctx, b.String(), "nft", "-f", "-"); err != nil {
		return err
	}
	for host, f := range fs {
		l.faults[host] = f
	}
	return nil
}

// updateFaults changes the fault state of each of hosts and applies them
// at once.
func (l *Lab) updateFaults(hosts []string, change func(host string, f *faultState)) error {
	for _, h := range hosts {
		if _, err := l.host(h); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	fs := map[string]faultState{}
	for _, h := range hosts {
		f := l.faults[h]
		change(h, &f)
		fs[h] = f
	}
	return l.applyFaults(fs)
}

func (l *Lab) updateFault(host string, change func(*faultState)) error {
	return l.updateFaults([]string{host}, func(_ string, f *faultState) { change(f) })
}

// SetLoss drops percent (0..100) of the frames the host sends, chosen at
// random per frame (`iifname PORT numgen random mod 100 < N drop` in the LAN
// namespace). Frames sent to the host are not affected. 0 clears the loss.
func (l *Lab) SetLoss(host string, percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("lab: loss %d%% for %s: want 0..100", percent, host)
	}
	if err := l.updateFault(host, func(f *faultState) { f.loss = percent }); err != nil {
		return fmt.Errorf("lab: setting %d%% loss for %s: %w", percent, host, err)
	}
	return nil
}

// ClearLoss is SetLoss(host, 0).
func (l *Lab) ClearLoss(host string) error { return l.SetLoss(host, 0) }

// Blackout drops every frame from and to the host while on, with the link
// (carrier) still up — unlike CablePull, the host cannot tell.
func (l *Lab) Blackout(host string, on bool) error {
	if err := l.updateFault(host, func(f *faultState) { f.blackout = on }); err != nil {
		return fmt.Errorf("lab: setting blackout=%t for %s: %w", on, host, err)
	}
	return nil
}

// BlackoutFor drops every frame from and to the host for d, like
// Blackout, and the kernel ends it: the port goes into a set with a timeout
// of d, so the blackout lasts d from the moment the rule takes effect
// however late the caller runs again (a busy machine can take tens of
// milliseconds to run nft, which would stretch a Blackout(on) …
// Blackout(off) pair). It returns once the blackout has begun.
func (l *Lab) BlackoutFor(host string, d time.Duration) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	if d < time.Millisecond {
		return fmt.Errorf("lab: a blackout of %s for %s: want at least 1ms", d, host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := fmt.Sprintf("add element bridge %s %s { %q timeout %dms }\n", nftTable, nftTimedSet, h.Port, d.Milliseconds())
	if _, err := l.runLAN(ctx, cmd, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("lab: a blackout of %s for %s: %w", d, host, err)
	}
	l.log.Info("lab: timed blackout", "host", host, "for", d)
	return nil
}

// CablePull sets the host's bridge port down; the host sees no carrier on
// HostIf.
func (l *Lab) CablePull(host string) error { return l.setPort(host, false) }

// CablePlug sets the host's bridge port up again.
func (l *Lab) CablePlug(host string) error { return l.setPort(host, true) }

func (l *Lab) setPort(host string, up bool) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	err = l.nsc[""].netlink(func(nh *netlink.Handle) error {
		link, err := nh.LinkByName(h.Port)
		if err != nil {
			return err
		}
		if up {
			return nh.LinkSetUp(link)
		}
		return nh.LinkSetDown(link)
	})
	if err != nil {
		return fmt.Errorf("lab: setting port %s up=%t: %w", h.Port, up, err)
	}
	l.log.Info("lab: cable", "host", host, "plugged", up)
	return nil
}

// Isolate marks the hosts' bridge ports isolated (`bridge link set dev PORT
// isolated on`). All isolated ports form one group: they cannot reach each
// other but still reach every non-isolated port. Isolate("pc01", "pc02")
// partitions the two while both still reach the client and Redis.
func (l *Lab) Isolate(hosts ...string) error { return l.setIsolated(hosts, true) }

// Unisolate clears isolation on the hosts' ports.
func (l *Lab) Unisolate(hosts ...string) error { return l.setIsolated(hosts, false) }

func (l *Lab) setIsolated(hosts []string, on bool) error {
	for _, host := range hosts {
		h, err := l.host(host)
		if err != nil {
			return err
		}
		err = l.nsc[""].netlink(func(nh *netlink.Handle) error {
			link, err := nh.LinkByName(h.Port)
			if err != nil {
				return err
			}
			return nh.LinkSetIsolated(link, on)
		})
		if err != nil {
			return fmt.Errorf("lab: setting port %s isolated=%t: %w", h.Port, on, err)
		}
	}
	l.log.Info("lab: isolation", "hosts", strings.Join(hosts, ","), "isolated", on)
	return nil
}

// Partition cuts every path between hosts on different sides, both ways,
// while each host keeps reaching the hosts on no side (the client and
// Redis, typically): Partition([]string{"pc01"}, []string{"pc02", "pc03"})
// is a 2/1 partition of three nodes that all still serve the client. It
// replaces any earlier partition; Heal ends it. The rules are per frame
// and per output port in the LAN namespace's bridge table (`iifname PORT
// ... oifname { PORTS } drop`), so flooded ARP is cut too.
func (l *Lab) Partition(sides ...[]string) error {
	side := map[string]int{}
	for i, hs := range sides {
		for _, h := range hs {
			if _, err := l.host(h); err != nil {
				return err
			}
			if _, dup := side[h]; dup {
				return fmt.Errorf("lab: partition: %s is on two sides", h)
			}
			side[h] = i
		}
	}
	err := l.updateFaults(l.order, func(h string, f *faultState) {
		s, on := side[h]
		f.cut = nil
		for _, o := range l.order {
			if so, ok := side[o]; on && ok && so != s {
				f.cut = append(f.cut, o)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("lab: partitioning %v: %w", sides, err)
	}
	l.log.Info("lab: partition", "sides", fmt.Sprint(sides))
	return nil
}

// Heal ends a partition made by Partition.
func (l *Lab) Heal() error { return l.Partition() }
