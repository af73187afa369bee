package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// The hosts: pc01 is the preferred master (priority 150), pc02 the standby
// (priority 100), on both sides.
const (
	master      = "pc01"
	standby     = "pc02"
	prioMaster  = 150
	prioStandby = 100
	appPort     = cluster.Port
)

var (
	hosts = []string{master, standby}
	vip   = lab.VIP4
	// url is a request through the VIP that does not touch Redis.
	url = cluster.URL("/api/whoami")
)

// HBDTiming is the heartbeat timing of the hbd side.
type HBDTiming struct {
	Interval  time.Duration
	DeadAfter time.Duration
}

func (t HBDTiming) String() string {
	return fmt.Sprintf("interval %s dead_after %s", t.Interval, t.DeadAfter)
}

// pair is a running two-host failover setup in its own lab: the web app on
// both hosts behind the VIP, Redis, a client, and one tool's daemons.
type pair interface {
	tool() string
	lab() *lab.Lab
	// daemon is the daemon process started on host (keepalived's parent).
	daemon(host string) *lab.Proc
	// switchover moves the VIP off the master the tool's planned way and
	// returns once the move is done (hbd handover) or under way (keepalived
	// stopped with SIGTERM).
	switchover(ctx context.Context) error
	// restore brings the pair back to full strength after a switchover
	// or a crash (a no-op for hbd after a handover: it preempts back).
	restore(ctx context.Context, afterCrash bool) error
	// kill sends SIGKILL to the master's daemon (keepalived: its whole
	// process tree, as the OOM killer or `systemctl kill -s KILL` would).
	kill() error
	// claimRE matches a log line of the daemon saying it became master.
	claimRE() *regexp.Regexp
	close() error
}

// pairConfig says how to start a pair.
type pairConfig struct {
	bin     string // the hbd binary
	logDir  string // keep lab logs here (a subdirectory per lab); "" removes them
	name    string // lab subdirectory name
	hbd     HBDTiming
	ka      KeepalivedTiming
	metrics bool
}

func newLab(ctx context.Context, prefix string, c pairConfig) (*lab.Lab, error) {
	return newLabOf(ctx, prefix, c, hosts...)
}

// newLabOf is newLab with other daemon hosts (Redis and the client are
// added).
func newLabOf(ctx context.Context, prefix string, c pairConfig, nodes ...string) (*lab.Lab, error) {
	o := lab.Options{Prefix: prefix, Hosts: append(slices.Clone(nodes), "redis", "client")}
	if c.logDir != "" {
		o.Dir = filepath.Join(c.logDir, c.name)
		os.RemoveAll(o.Dir)
	}
	return lab.New(ctx, o)
}

// hbdPair is the real hbd pair of lab/cluster.
type hbdPair struct {
	l *lab.Lab
	c *cluster.Cluster
}

var hbdClaimRE = regexp.MustCompile(`msg="state changed".* state=MASTER\b`)

func startHBD(ctx context.Context, c pairConfig) (*hbdPair, error) {
	l, err := newLab(ctx, "bhbd", c)
	if err != nil {
		return nil, err
	}
	cl, err := cluster.Start(ctx, l, cluster.Options{
		Bin:       c.bin,
		Nodes:     hosts,
		Priority:  map[string]int{master: prioMaster, standby: prioStandby},
		Interval:  c.hbd.Interval,
		DeadAfter: c.hbd.DeadAfter,
		Metrics:   c.metrics,
	})
	if err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return &hbdPair{l: l, c: cl}, nil
}

func (p *hbdPair) tool() string                 { return ToolHBD }
func (p *hbdPair) lab() *lab.Lab                { return p.l }
func (p *hbdPair) daemon(host string) *lab.Proc { return p.c.Nodes[host].Hbd }
func (p *hbdPair) claimRE() *regexp.Regexp      { return hbdClaimRE }
func (p *hbdPair) close() error                 { return p.l.Close() }
func (p *hbdPair) kill() error                  { return p.c.KillHbd(master) }

func (p *hbdPair) switchover(ctx context.Context) error {
	r, err := p.c.Handover(ctx, master, "", 5*time.Second)
	if err != nil {
		return fmt.Errorf("bench: hbd handover: %w", err)
	}
	if !r.OK {
		return fmt.Errorf("bench: hbd handover: %s", r.Error)
	}
	return nil
}

func (p *hbdPair) restore(ctx context.Context, afterCrash bool) error {
	if afterCrash {
		return p.c.StartHbd(ctx, master) // removes the stale VIP, then preempts
	}
	// A node that handed the VIP away on an operator's request does not
	// preempt back: hand it back the same way.
	r, err := p.c.Handover(ctx, standby, master, 5*time.Second)
	if err != nil {
		return fmt.Errorf("bench: hbd handover back to %s: %w", master, err)
	}
	if !r.OK {
		return fmt.Errorf("bench: hbd handover back to %s: %s", master, r.Error)
	}
	return nil
}

