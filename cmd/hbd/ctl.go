package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/control"
	"github.com/hbdproject/hbd/vip"
	"go.yaml.in/yaml/v3"
)

func init() {
	register(command{name: "status", summary: "show the running daemon's state, peers and checks", run: runStatus})
	register(command{name: "handover", summary: "hand the VIP to a standby without failed requests (on the master)", run: runHandover})
	register(command{name: "maintenance", summary: "pin this node out of the election (on) or back in (off)", run: runMaintenance})
	register(command{name: "release", summary: "remove this node's VIPs from its interface (systemd ExecStopPost)", run: runRelease})
}

// defaultSocket is control_socket's default.
const defaultSocket = "/run/hbd/hbd.sock"

// socketFor finds the control socket: -s wins, else the config's, else
// (no -c given and no config at the default path) the default socket.
func socketFor(fs *flag.FlagSet, cfgPath, sock string) (string, error) {
	if sock != "" {
		return sock, nil
	}
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) && !flagSet(fs, "c") {
		return defaultSocket, nil
	}
	c, err := readConfigLoosely(cfgPath)
	if err != nil {
		return "", err
	}
	return c.ControlSocket, nil
}

// readConfigLoosely reads just enough of the config for a client command:
// it must not fail because, say, the key file is readable only by the
// daemon's user.
func readConfigLoosely(path string) (*config.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s (use -c FILE or -s SOCKET): %w", path, err)
	}
	var c config.Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if c.ControlSocket == "" {
		c.ControlSocket = defaultSocket
	}
	return &c, nil
}

func clientFlags(name, usage string) (*flag.FlagSet, *string, *string) {
	fs := newFlags(name, usage)
	cfg := fs.String("c", defaultConfig, "config `file` naming the control socket (with no -c, -s or default file: "+defaultSocket+")")
	sock := fs.String("s", "", "control `socket` path (overrides the config's control_socket)")
	return fs, cfg, sock
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfg, sock := clientFlags("status", "Usage: hbd status [-c FILE | -s SOCKET] [--json]\n\nShows the running daemon's state, epoch, priority and why, its peers\n(and, with three or more nodes, the quorum), checks, rejected frames and,\nwith a bgp: section, the BGP sessions and what is announced.\n")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	path, err := socketFor(fs, *cfg, *sock)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := control.Call(ctx, path, control.Request{Cmd: control.CmdStatus})
	if err != nil {
		return err
	}
	if !resp.OK || resp.Status == nil {
		return errors.New(resp.Error)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resp.Status)
	}
	printStatus(stdout, resp.Status)
	return nil
}

