package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// frrDir is where Debian's frr package keeps the daemons.
const frrDir = "/usr/lib/frr"

// FRR is a real router: Debian FRR's zebra (which installs routes into the
// kernel) and bgpd, in one host's namespace, with a config and socket
// directory of their own in the lab's Dir, so that the host's /etc/frr and
// its frr service are never touched. Its methods are not safe for
// concurrent use.
type FRR struct {
	l     *Lab
	host  string
	dir   string
	zebra *Proc
	bgpd  *Proc
}

// StartFRR writes bgpdConf (bgpd's configuration, e.g. a `router bgp`
// block) and starts zebra and bgpd in host's namespace, then waits until
// vtysh answers.
func (l *Lab) StartFRR(ctx context.Context, host, bgpdConf string) (*FRR, error) {
	if err := checkCommands([]Prereq{{Command: "vtysh", Package: "frr"}}); err != nil {
		return nil, err
	}
	if _, err := l.host(host); err != nil {
		return nil, err
	}
	f := &FRR{l: l, host: host, dir: filepath.Join(l.Dir(), "frr-"+host)}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: frr dir: %w", err)
	}
	for name, body := range map[string]string{
		"zebra.conf":  "hostname " + host + "\n",
		"bgpd.conf":   bgpdConf,
		"vtysh.conf":  "",
		"daemons.txt": "zebra and bgpd only, started by the lab\n",
	} {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte(body), 0o644); err != nil {
			return nil, fmt.Errorf("lab: writing frr %s: %w", name, err)
		}
	}
	return f, f.start(ctx)
}

func (f *FRR) start(ctx context.Context) error {
	common := func(daemon string) []string {
		return []string{filepath.Join(frrDir, daemon),
			"-f", filepath.Join(f.dir, daemon+".conf"), "-i", filepath.Join(f.dir, daemon+".pid"),
			"-z", filepath.Join(f.dir, "zserv.api"), "--vty_socket", f.dir,
			"-u", "root", "-g", "frrvty", "-P", "0", "--log", "stdout"}
	}
	var err error
	if f.zebra, err = f.l.Start(f.host, common("zebra"), ProcOptions{Name: "zebra"}); err != nil {
		return err
	}
	if err := f.waitVty(ctx, "zebra", "show version"); err != nil {
		return err
	}
	if f.bgpd, err = f.l.Start(f.host, append(common("bgpd"), "-p", "179"), ProcOptions{Name: "bgpd"}); err != nil {
		return err
	}
	return f.waitVty(ctx, "bgpd", "show bgp summary json")
}

// waitVty waits until a vtysh command answers, or the daemon exits.
func (f *FRR) waitVty(ctx context.Context, daemon, cmd string) error {
	p := f.zebra
	if daemon == "bgpd" {
		p = f.bgpd
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := f.Vtysh(ctx, cmd)
		if err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("lab: frr %s exited (code %d); see %s", daemon, p.ExitCode(), p.LogPath())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: frr %s did not answer within 15s: %w; see %s", daemon, err, p.LogPath())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Vtysh runs one vtysh command against this FRR and returns its output.
func (f *FRR) Vtysh(ctx context.Context, cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return runCommand(ctx, "", "vtysh", "--vty_socket", f.dir, "-c", cmd)
}

// Stop ends bgpd, then zebra (SIGTERM, SIGKILL after 5 s): bgpd's
// sessions end with a Cease NOTIFICATION and zebra removes its routes.
func (f *FRR) Stop() error {
	var errs []error
	for _, p := range []*Proc{f.bgpd, f.zebra} {
		if p != nil {
			errs = append(errs, p.Stop(5*time.Second))
		}
	}
	return errors.Join(errs...)
}

// Restart stops FRR and starts it again with the same configuration.
func (f *FRR) Restart(ctx context.Context) error {
	if err := f.Stop(); err != nil {
		return err
	}
	return f.start(ctx)
}

// BGPPath is one path of FRR's BGP table, as `show ip bgp json` gives it.
type BGPPath struct {
	Valid    bool   `json:"valid"`
	Best     bool   `json:"bestpath"`
	Path     string `json:"path"`   // AS path, e.g. "65001 65001"
	Metric   uint32 `json:"metric"` // MED
	PeerID   string `json:"peerId"` // the neighbour it came from
	Nexthops []struct {
		IP string `json:"ip"`
	} `json:"nexthops"`
}

// Routes is FRR's BGP table for prefix's family (`show ip bgp json` or
// `show bgp ipv6 unicast json`), keyed by prefix.
func (f *FRR) Routes(ctx context.Context, ipv6 bool) (map[netip.Prefix][]BGPPath, error) {
	cmd := "show ip bgp json"
	if ipv6 {
		cmd = "show bgp ipv6 unicast json"
	}
	out, err := f.Vtysh(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var table struct {
		Routes map[string][]BGPPath `json:"routes"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		return nil, fmt.Errorf("lab: reading %q: %w: %.200s", cmd, err, out)
	}
	routes := map[netip.Prefix][]BGPPath{}
	for k, v := range table.Routes {
		p, err := netip.ParsePrefix(k)
		if err != nil {
			return nil, fmt.Errorf("lab: %q lists %q", cmd, k)
		}
		routes[p] = v
	}
	return routes, nil
}

// Best is the best path's neighbour (peerId) for prefix, "" when FRR has
// no valid best path for it.
func (f *FRR) Best(ctx context.Context, prefix netip.Prefix) (string, error) {
	routes, err := f.Routes(ctx, prefix.Addr().Is6())
	if err != nil {
		return "", err
	}
	for _, p := range routes[prefix] {
		if p.Valid && p.Best {
			return p.PeerID, nil
		}
	}
	return "", nil
}

// WaitBest polls until the best path to prefix comes from peer ("" for
// no path) and returns how long that took.
func (f *FRR) WaitBest(ctx context.Context, prefix netip.Prefix, peer string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var last string
	var lastErr error
	for time.Since(start) < limit {
		last, lastErr = f.Best(ctx, prefix)
		if lastErr == nil && last == peer {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return time.Since(start), fmt.Errorf("lab: FRR's best path to %s is from %q, not %q, after %s (err %v)", prefix, last, peer, limit, lastErr)
}

// Established lists the neighbours whose sessions are established, from
// `show bgp summary json`.
func (f *FRR) Established(ctx context.Context) ([]string, error) {
	out, err := f.Vtysh(ctx, "show bgp summary json")
	if err != nil {
		return nil, err
	}
	var sum map[string]struct {
		Peers map[string]struct {
			State string `json:"state"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		return nil, fmt.Errorf("lab: reading bgp summary: %w", err)
	}
	var up []string
	for _, fam := range sum {
		for addr, p := range fam.Peers {
			if p.State == "Established" && !strings.Contains(strings.Join(up, ","), addr) {
				up = append(up, addr)
			}
		}
	}
	return up, nil
}
