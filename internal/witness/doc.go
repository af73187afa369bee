// Package witness keeps a two-node cluster's mastership lease in Redis, so
// that a standby claims the VIP only after the old master's lease has
// expired, and a master that cannot renew it fences itself: never two
// masters, even across a partition between the two hosts.
//
// # The lease
//
// One key, hbd:lease:<cluster_id>, holds "node/epoch" with a TTL. Acquire
// sets it when it is free (SET NX PX) or already ours; Renew extends it only
// if it is ours (compare-and-set in a Lua script); Release deletes it only if
// it is ours (a planned handover, so the target wins at once). Every call
// takes Sent, a monotonic reading, just before its request leaves, and a won
// grant gives its holder a belief that ends at ValidUntil.
//
// # The inequalities
//
// ρ bounds the rate error of every clock involved against true time (the
// holder's clock and kernel timer, the standby's clock, the Redis server's
// clock): each runs at a rate in [1−ρ, 1+ρ]. So a span measured as d on one
// clock is at least d×(1−ρ)/(1+ρ) on any other. L is the VIP's kernel valid
// lifetime, S = KernelSlack the time the kernel may keep an address after it
// (about 1 s; see KernelSlack), δ the call budget (Timing.Delay), R the renew
// period, m the margin.
//
// (a) The holder's belief ends before Redis can let the key go:
//
//	ValidUntil = Sent + TTL×(1−ρ)/(1+ρ) − m
//
// Redis receives the request after Sent and starts the TTL then, on its own
// clock, so the key lives at least until Sent + TTL/(1+ρ) in true time, and
// the holder's clock reaches ValidUntil no later than that (m ≥ 0). Any
// standby's Acquire succeeds only once the key is gone, so it happens after
// every belief of the old holder has ended, whatever the delays of the
// requests and replies: a late reply carries an early Sent.
//
// (b) The holder refreshes its VIP's lifetime (or claims the VIP) only while
// its belief extends at least L + S beyond now:
//
//	MayRefreshVIP(now, ValidUntil, L)  ⇔  now + L + S ≤ ValidUntil
//
// A holder frozen right after a refresh (SIGSTOP, a hung host) has no chance
// to fence itself, but the kernel drops the VIP by (refresh + L + S), which
// by (a) comes before Redis lets the key expire, so before any standby can
// win it. (The kernel's timer runs within ρ too; (a)'s factor covers it.)
//
// (c) A healthy holder is never forced to drop its VIP by (b): at any moment
// its latest answered renew was sent at most R + δ ago, so
//
//	TTL×(1−ρ)/(1+ρ) − m ≥ L + S + R + δ
//
// Validate refuses a Timing that breaks (c); DefaultTTL picks the shortest
// TTL (rounded up to 100 ms) that meets it. With interval 50 ms, dead_after
// 300 ms (the default call budget) and L = 2 s, that is 4 s.
//
// The price is the takeover time after a crash or a cable pull: the standby
// waits for the key to expire, about TTL (at most δ + TTL×(1+ρ)/(1−ρ)) after
// the last renew, instead of dead_after. A planned handover (Release) is
// not slowed.
//
// # Using it
//
// The daemon keeps the latest ValidUntil of its won grants and, as master,
// renews every R with at most one call in flight:
//
//	g, err := w.Renew(ctx, node, epoch)
//	switch {
//	case err == nil && g.Won:
//		validUntil = g.ValidUntil // later Sent, later belief
//	case err == nil:
//		// lost or lapsed: the belief has ended; release the VIP and step down
//	case errors.Is(err, witness.ErrUnreachable):
//		// policy safe: keep validUntil; MayRefreshVIP stops the VIP
//		// refreshes in time, and at validUntil the master releases the
//		// VIP and steps down
//		// policy available: fall back to heartbeats alone
//	}
//
// Before each VIP refresh it checks MayRefreshVIP(time.Now(), validUntil,
// L), and again with time.Now() after the refresh returns (a stall between
// the check and the netlink call would otherwise stretch the VIP's life);
// when either check fails it releases the VIP and steps down. A standby
// that no longer hears the master calls Acquire each interval and claims
// only when the grant is Won and MayRefreshVIP holds. Under the available
// policy the guarantees above do not hold while the witness is unreachable.
//
// # What it assumes
//
//   - Redis expires keys by its wall clock: the Redis host's clock must be
//     slewed, never stepped, while it serves the lease (chrony without
//     makestep after boot, or an NTP client in slew mode).
//   - With Sentinel, replication is asynchronous: a renew acknowledged by
//     the old Redis master may be lost in a Redis failover, and the new
//     master then lets a standby win early. A Redis failover during a
//     network partition between the two hosts can therefore give two
//     masters. A single Redis has no such hole if a restart keeps the key
//     (appendonly with appendfsync always) or lasts longer than the TTL.
//   - A master stopped twice, once between MayRefreshVIP and the netlink
//     refresh and again right after it, keeps a VIP refreshed on a stale
//     belief. No lease without fencing tokens can exclude that.
package witness