func printStatus(w io.Writer, s *control.Status) {
	out := w
	fmt.Fprintf(w, "node %s (%s): %s, epoch %d\n", s.Node, s.Version, s.State, s.Epoch)
	prio := fmt.Sprintf("priority %d", s.EffectivePriority)
	if len(s.Penalties) > 0 {
		var ps []string
		for n, wgt := range s.Penalties {
			ps = append(ps, fmt.Sprintf("-%d %s", wgt, n))
		}
		sort.Strings(ps)
		prio += fmt.Sprintf(" = %d configured %s", s.Priority, strings.Join(ps, " "))
	}
	link := fmt.Sprintf("link %s %s", s.Interface, map[bool]string{true: "up", false: "DOWN"}[s.LinkUp])
	if len(s.Groups) > 0 {
		// Priority, faults and transitions are each group's: see the table.
		fmt.Fprintf(w, "%d VIP groups; %s\n", len(s.Groups), link)
		prio = ""
	} else {
		fmt.Fprintf(w, "%s; ready %v; %s\n", prio, s.Ready, link)
	}
	switch {
	case prio == "" && len(s.Faults) > 0:
		fmt.Fprintf(w, "failing: %s\n", strings.Join(s.Faults, "; "))
	case len(s.Faults) > 0 && s.Degraded && s.State == "MASTER":
		fmt.Fprintf(w, "DEGRADED (holding the VIP: no healthy node can): %s\n", strings.Join(s.Faults, "; "))
	case len(s.Faults) > 0:
		fmt.Fprintf(w, "FAULT: %s\n", strings.Join(s.Faults, "; "))
	}
	held := "none"
	if len(s.Held) > 0 {
		held = strings.Join(s.Held, " ")
	}
	fmt.Fprintf(w, "VIPs %s; held here: %s\n", strings.Join(s.VIPs, " "), held)
	if prio != "" {
		fmt.Fprintf(w, "last transition %s ago: %s\n", time.Since(s.LastTransition).Round(time.Millisecond), s.LastReason)
	}
	if w := s.Witness; w != nil {
		lease := "not held"
		if w.LeaseLeft > 0 {
			lease = time.Duration(w.LeaseLeft).Round(time.Millisecond).String() + " left"
		}
		fmt.Fprintf(out, "witness (policy %s): reachable %v, lease %s\n", w.Policy, w.Reachable, lease)
	}
	if q := s.Quorum; q != nil {
		held := "held"
		if !q.Held {
			held = "NOT HELD: this node may not hold the VIP"
		}
		fmt.Fprintf(w, "quorum %s: %d of %d nodes in contact, a majority is %d\n", held, q.Have, q.Size, q.Need)
	}
	if b := s.BGP; b != nil {
		var ns []string
		for _, n := range b.Neighbours {
			ns = append(ns, n.Address+" "+strings.ToLower(strings.TrimPrefix(n.State, "SESSION_STATE_")))
		}
		fmt.Fprintf(out, "bgp: announcing %s; neighbours %s\n", b.Announced, strings.Join(ns, ", "))
	}
	if s.HoldDownLeft > 0 && prio != "" {
		fmt.Fprintf(w, "held down (no preemption) for %s more\n", time.Duration(s.HoldDownLeft).Round(time.Millisecond))
	}
	if s.YieldingTo != "" && prio != "" {
		fmt.Fprintf(w, "handing over to %s\n", s.YieldingTo)
	}
	if len(s.Groups) > 0 {
		printGroups(w, s.Groups)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPEER\tADDRESS\tSTATE\tALIVE\tPRIO\tEPOCH\tREADY\tUDP AGE\tTCP AGE\tRTT\tLOST")
	for _, p := range s.Peers {
		if p.Node == "" {
			p.Node = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%d\t%v\t%s\t%s\t%s\t%d\n", p.Node, p.Address, p.State, p.Alive, p.Priority, p.Epoch, p.Ready,
			age(p.LastFrame["udp"]), age(p.LastFrame["tcp"]), time.Duration(p.RTT).Round(time.Microsecond), p.Lost)
	}
	tw.Flush()
	if len(s.Checks) > 0 {
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nCHECK\tHEALTHY\tON FAILURE\tDETAIL")
		for _, c := range s.Checks {
			eff := fmt.Sprintf("-%d priority", c.Weight)
			if c.Fault {
				eff = "FAULT"
			}
			fmt.Fprintf(tw, "%s\t%v\t%s\t%s\n", c.Name, c.Healthy, eff, c.Detail)
		}
		tw.Flush()
	}
	var rej []string
	for path, m := range s.Rejected {
		for r, n := range m {
			rej = append(rej, fmt.Sprintf("%s/%s=%d", path, r, n))
		}
	}
	sort.Strings(rej)
	if len(rej) > 0 {
		fmt.Fprintf(w, "\nrejected frames: %s\n", strings.Join(rej, " "))
	}
}

// printGroups prints one line per VIP group, then each peer's state in
// each group.
func printGroups(w io.Writer, groups []control.Group) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nGROUP\tID\tSTATE\tPRIO\tEPOCH\tREADY\tVIPS\tHELD HERE\tLAST TRANSITION")
	var peers []string
	for _, g := range groups {
		held := "none"
		if len(g.Held) > 0 {
			held = strings.Join(g.Held, " ")
		}
		state := g.State
		if g.YieldingTo != "" {
			state += " (handing over to " + g.YieldingTo + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%v\t%s\t%s\t%s ago: %s\n", g.Name, g.ID, state, g.EffectivePriority, g.Epoch, g.Ready,
			strings.Join(g.VIPs, " "), held, time.Since(g.LastTransition).Round(time.Millisecond), g.LastReason)
		for _, p := range g.Peers {
			peers = append(peers, fmt.Sprintf("%s\t%s\t%s\t%d\t%d\t%v", g.Name, p.Node, p.State, p.Priority, p.Epoch, p.Ready))
		}
	}
	tw.Flush()
	if len(peers) > 0 {
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nGROUP\tPEER\tSTATE\tPRIO\tEPOCH\tREADY")
		for _, l := range peers {
			fmt.Fprintln(tw, l)
		}
		tw.Flush()
	}
}

