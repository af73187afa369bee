// Package cluster runs a real hbd pair in a lab: on each host the real
// `hbd run` and `hbd webapp`, a real redis-server on the redis host, and a
// client, with configs written into the lab's directory. The e2e tests, the
// `hbd-lab` demo and the benchmark share it.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/internal/lab"
)

// Port is the web app's port on every host (and so on the VIP).
const Port = 8080

// Options shape a cluster. Zero values take the defaults noted.
type Options struct {
	Bin       string            // the hbd binary; required
	Nodes     []string          // default pc01, pc02
	Priority  map[string]int    // default 150 for the first node, 100 for the others
	Interval  time.Duration     // default: hbd's (5ms)
	DeadAfter time.Duration     // default: hbd's (300ms)
	HoldDown  time.Duration     // default: hbd's (1s)
	Preempt   *bool             // default: hbd's (true)
	Lifetime  time.Duration     // VIP lifetime; default: hbd's (2s)
	NoWebapp  bool              // don't start the web app (nor its track and drain)
	AppTrack  bool              // track the web app's /healthz with fault: true and its /readyz with weight 60 (interval 100ms, rise 2, fall 2) with preempt_delay 1s, as the shipped configs do
	Extra     map[string]string // extra YAML appended to a node's config
	ExtraPeer map[string][]string
	Version   string   // web app version string; default "v1"
	Metrics   bool     // serve metrics on 127.0.0.1:9707 in each host namespace
	AppArgs   []string // `hbd webapp` Redis flags in place of --redis (the lab's standalone Redis), e.g. Sentinel mode
	BGP       *BGP     // announce the BGP VIPs to a router (see StartRouted) instead of the L2 ones; default none
	// ActiveActive writes two VIP groups in place of vips: GroupWeb1 holds
	// VIP4 and prefers the first node, GroupWeb2 holds Web2VIP4 and prefers
	// the second (150 to 100 in each group; Priority is then unused). The
	// tracks and the drain are as without groups (AppTrack for the shipped
	// tracks), and the web app answers on both VIPs. Not with BGP.
	ActiveActive bool
}

// Node is one hbd host.
type Node struct {
	Name   string
	Config string // path of its hbd.yaml
	Socket string // control socket
	Hbd    *lab.Proc
	App    *lab.Proc
}

// Cluster is a running pair (or group).
type Cluster struct {
	Lab   *lab.Lab
	Opts  Options
	Key   string
	Redis string // redis address
	Nodes map[string]*Node
	order []string
}

// VIP4 and VIP6 are the cluster's VIPs; with ActiveActive, VIP4 is
// GroupWeb1's VIP and Web2VIP4 GroupWeb2's.
var (
	VIP4     = lab.VIP4
	VIP6     = lab.VIP6
	Web2VIP4 = lab.VIP4Second
)

// The VIP groups of an ActiveActive cluster.
const (
	GroupWeb1 = "web1" // id 1, VIP4, prefers the first node
	GroupWeb2 = "web2" // id 2, Web2VIP4, prefers the second node
)

// VIPURL is the web app's URL through vip.
func VIPURL(vip netip.Prefix, path string) string {
	return "http://" + netip.AddrPortFrom(vip.Addr(), Port).String() + path
}

// URL is the web app's URL through the IPv4 VIP.
func URL(path string) string { return VIPURL(VIP4, path) }

// URL6 is the web app's URL through the IPv6 VIP.
func URL6(path string) string { return VIPURL(VIP6, path) }

// Web2URL is the web app's URL through GroupWeb2's VIP (ActiveActive).
func Web2URL(path string) string { return VIPURL(Web2VIP4, path) }

