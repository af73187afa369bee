// Package vip claims, refreshes, releases and announces the virtual IP
// addresses of one interface, and watches that interface's link state.
//
// A claimed VIP is added with netlink (an idempotent RTM_NEWADDR with
// NLM_F_REPLACE) with a recognisable label ("<ifname>:hbd" for IPv4), a
// preferred lifetime of zero so the kernel never picks it as a source
// address, IFA_F_NODAD for IPv6, and a short finite valid lifetime that the
// master renews with Refresh. A daemon that is killed or frozen therefore
// loses the VIP by itself within seconds; nothing has to clean up after it.
//
// After a claim the VIP is announced so that neighbours repoint their caches
// at once instead of when their entries time out: for IPv4 a gratuitous ARP
// in both the request form of an ARP Announcement (RFC 5227 §2.3; sender and
// target protocol address both the VIP) and the reply form broadcast to the
// link (RFC 826 packet format; Linux treats a reply whose target hardware
// address is broadcast as gratuitous), and for IPv6 an unsolicited
// neighbour advertisement to all-nodes with the Override flag set and the
// target link-layer address option (RFC 4861 §7.2.6). Claim sends the first
// round; the caller sends the rest at the offsets of BurstSchedule.
//
// Neighbours only update entries they already have: Linux ignores a
// gratuitous ARP for an address it has no entry for unless arp_accept is
// set, and an unsolicited advertisement unless accept_untracked_na is set.
// That is the case that matters: a neighbour with no entry asks, and the
// kernel of the host holding the VIP answers.
//
// The package works in the network namespace of the calling thread.
package vip