func age(a control.Age) string {
	if a < 0 {
		return "never"
	}
	return time.Duration(a).Round(time.Millisecond).String()
}

func printSteps(w io.Writer, steps []control.Step) {
	for i, s := range steps {
		mark := "ok"
		if !s.OK {
			mark = "FAILED"
		}
		fmt.Fprintf(w, "%d. %-16s %-7s %8s  %s\n", i+1, s.Name, mark, time.Duration(s.Took).Round(100*time.Microsecond), s.Detail)
	}
}

func runHandover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfg, sock := clientFlags("handover", "Usage: hbd handover [--group NAME] [--to NODE] [--timeout D] [-c FILE | -s SOCKET]\n\nOn the master: checks that the standby is ready, drains the local app,\nreleases the VIP with a signed \"released\" frame, and waits for the standby\nto claim. Prints each step with its duration; exits 1 if the handover did\nnot complete (the old master then stays, or becomes again, master).\nWith VIP groups, --group moves one group; without it, every group this\nnode is master of moves, after one drain.\n")
	to := fs.String("to", "", "`node` to hand the VIP to (default: the best ready standby)")
	group := fs.String("group", "", "VIP `group` to move (default: every group this node is master of)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the whole handover, drain included")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	path, err := socketFor(fs, *cfg, *sock)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout+5*time.Second)
	defer cancel()
	resp, err := control.Call(cctx, path, control.Request{Cmd: control.CmdHandover, To: *to, Group: *group, Timeout: control.Duration(*timeout)})
	if err != nil {
		return err
	}
	printSteps(stdout, resp.Steps)
	if !resp.OK {
		fmt.Fprintf(stderr, "hbd handover: %s\n", resp.Error)
		return exitError{1}
	}
	fmt.Fprintln(stdout, "handover complete")
	return nil
}

func runMaintenance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfg, sock := clientFlags("maintenance", "Usage: hbd maintenance on|off [--force] [--timeout D] [-c FILE | -s SOCKET]\n\nOn pins this node out of the election; a master hands over first. Off lets\nit back in.\n")
	force := fs.Bool("force", false, "enter maintenance even if no standby can take the VIP over")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the handover a master does first")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "on" && pos[0] != "off") {
		return usageErrorf("want one argument, on or off; got %q", pos)
	}
	on := pos[0] == "on"
	path, err := socketFor(fs, *cfg, *sock)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout+5*time.Second)
	defer cancel()
	resp, err := control.Call(cctx, path, control.Request{Cmd: control.CmdMaintenance, On: on, Force: *force, Timeout: control.Duration(*timeout)})
	if err != nil {
		return err
	}
	printSteps(stdout, resp.Steps)
	if !resp.OK {
		fmt.Fprintf(stderr, "hbd maintenance: %s\n", resp.Error)
		return exitError{1}
	}
	return nil
}

func runRelease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("release", "Usage: hbd release [-c FILE]\n\nRemoves the configured VIPs from the configured interface, and the BGP\nVIPs from bgp.interface, whoever added them. systemd runs it after hbd stops (ExecStopPost), so a crashed daemon\nnever leaves a VIP behind. Safe to run when nothing is held.\n")
	path := fs.String("c", defaultConfig, "config `file`")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	c, err := readConfigLoosely(*path)
	if err != nil {
		return err
	}
	var vips []netip.Prefix
	for _, p := range c.VIPs {
		vips = append(vips, p.Prefix)
	}
	removed, err := vip.RemoveStale(c.Interface, vips)
	if err != nil {
		return err
	}
	for _, p := range removed {
		fmt.Fprintf(stdout, "released %s from %s\n", p, c.Interface)
	}
	if c.BGP.Enabled() {
		// The routes went with the daemon's sessions; the addresses on the
		// dummy interface go here.
		dummy := c.BGP.InterfaceName()
		removed, err := vip.RemoveStale(dummy, c.BGPPrefixes())
		if err != nil {
			return err
		}
		for _, p := range removed {
			fmt.Fprintf(stdout, "released %s from %s\n", p, dummy)
		}
	}
	return nil
}
