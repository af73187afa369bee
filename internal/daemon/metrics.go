package daemon

import (
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/hbdproject/hbd/internal/metrics"
)

// daemonMetrics are the daemon's Prometheus series, all prefixed hbd_, plus the
// process_* and go_* series every exporter has. A new series is one line
// in newMetrics: reg.NewGauge(name, help), or a labelled one with
// NewGaugeVec(name, help, labels...).
type daemonMetrics struct {
	reg         *metrics.Registry
	state       *metrics.GaugeVec // by group and state; one series per state
	epoch       *metrics.GaugeVec // by group
	priority    *metrics.GaugeVec // by group
	transitions *metrics.CounterVec
	rejected    *metrics.CounterVec
	lost        *metrics.CounterVec
	rtt         *metrics.HistogramVec
	checkUp     *metrics.GaugeVec
	claims      *metrics.CounterVec // by group
	releases    *metrics.CounterVec // by group
	phases      *metrics.HistogramVec
	buildInfo   *metrics.GaugeVec
	peerAlive   *metrics.GaugeVec
	leaseHeld   *metrics.Gauge // nil without a witness (the leaser registers it)
	quorumHave  *metrics.Gauge
	quorumNeed  *metrics.Gauge

	// frames' children, looked up once: they are counted per frame
	sent, received [3]*metrics.Counter // by heartbeat.Path
}

func newMetrics(hookDrops func() float64) *daemonMetrics {
	reg := metrics.NewRegistry()
	reg.RegisterProcess()
	reg.RegisterGo()
	m := &daemonMetrics{
		reg:         reg,
		epoch:       reg.NewGaugeVec("hbd_epoch", "Epoch of this node's current or last claim of mastership (by VIP group, with groups).", "group"),
		priority:    reg.NewGaugeVec("hbd_effective_priority", "Configured priority minus the weights of failing checks (by VIP group, with groups).", "group"),
		transitions: reg.NewCounterVec("hbd_transitions_total", "State transitions by VIP group (with groups), from, to and reason.", "group", "from", "to", "reason"),
		rejected: reg.NewCounterVec("hbd_frames_rejected_total",
			"Refused frames by path and reason (bad_tag, replay, duplicate, truncated, ...).", "path", "reason"),
		lost: reg.NewCounterVec("hbd_frames_lost_total",
			"Peer frames never received on any path (gaps in their sequence numbers).", "peer"),
		rtt: reg.NewHistogramVec("hbd_heartbeat_rtt_seconds",
			"Round-trip time to each peer (kernel's smoothed RTT of the TCP heartbeat path).",
			metrics.ExponentialBuckets(0.00005, 2, 16), "peer"),
		checkUp:  reg.NewGaugeVec("hbd_check_up", "1 while a health check passes, 0 while it fails.", "check"),
		claims:   reg.NewCounterVec("hbd_vip_claims_total", "Times this node claimed the VIPs (by VIP group, with groups).", "group"),
		releases: reg.NewCounterVec("hbd_vip_releases_total", "Times this node released the VIPs (by VIP group, with groups).", "group"),
		phases: reg.NewHistogramVec("hbd_failover_phase_seconds",
			"Failover phases on the claiming node: detect (last frame from the old master to the decision), claim (decision to VIP added and first gratuitous ARP/NA sent), total; by VIP group, with groups.",
			metrics.ExponentialBuckets(0.0001, 2, 18), "group", "phase"),
	}
	m.buildInfo = reg.NewGaugeVec("hbd_build_info",
		"Always 1; the labels say which hbd is running: version, commit and the Go version that built it.", "version", "commit", "goversion")
	m.peerAlive = reg.NewGaugeVec("hbd_peer_alive",
		"1 while a peer is alive (an authentic frame on some path within dead_after), 0 while it is not.", "peer")
	m.quorumHave = reg.NewGauge("hbd_quorum_contact_nodes",
		"Nodes this node is in contact with, itself included (three or more nodes: it may hold the VIP while this is at least hbd_quorum_needed_nodes).")
	m.quorumNeed = reg.NewGauge("hbd_quorum_needed_nodes", "The majority of the cluster; 0 with one or two nodes, where the rule is off.")
	reg.NewCounterFunc("hbd_notify_dropped_total", "Notify hook runs dropped because the queue was full.", hookDrops)
	m.state = reg.NewGaugeVec("hbd_state", "1 for the node's current election state, 0 for the others (by VIP group, with groups).", "group", "state")
	frames := reg.NewCounterVec("hbd_frames_total",
		"Authentic heartbeat frames by path (udp, tcp) and direction (sent, received).", "path", "direction")
	for _, p := range []heartbeat.Path{heartbeat.PathUDP, heartbeat.PathTCP} {
		m.sent[p] = frames.With(p.String(), "sent")
		m.received[p] = frames.With(p.String(), "received")
	}
	return m
}

// group returns the series of one election; name is its group, "" for
// a config without groups (the label is then left out).
func (m *daemonMetrics) group(name string) groupMetrics {
	g := groupMetrics{
		epoch: m.epoch.With(name), priority: m.priority.With(name),
		claims: m.claims.With(name), releases: m.releases.With(name),
		detect: m.phases.With(name, "detect"), claim: m.phases.With(name, "claim"), total: m.phases.With(name, "total"),
	}
	for s := range g.state {
		g.state[s] = m.state.With(name, election.State(s).String())
	}
	return g
}

// observe sets the gauges that mirror the core's view: each peer's
// liveness, the quorum and whether this node holds the witness lease. The
// metrics handler calls it in the loop before every scrape.
func (m *daemonMetrics) observe(s election.Status, now time.Time) {
	m.quorumHave.Set(float64(s.Quorum.Have))
	m.quorumNeed.Set(float64(s.Quorum.Need))
	m.peerAlive.Reset() // a reload may have removed peers
	for _, p := range s.Peers {
		v := 0.0
		if p.Alive {
			v = 1
		}
		m.peerAlive.With(p.Node).Set(v)
	}
	if m.leaseHeld != nil {
		held := 0.0
		if s.LeaseUntil.After(now) {
			held = 1
		}
		m.leaseHeld.Set(held)
	}
}
