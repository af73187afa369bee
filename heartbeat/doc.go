// Package heartbeat carries hbd's authenticated heartbeat frames and the UDP
// and TCP paths that carry them.
//
// A Frame is a small versioned binary message (see frame.go for the layout)
// authenticated with HMAC-SHA256 (RFC 2104; FIPS 198-1), truncated to 128
// bits, under the cluster's shared key. Each frame carries the sender's
// random per-process boot id and a per-boot sequence number, so a Receiver
// can reject forged, replayed and duplicated frames and count them by
// reason (Reason gives the metrics label of an error). A frame counts only
// inside a session between the sender's boot and a random challenge of the
// receiver, which the sender's frames echo (Receiver.Sessions gives the
// entries a node's own frames carry), so frames recorded in an earlier life
// of either node never count again.
//
// Frames travel twice: as UDP datagrams unicast to every peer
// (UDPTransport) and over persistent TCP connections (TCPTransport). A peer
// is alive while either path delivers a valid frame; the second copy of
// each frame is rejected by the Receiver as ErrDuplicate, which is normal
// and counted apart from replays. Both transports drop, and count, traffic
// from addresses that are not configured peers.
//
// The election itself is not here: package election is a pure state
// machine, fed by the daemon. The daemon's loop, in outline (errors,
// health checks, control socket and metrics left out):
//
//	key, boot := loadKey(cfg), randomUint64()
//	rx := heartbeat.NewReceiver(key, cfg.ClusterID, cfg.Node, boot)
//	udp, _ := heartbeat.ListenUDP(laddr, peers)
//	tcp, _ := heartbeat.ListenTCP(laddr, peers, heartbeat.TCPOptions{Logger: log})
//	transports := []heartbeat.Transport{udp, tcp}
//
//	in := make(chan heartbeat.Inbound, 64)
//	for _, t := range transports {
//		// deliver says whether a frame was authentic; TCP trusts a
//		// connection from its first. (hbd verifies in deliver itself.)
//		go t.Run(ctx, func(m heartbeat.Inbound) bool { in <- m; return true })
//	}
//
//	m := election.New(ecfg, time.Now())
//	var seq uint64
//	send := func(kind election.Kind, target string) {
//		a := m.Advert()
//		seq++
//		f := heartbeat.Frame{Kind: kind, Cluster: cfg.ClusterID,
//			Flags: a.Flags, State: a.State,
//			Priority: uint8(a.Priority), Boot: boot, Seq: seq,
//			Epoch: a.Epoch, SentAt: time.Now(), Node: cfg.Node, Target: target,
//			Sessions: rx.Sessions(nil)} // our challenges, their echoes
//		b, _ := f.AppendSigned(buf[:0], key)
//		for _, t := range transports {
//			t.Send(b) // never blocks for long
//		}
//	}
//	timer := time.NewTimer(time.Until(m.NextDeadline()))
//	for {
//		var acts []election.Action
//		select {
//		case msg := <-in:
//			f, err := rx.Accept(msg.Data, msg.From)
//			if err != nil {
//				continue // counted in rx.Stats(); "no_session" until the peer echoes our challenge
//			}
//			acts = m.Receive(msg.At, election.Heard{Node: f.Node,
//				Kind: f.Kind, Advert: advertOf(f)})
//		case now := <-timer.C:
//			acts = m.Tick(now)
//		case <-ctx.Done():
//			acts = m.Stop(time.Now()) // sends a bye, releases the VIP
//		}
//		for _, a := range acts {
//			switch a.Kind {
//			case election.ActSend:
//				send(a.Frame, a.Target)
//			case election.ActClaim, election.ActRelease, election.ActRefresh, election.ActAnnounce:
//				// package vip
//			case election.ActNotify:
//				// log, run hooks, update status
//			}
//		}
//		if ctx.Err() != nil {
//			break
//		}
//		timer.Reset(time.Until(m.NextDeadline()))
//	}
//	for _, t := range transports {
//		t.Close()
//	}
//
// Concurrency: Receiver and both transports are safe for concurrent use as
// documented on each; Run calls deliver from the transport's goroutines, so
// deliver should hand the Inbound to the loop (a channel) and return.
package heartbeat