// metrics fetches the Prometheus text of host's daemon.
func (p *hbdPair) metrics(ctx context.Context, host string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:9707/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := p.l.HTTPClient(host, false, 3*time.Second).Do(req)
	if err != nil {
		return "", fmt.Errorf("bench: scraping hbd metrics on %s: %w", host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(b), err
}

// kaPair runs the same web app on both hosts and keepalived (VRRP) in
// place of hbd.
type kaPair struct {
	l      *lab.Lab
	bin    string // keepalived
	redis  string
	timing KeepalivedTiming
	procs  map[string]*lab.Proc
}

var kaClaimRE = regexp.MustCompile(`Entering MASTER STATE`)

func startKeepalived(ctx context.Context, c pairConfig, kaBin string) (*kaPair, error) {
	l, err := newLab(ctx, "bka", c)
	if err != nil {
		return nil, err
	}
	p := &kaPair{l: l, bin: kaBin, timing: c.ka, procs: map[string]*lab.Proc{}}
	if err := p.start(ctx, c.bin); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return p, nil
}

func (p *kaPair) start(ctx context.Context, hbdBin string) error {
	addr, err := p.l.StartRedis(ctx)
	if err != nil {
		return fmt.Errorf("bench: starting redis: %w", err)
	}
	p.redis = addr
	for _, h := range hosts {
		if err := startApp(ctx, p.l, hbdBin, h, addr); err != nil {
			return err
		}
	}
	for _, h := range hosts {
		if err := p.startDaemon(h); err != nil {
			return err
		}
	}
	return nil
}

// startApp runs `hbd webapp` on host as lab/cluster does and waits until it
// answers /healthz.
func startApp(ctx context.Context, l *lab.Lab, bin, host, redis string) error {
	pr, err := l.Start(host, []string{bin, "webapp", "--node", host, "--version", "v1",
		"--listen", fmt.Sprintf(":%d", appPort), "--redis", "redis://" + redis + "/0", "--drain-timeout", "3s",
		// The hosts share one file system: an admin socket each.
		"--admin", "unix:" + filepath.Join(l.Dir(), host+"-admin.sock")},
		lab.ProcOptions{Name: "webapp"})
	if err != nil {
		return fmt.Errorf("bench: starting the web app on %s: %w", host, err)
	}
	client := l.HTTPClient(host, false, time.Second)
	u := fmt.Sprintf("http://%s:%d/healthz", l.Host(host).IPv4, appPort)
	for deadline := time.Now().Add(10 * time.Second); ; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if pr.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("bench: web app on %s not healthy; see %s", host, pr.LogPath())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *kaPair) startDaemon(host string) error {
	h := p.l.Host(host)
	var peers = []string{master, standby}
	prio := prioStandby
	if host == master {
		prio = prioMaster
	}
	conf := KeepalivedConf{RouterID: host, Interface: lab.HostIf, Priority: prio, Self: h.IPv4, VIP: vip, Timing: p.timing}
	for _, o := range peers {
		if o != host {
			conf.Peers = append(conf.Peers, p.l.Host(o).IPv4)
		}
	}
	text, err := conf.Render()
	if err != nil {
		return err
	}
	dir := p.l.Dir()
	cf := filepath.Join(dir, "keepalived-"+host+".conf")
	pid := filepath.Join(dir, "keepalived-"+host+".pid")
	vpid := filepath.Join(dir, "keepalived-"+host+"-vrrp.pid")
	if err := os.WriteFile(cf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("bench: writing %s: %w", cf, err)
	}
	os.Remove(pid)
	os.Remove(vpid)
	pr, err := p.l.Start(host, KeepalivedArgs(p.bin, cf, pid, vpid), lab.ProcOptions{Name: "keepalived"})
	if err != nil {
		return fmt.Errorf("bench: starting keepalived on %s: %w", host, err)
	}
	p.procs[host] = pr
	// Up once the VRRP child exists (it writes its pid file).
	for deadline := time.Now().Add(10 * time.Second); ; {
		if len(procTree(pr.PID())) >= 2 {
			return nil
		}
		if pr.Exited() || time.Now().After(deadline) {
			return fmt.Errorf("bench: keepalived on %s did not start its VRRP process; see %s", host, pr.LogPath())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *kaPair) tool() string                 { return ToolKeepalived }
func (p *kaPair) lab() *lab.Lab                { return p.l }
func (p *kaPair) daemon(host string) *lab.Proc { return p.procs[host] }
func (p *kaPair) claimRE() *regexp.Regexp      { return kaClaimRE }
func (p *kaPair) close() error                 { return p.l.Close() }

func (p *kaPair) switchover(ctx context.Context) error {
	// keepalived's planned way: stop it. On SIGTERM the VRRP child sends
	// an advert with priority 0 and removes the VIP; the backup takes over
	// after its skew time instead of the master-down interval.
	if err := p.procs[master].Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("bench: stopping keepalived on %s: %w", master, err)
	}
	return nil
}

func (p *kaPair) kill() error { return p.procs[master].Kill() }

func (p *kaPair) restore(ctx context.Context, afterCrash bool) error {
	pr := p.procs[master]
	if err := pr.Stop(10 * time.Second); err != nil {
		return err
	}
	if afterCrash {
		// keepalived killed with SIGKILL left the VIP behind; remove it as
		// an operator (or a systemd ExecStopPost) would before restarting.
		if ok, _ := p.l.HasAddr(master, lab.HostIf, vip); ok {
			if _, err := p.l.Run(ctx, master, "ip", "addr", "del", vip.String(), "dev", lab.HostIf); err != nil {
				return err
			}
		}
	}
	return p.startDaemon(master)
}

// logMark is a position in a daemon's log.
type logMark struct {
	path string
	off  int64
}

func markLog(pr *lab.Proc) logMark {
	m := logMark{path: pr.LogPath()}
	if st, err := os.Stat(m.path); err == nil {
		m.off = st.Size()
	}
	return m
}

// countSince counts lines matching re written after the mark.
func (m logMark) countSince(re *regexp.Regexp) (int, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(m.off, io.SeekStart); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return 0, err
	}
	return len(re.FindAllIndex(b, -1)), nil
}
