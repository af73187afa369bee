// Package election is hbd's election core: a deterministic state machine
// that decides, from verified frames, link state, health-check results and
// operator commands, whether this node holds the VIP. It does no I/O, starts
// no goroutines and reads no clock; every input carries the time, and every
// call returns the actions the caller must carry out in order.
//
// States: INIT → BACKUP ⇄ MASTER, plus FAULT (own link down or a fault check
// failing) and MAINTENANCE (pinned out by the operator). Rules, in short:
//
//   - With no live master, the live eligible node with the highest
//     (effective priority, smallest name) claims — after listening for
//     dead_after at start-up, or at once when every peer has been heard.
//     Each claim raises the epoch above every epoch seen.
//   - Two masters (a healed partition): the lower (priority, epoch, name)
//     releases at once; the other re-announces the VIP.
//   - Preemption is a handover: an outranking backup sets FlagWantMaster and
//     the master releases the VIP to it, so two nodes never hold it at once.
//   - A planned handover (Candidate, then Release) sends a Released frame;
//     the target claims on receipt. If it does not claim within
//     YieldTimeout, the election runs again.
//   - With three or more nodes (Config.Peers ≥ 2), a node claims, and keeps
//     the VIP, only while in contact with a majority of the cluster, itself
//     included (QuorumOf). A master cut off from the majority releases
//     when its peers expire, within dead_after; the majority stops hearing
//     it at the same moment and elects among itself. With two nodes the
//     rule is off: the witness, or the heartbeats alone, decide.
//   - A node whose own loop stalled for longer than dead_after (SIGSTOP, a
//     hung host) steps down and listens again before claiming.
//
// The daemon's loop, in outline:
//
//	m := election.New(cfg, time.Now())
//	act(m.SetLink(time.Now(), up))
//	for {
//		select {
//		case f := <-frames:      // verified by heartbeat.Receiver
//			act(m.Receive(f.At, heard(f)))
//		case up := <-link:
//			act(m.SetLink(time.Now(), up))
//		case r := <-checks:
//			act(m.SetCheck(time.Now(), r.Name, r.Weight, r.Fault, r.Healthy))
//		case <-timer.C:
//			act(m.Tick(time.Now()))
//		}
//		timer.Reset(time.Until(m.NextDeadline()))
//	}
//
// where act claims, refreshes, releases and announces VIPs, signs and sends
// frames carrying m.Advert(), and runs notify hooks without blocking.
package election