// Start writes the configs and starts Redis, the web apps and the daemons.
// It returns once every daemon's control socket answers; it does not wait
// for an election.
func Start(ctx context.Context, l *lab.Lab, o Options) (*Cluster, error) {
	if o.Bin == "" {
		return nil, errors.New("cluster: Options.Bin is required")
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"pc01", "pc02"}
	}
	if o.ActiveActive && (o.BGP != nil || len(o.Nodes) < 2) {
		return nil, errors.New("cluster: ActiveActive needs two nodes or more and no BGP")
	}
	if o.Version == "" {
		o.Version = "v1"
	}
	c := &Cluster{Lab: l, Opts: o, Nodes: map[string]*Node{}, order: slices.Clone(o.Nodes)}
	c.Key = filepath.Join(l.Dir(), "hbd.key")
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(c.Key, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("cluster: writing the key: %w", err)
	}
	if !o.NoWebapp {
		addr, err := l.StartRedis(ctx)
		if err != nil {
			return nil, fmt.Errorf("cluster: starting redis: %w", err)
		}
		c.Redis = addr
	}
	for i, name := range o.Nodes {
		n := &Node{Name: name, Config: filepath.Join(l.Dir(), name+".yaml"), Socket: filepath.Join(l.Dir(), name+".sock")}
		c.Nodes[name] = n
		prio := 100
		if i == 0 {
			prio = 150
		}
		if p, ok := o.Priority[name]; ok {
			prio = p
		}
		conf := c.config(n, prio)
		if o.BGP != nil {
			section, err := c.bgpSection(n)
			if err != nil {
				return nil, err
			}
			conf += section
		}
		if err := os.WriteFile(n.Config, []byte(conf), 0o644); err != nil {
			return nil, fmt.Errorf("cluster: writing %s: %w", n.Config, err)
		}
		if !o.NoWebapp {
			if err := c.StartApp(name, o.Version); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range o.Nodes {
		if err := c.StartHbd(ctx, name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) config(n *Node, prio int) string {
	h := c.Lab.Host(n.Name)
	var peers []string
	for _, other := range c.order {
		if other != n.Name {
			peers = append(peers, c.Lab.Host(other).IPv4.String())
		}
	}
	peers = append(peers, c.Opts.ExtraPeer[n.Name]...)
	var b strings.Builder
	fmt.Fprintf(&b, "node: %s\npriority: %d\ninterface: %s\n", n.Name, prio, lab.HostIf)
	switch {
	case c.Opts.ActiveActive:
		b.WriteString(c.groupsSection())
	case c.Opts.BGP == nil: // with BGP, the VIPs are the BGP ones only
		fmt.Fprintf(&b, "vips: [%s, %q]\n", VIP4, VIP6.String())
	}
	fmt.Fprintf(&b, "listen: %s\npeers: [%s]\nauth_key_file: %s\ncontrol_socket: %s\n", h.IPv4, strings.Join(peers, ", "), c.Key, n.Socket)
	if c.Opts.Metrics {
		b.WriteString("metrics: 127.0.0.1:9707\n")
	} else {
		b.WriteString("metrics: \"\"\n")
	}
	if c.Opts.Interval > 0 {
		fmt.Fprintf(&b, "interval: %s\n", c.Opts.Interval)
	}
	if c.Opts.DeadAfter > 0 {
		fmt.Fprintf(&b, "dead_after: %s\n", c.Opts.DeadAfter)
	}
	if c.Opts.HoldDown > 0 {
		fmt.Fprintf(&b, "hold_down: %s\n", c.Opts.HoldDown)
	}
	if c.Opts.Lifetime > 0 {
		fmt.Fprintf(&b, "vip_lifetime: %s\n", c.Opts.Lifetime)
	}
	if c.Opts.Preempt != nil {
		fmt.Fprintf(&b, "preempt: %v\n", *c.Opts.Preempt)
	}
	if !c.Opts.NoWebapp {
		if c.Opts.AppTrack {
			// As the shipped configs: the two hosts' readiness checks see a
			// shared failure a check or two apart; don't move the VIP for it.
			b.WriteString("preempt_delay: 1s\n")
			fmt.Fprintf(&b, "tracks:\n  - name: webapp\n    type: http\n    url: http://127.0.0.1:%d/healthz\n    interval: 100ms\n    rise: 2\n    fall: 2\n    fault: true\n", Port)
			fmt.Fprintf(&b, "  - name: webapp-ready\n    type: http\n    url: http://127.0.0.1:%d/readyz\n    interval: 100ms\n    rise: 2\n    fall: 2\n    weight: 60\n", Port)
		}
		fmt.Fprintf(&b, "drain:\n  socket: %s\n  url: http://localhost/admin/drain\n  inflight_url: http://localhost/admin/inflight\n  undrain_url: http://localhost/admin/undrain\n  timeout: 5s\n", c.AdminSocket(n.Name))
	}
	b.WriteString(c.Opts.Extra[n.Name])
	return b.String()
}

// groupsSection is ActiveActive's groups: the same on every node.
func (c *Cluster) groupsSection() string {
	var b strings.Builder
	b.WriteString("groups:\n")
	for i, g := range []struct {
		name string
		vip  netip.Prefix
	}{{GroupWeb1, VIP4}, {GroupWeb2, Web2VIP4}} {
		var prios []string
		for j, n := range c.order {
			p := 100
			if j == i {
				p = 150
			}
			prios = append(prios, fmt.Sprintf("%s: %d", n, p))
		}
		fmt.Fprintf(&b, "  - name: %s\n    id: %d\n    vips: [%s]\n    priorities: {%s}\n", g.name, i+1, g.vip, strings.Join(prios, ", "))
	}
	return b.String()
}

// hbdNice is the niceness the shipped unit gives hbd (systemd/hbd.service,
// Nice=-10): the lab runs the daemon as it is installed, so that a busy
// host delays its heartbeats no more than it would in production.
const hbdNice = "-10"

// StartHbd starts (or restarts) a node's daemon, at the unit's niceness, and
// waits for its control socket.
func (c *Cluster) StartHbd(ctx context.Context, name string) error {
	n := c.Nodes[name]
	// nice(1) execs hbd, so the PID is hbd's and every thread of it
	// inherits the niceness (setpriority on the PID would reach one thread).
	p, err := c.Lab.Start(name, []string{"nice", "-n", hbdNice, c.Opts.Bin, "run", "-c", n.Config}, lab.ProcOptions{Name: "hbd"})
	if err != nil {
		return fmt.Errorf("cluster: starting hbd on %s: %w", name, err)
	}
	n.Hbd = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Status(ctx, name); err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("cluster: hbd on %s exited (code %d); see %s", name, p.ExitCode(), p.LogPath())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: hbd on %s did not open its control socket within 10s; see %s", name, p.LogPath())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AdminSocket is the path of a node's web app admin socket (the hosts
// share one file system, so each has its own).
func (c *Cluster) AdminSocket(name string) string {
	return filepath.Join(c.Lab.Dir(), name+"-admin.sock")
}

// StartApp starts (or restarts) a node's web app with a version string and
// waits until it answers /healthz on the host's own address.
func (c *Cluster) StartApp(name, version string) error {
	n := c.Nodes[name]
	argv := []string{c.Opts.Bin, "webapp", "--node", name, "--version", version,
		"--listen", fmt.Sprintf(":%d", Port), "--drain-timeout", "3s", "--admin", "unix:" + c.AdminSocket(name)}
	if len(c.Opts.AppArgs) > 0 {
		argv = append(argv, c.Opts.AppArgs...)
	} else {
		argv = append(argv, "--redis", "redis://"+c.Redis+"/0")
	}
	p, err := c.Lab.Start(name, argv, lab.ProcOptions{Name: "webapp"})
	if err != nil {
		return fmt.Errorf("cluster: starting the web app on %s: %w", name, err)
	}
	n.App = p
	client := c.Lab.HTTPClient(name, false, time.Second)
	url := fmt.Sprintf("http://%s:%d/healthz", c.Lab.Host(name).IPv4, Port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("cluster: web app on %s exited (code %d); see %s", name, p.ExitCode(), p.LogPath())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: web app on %s not healthy within 10s; see %s", name, p.LogPath())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KillHbd sends SIGKILL to a node's daemon and waits for it to die.
func (c *Cluster) KillHbd(name string) error { return kill(c.Nodes[name].Hbd) }

// KillApp sends SIGKILL to a node's web app and waits for it to die.
func (c *Cluster) KillApp(name string) error { return kill(c.Nodes[name].App) }

func kill(p *lab.Proc) error {
	if p == nil {
		return errors.New("cluster: no such process")
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	p.Wait(5 * time.Second) // its error is the kill itself
	if !p.Exited() {
		return fmt.Errorf("cluster: pid %d survived SIGKILL", p.PID())
	}
	return nil
}

// vip4 is the IPv4 VIP that Holds, Holders and WaitOnlyHolder look at:
// VIP4, or with BGP the BGP one.
func (c *Cluster) vip4() netip.Prefix {
	if c.Opts.BGP != nil {
		return lab.BGPVIP4
	}
	return VIP4
}

// HoldsVIP reports whether a node holds vip: an L2 VIP on its interface,
// a BGP VIP on the loopback.
func (c *Cluster) HoldsVIP(name string, vip netip.Prefix) bool {
	ifname := lab.HostIf
	if vip == lab.BGPVIP4 || vip == lab.BGPVIP6 {
		ifname = "lo"
	}
	ok, err := c.Lab.HasAddr(name, ifname, vip)
	return err == nil && ok
}

// Holds reports whether a node holds the IPv4 VIP (with BGP, the BGP VIP
// on the loopback).
func (c *Cluster) Holds(name string) bool { return c.HoldsVIP(name, c.vip4()) }

// HoldersOf lists the nodes holding vip now.
func (c *Cluster) HoldersOf(vip netip.Prefix) []string {
	var hs []string
	for _, n := range c.order {
		if c.HoldsVIP(n, vip) {
			hs = append(hs, n)
		}
	}
	return hs
}

// Holders lists the nodes holding the IPv4 VIP now.
func (c *Cluster) Holders() []string { return c.HoldersOf(c.vip4()) }

// WaitOnlyHolderOf waits until name alone holds vip and returns how long
// that took.
func (c *Cluster) WaitOnlyHolderOf(vip netip.Prefix, name string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		h := c.HoldersOf(vip)
		if len(h) == 1 && h[0] == name {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return time.Since(start), fmt.Errorf("cluster: %s is not the only holder of %s after %s (holders %v)", name, vip.Addr(), limit, h)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitOnlyHolder waits until name alone holds the IPv4 VIP and returns how
// long that took.
func (c *Cluster) WaitOnlyHolder(name string, limit time.Duration) (time.Duration, error) {
	return c.WaitOnlyHolderOf(c.vip4(), name, limit)
}

// Status asks a node's daemon for its status.
func (c *Cluster) Status(ctx context.Context, name string) (*control.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := control.Call(ctx, c.Nodes[name].Socket, control.Request{Cmd: control.CmdStatus})
	if err != nil {
		return nil, err
	}
	if !r.OK {
		return nil, errors.New(r.Error)
	}
	return r.Status, nil
}

// Handover asks node from to hand the VIP over (to "" = the best standby).
func (c *Cluster) Handover(ctx context.Context, from, to string, timeout time.Duration) (*control.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	return control.Call(ctx, c.Nodes[from].Socket, control.Request{Cmd: control.CmdHandover, To: to, Timeout: control.Duration(timeout)})
}

// Client returns an HTTP client in the client namespace.
func (c *Cluster) Client(keepAlive bool, timeout time.Duration) *http.Client {
	return c.Lab.HTTPClient("client", keepAlive, timeout)
}

// ServedBy GETs /api/whoami through the VIP and returns the X-Served-By.
func (c *Cluster) ServedBy(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Client(false, 2*time.Second).Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Header.Get(lab.HeaderServedBy), nil
}

// ClientNeigh is the client's neighbour entry (MAC) for the VIP.
func (c *Cluster) ClientNeigh(vip netip.Addr) (string, error) {
	mac, err := c.Lab.Neigh("client", vip)
	if err != nil {
		return "", err
	}
	return mac.String(), nil
}
