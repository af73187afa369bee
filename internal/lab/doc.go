// Package lab builds a throw-away test bed of network namespaces on one Linux
// machine — hosts on a shared bridge — and injects faults into it, for the e2e
// tests, the `hbd-lab` demo and the benchmark.
//
// # Topology
//
//	           namespace <id>-lan
//	   ┌──────────────── br0 ─────────────────┐
//	 p-pc01        p-pc02        p-redis    p-client     bridge ports (veth)
//	   │             │              │           │
//	  eth0          eth0           eth0        eth0      one per host namespace
//	<id>-pc01     <id>-pc02     <id>-redis  <id>-client
//	 .11 ::11      .12 ::12      .20 ::20   .100 ::100   198.51.100.0/24, 2001:db8::/64
//
// <id> is Options.Prefix, a dash and a random suffix ("hbd-3f9a"), so parallel
// runs do not collide. Only 198.51.100.0/24 and 2001:db8::/32 are used, and only
// inside namespaces this package created; DialContext and Ping refuse any other
// destination.
//
// # Faults
//
//   - CablePull / CablePlug: the host's bridge port goes down / up (the host
//     sees carrier loss on eth0).
//   - Isolate / Unisolate: bridge port isolation; isolated ports cannot reach
//     each other but still reach every non-isolated port (a partition between
//     the two hbd hosts that both still see the client).
//   - SetLoss / ClearLoss / Blackout: nftables rules in a bridge-family table
//     "hbdlab" in the LAN namespace. The kernel has no netem, hence nftables.
//
// # Sysctls
//
// The only sysctls set are, in every host namespace,
// net.ipv6.conf.{all,default}.accept_dad=0: duplicate address detection would
// otherwise keep each IPv6 address (link-local included) tentative for about a
// second after it is added. Everything else keeps kernel defaults. The bridge is
// created with mcast_snooping 0 so it floods IPv6 neighbour discovery multicast
// to every port regardless of MLD state.
//
// # Processes and cleanup
//
// Start runs long-lived programs inside a host namespace with `ip netns exec`,
// each in its own process group. Close ends exactly those process groups by
// their ID (SIGTERM, then SIGKILL after Options.StopTimeout), deletes the
// namespaces it created by exact name and removes its temporary directory.
// Close is idempotent and safe to call concurrently.
//
// Everything here needs root. CheckPrereqs names the Debian packages of the
// commands the lab runs.
package lab
