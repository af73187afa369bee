package daemon

import (
	"time"

	"github.com/hbdproject/hbd/heartbeat"
	"github.com/hbdproject/hbd/heartbeat/election"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the daemon's Prometheus series, all prefixed hbd_.
type metrics struct {
	reg         *prometheus.Registry
	state       *prometheus.GaugeVec
	epoch       prometheus.Gauge
	priority    prometheus.Gauge
	transitions *prometheus.CounterVec
	frames      *prometheus.CounterVec
	rejected    *prometheus.CounterVec
	lost        *prometheus.CounterVec
	rtt         *prometheus.HistogramVec
	checkUp     *prometheus.GaugeVec
	claims      prometheus.Counter
	releases    prometheus.Counter
	phases      *prometheus.HistogramVec
	hookDrops   prometheus.CounterFunc
	bypassed    prometheus.Counter // registered only with a witness
	buildInfo   *prometheus.GaugeVec
	peerAlive   *prometheus.GaugeVec
	leaseHeld   prometheus.Gauge // registered only with a witness

	// frames' children, looked up once: they are counted per frame
	sent, received [3]prometheus.Counter // by heartbeat.Path
}

var stateNames = []string{"INIT", "BACKUP", "MASTER", "FAULT", "MAINTENANCE"}

func newMetrics(hookDrops func() float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hbd_state", Help: "1 for the node's current election state, 0 for the others.",
		}, []string{"state"}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hbd_epoch", Help: "Epoch of this node's current or last claim of mastership.",
		}),
		priority: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hbd_effective_priority", Help: "Configured priority minus the weights of failing checks.",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hbd_transitions_total", Help: "State transitions by from, to and reason.",
		}, []string{"from", "to", "reason"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hbd_frames_total", Help: "Authentic heartbeat frames by path (udp, tcp) and direction (sent, received).",
		}, []string{"path", "direction"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hbd_frames_rejected_total", Help: "Refused frames by path and reason (bad_tag, replay, duplicate, truncated, ...).",
		}, []string{"path", "reason"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hbd_frames_lost_total", Help: "Peer frames never received on any path (gaps in their sequence numbers).",
		}, []string{"peer"}),
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hbd_heartbeat_rtt_seconds", Help: "Round-trip time to each peer (kernel's smoothed RTT of the TCP heartbeat path).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"peer"}),
		checkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hbd_check_up", Help: "1 while a health check passes, 0 while it fails.",
		}, []string{"check"}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hbd_vip_claims_total", Help: "Times this node claimed the VIPs.",
		}),
		releases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hbd_vip_releases_total", Help: "Times this node released the VIPs.",
		}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hbd_failover_phase_seconds",
			Help:    "Failover phases on the claiming node: detect (last frame from the old master to the decision), claim (decision to VIP added and first gratuitous ARP/NA sent), total.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"phase"}),
	}
	m.bypassed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hbd_witness_bypassed_total", Help: "Claims made without the witness lease because it was unreachable (policy available).",
	})
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hbd_build_info", Help: "Always 1; the labels say which hbd is running: version, commit and the Go version that built it.",
	}, []string{"version", "commit", "goversion"})
	m.peerAlive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hbd_peer_alive", Help: "1 while a peer is alive (an authentic frame on some path within dead_after), 0 while it is not.",
	}, []string{"peer"})
	m.leaseHeld = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hbd_witness_lease_held", Help: "1 while this node believes it holds the witness lease, 0 otherwise.",
	})
	m.hookDrops = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "hbd_notify_dropped_total", Help: "Notify hook runs dropped because the queue was full.",
	}, hookDrops)
	m.reg.MustRegister(m.state, m.epoch, m.priority, m.transitions, m.frames, m.rejected, m.lost,
		m.rtt, m.checkUp, m.claims, m.releases, m.phases, m.hookDrops, m.buildInfo, m.peerAlive,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range stateNames {
		m.state.WithLabelValues(s).Set(0)
	}
	for _, p := range []heartbeat.Path{heartbeat.PathUDP, heartbeat.PathTCP} {
		m.sent[p] = m.frames.WithLabelValues(p.String(), "sent")
		m.received[p] = m.frames.WithLabelValues(p.String(), "received")
	}
	return m
}

func (m *metrics) setState(s string) {
	for _, n := range stateNames {
		v := 0.0
		if n == s {
			v = 1
		}
		m.state.WithLabelValues(n).Set(v)
	}
}

// observe sets the gauges that mirror the core's view: each peer's
// liveness and whether this node holds the witness lease. The metrics
// handler calls it in the loop before every scrape.
func (m *metrics) observe(s election.Status, now time.Time) {
	m.peerAlive.Reset() // a reload may have removed peers
	for _, p := range s.Peers {
		v := 0.0
		if p.Alive {
			v = 1
		}
		m.peerAlive.WithLabelValues(p.Node).Set(v)
	}
	held := 0.0
	if s.LeaseUntil.After(now) {
		held = 1
	}
	m.leaseHeld.Set(held)
}
