package keepalived

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/config"
)

// DefaultKeyFile is where the shared key file is expected by default.
const DefaultKeyFile = "/etc/hbd/key"

// Options tune an import.
type Options struct {
	// File names the input in messages and in the header comment.
	File string
	// Node is this host's node name; empty leaves it out (hbd then uses the
	// host name).
	Node string
	// KeyFile is the auth_key_file to write. Default: /etc/hbd/key.
	KeyFile string
	// Listen is this host's heartbeat address, used when the instance has
	// no unicast_src_ip.
	Listen string
	// ConfigID chooses the conditional lines (@ID …) that apply, as
	// keepalived's -i does.
	ConfigID string
	// LookPath finds a command given without a path (`script "pidof
	// haproxy"`); default exec.LookPath, on the importing host's PATH.
	LookPath func(string) (string, error)
	// FS is where included files are read from, rooted at /; default the
	// host's file system.
	FS fs.FS
}

// Result is an imported configuration.
type Result struct {
	// YAML is the hbd configuration, with comments.
	YAML []byte
	// Warnings are the settings left out or changed in meaning, and notes.
	Warnings []*Problem
}

// What hbd check takes: heartbeat interval, check interval.
const (
	minInterval      = 5 * time.Millisecond
	maxInterval      = 10 * time.Second
	minCheckInterval = 10 * time.Millisecond
)

// VRRP and keepalived defaults the mapping depends on.
const (
	defaultAdvert     = time.Second // advert_int
	defaultVRRPPrio   = 100         // priority
	defaultScriptIval = time.Second // vrrp_script interval
)

// Import converts a keepalived.conf to an hbd configuration. On failure the
// error is a Problems listing every line it cannot map.
func Import(src []byte, opts Options) (*Result, error) {
	if opts.KeyFile == "" {
		opts.KeyFile = DefaultKeyFile
	}
	if opts.LookPath == nil {
		opts.LookPath = exec.LookPath
	}
	if opts.FS == nil {
		opts.FS = os.DirFS("/")
	}
	stmts, probs := parse(opts.File, src, opts.ConfigID)
	if len(probs) == 0 {
		dir := "."
		if opts.File != "" && opts.File != "-" {
			dir = filepath.Dir(opts.File)
		}
		ic := &includer{fsys: opts.FS, configID: opts.ConfigID}
		stmts, probs = ic.includes(stmts, dir, 0)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	im := &importer{opts: opts, scripts: map[string]*stmt{}, mapped: map[string]*scriptMapped{}}
	im.top(stmts)
	if len(im.errs) > 0 {
		sortProblems(im.errs)
		return nil, im.errs
	}
	sortProblems(im.warns)
	return &Result{YAML: im.render(), Warnings: im.warns}, nil
}

type importer struct {
	opts    Options
	errs    Problems
	warns   []*Problem
	scripts map[string]*stmt         // vrrp_script blocks by name
	mapped  map[string]*scriptMapped // vrrp_script blocks mapped, each once
	insts   []*instance

	// What the instances share: top-level tracks (each counting in the
	// groups of the instances that track it) and notify commands.
	tracks []track
	notify []notifyCmd
}

// instance is one vrrp_instance, mapped, each value with where it came
// from. With one instance it is the whole config; with several, one group.
type instance struct {
	from        *stmt
	name        string // keepalived's
	group       string // the hbd group's: name made valid and unique
	state       *stmt
	iface       *stmt
	vrid        *stmt
	id          uint64 // virtual_router_id, read in decimal as keepalived does
	priority    int
	prioStmt    *stmt
	advert      time.Duration
	advertStmt  *stmt
	nopreempt   *stmt
	preemptStmt *stmt
	delay       *stmt
	src         *stmt
	peersStmt   *stmt
	peers       []valueFrom
	vipsStmt    []*stmt
	vips        []valueFrom
	auth        *stmt
	mcast       *stmt
	trackFrom   []*stmt         // its track_script and track_interface blocks
	tracked     map[string]bool // what it tracks: "script NAME" or "interface NAME"
	tracks      []string        // the names of the top-level tracks that count in its group
	notify      []notifyCmd
	notifyGiven map[string]bool // the notify keywords it has, mapped or not
}

type valueFrom struct {
	value string
	file  string
	line  int
	note  string
	dev   string // a VIP's `dev X`
}

type track struct {
	name       string
	key        string  // what it checks: "script NAME" or "interface NAME"
	def        *stmt   // the vrrp_script block; nil for an interface
	uses       []*stmt // the track_script or track_interface entries it comes from
	kind       string  // exec or interface
	command    []string
	cmdNote    string // how a bare program name was resolved
	iface      string
	interval   time.Duration
	timeout    time.Duration
	rise, fall int
	weight     int
	fault      bool
	kaWeight   int // the weight as keepalived has it (0: none)
	notes      []string
}

type notifyCmd struct {
	field string
	argv  []string
	note  string // how a bare program name was resolved
	from  *stmt
	also  []*stmt // the same command in the other instances
}

// problem is a Problem about s, in the file s is in.
func (im *importer) problem(s *stmt, level, format string, args ...any) *Problem {
	file := s.file
	if file == "" {
		file = im.opts.File
	}
	return &Problem{File: file, Line: s.line, Keyword: s.keyword(), Level: level, Msg: fmt.Sprintf(format, args...)}
}

func (im *importer) fail(s *stmt, format string, args ...any) {
	im.errs = append(im.errs, im.problem(s, "", format, args...))
}

func (im *importer) warn(s *stmt, format string, args ...any) {
	im.addWarning(im.problem(s, "warning", format, args...))
}

func (im *importer) note(s *stmt, format string, args ...any) {
	im.addWarning(im.problem(s, "note", format, args...))
}

// addWarning adds p unless the same message is there already (as when
// two instances use one vrrp_script).
func (im *importer) addWarning(p *Problem) {
	for _, q := range im.warns {
		if *q == *p {
			return
		}
	}
	im.warns = append(im.warns, p)
}

// sortProblems orders problems by file (the imported file first, as they
// were met) and line.
func sortProblems(ps []*Problem) {
	rank := map[string]int{}
	for _, p := range ps {
		if _, ok := rank[p.File]; !ok {
			rank[p.File] = len(rank)
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return rank[ps[i].File] < rank[ps[j].File]
		}
		return ps[i].Line < ps[j].Line
	})
}

func (im *importer) top(stmts []*stmt) {
	var insts []*stmt
	for _, s := range stmts {
		switch s.keyword() {
		case "global_defs":
			im.note(s, "ignored: hbd has no global settings of this kind (e-mail alerts, router_id, script security); the node name comes from --node or the host name")
		case "vrrp_script":
			if len(s.args()) != 1 || !s.hasBlock {
				im.fail(s, "want `vrrp_script NAME { … }`")
				continue
			}
			if prev, dup := im.scripts[s.args()[0]]; dup {
				im.fail(s, "%q is defined twice (also line %d)", s.args()[0], prev.line)
			}
			im.scripts[s.args()[0]] = s
		case "vrrp_instance":
			if len(s.args()) != 1 || !s.hasBlock {
				im.fail(s, "want `vrrp_instance NAME { … }`")
				continue
			}
			if len(insts) == config.MaxGroups {
				im.fail(s, "more than %d vrrp_instance blocks (the first is on line %d): hbd carries at most %d VIP groups in one cluster; import the others into a second hbd config, with its own cluster_id, port and control_socket", config.MaxGroups, insts[0].line, config.MaxGroups)
				continue
			}
			insts = append(insts, s)
		case "vrrp_sync_group":
			im.fail(s, "not supported: the instances of a sync group move together, and hbd's groups each move on their own; merge the synchronised instances into one vrrp_instance (one hbd group, whose VIPs always move together) before importing")
		case "virtual_server", "virtual_server_group", "real_server":
			im.fail(s, "LVS load balancing is not hbd's job: keep keepalived (with its VRRP part removed) or ipvsadm for it, and import only the vrrp_instance")
		case "static_ipaddress", "static_routes", "static_rules":
			im.warn(s, "ignored: hbd does not manage static addresses, routes or rules; configure them with the host's network configuration")
		case "garp_group":
			im.warn(s, "ignored: hbd sends its own burst of gratuitous ARPs and unsolicited neighbour advertisements on every claim")
		case "bfd_instance":
			im.fail(s, "BFD is not supported: hbd's own heartbeats (UDP and TCP) detect a dead peer")
		case "linkbeat_use_polling", "net_namespace", "instance", "use_pid_dir":
			im.warn(s, "ignored")
		default:
			im.fail(s, "unknown keyword (not a keepalived.conf top-level block the importer knows)")
		}
	}
	if len(insts) == 0 {
		if len(im.errs) == 0 {
			im.errs = append(im.errs, &Problem{File: im.opts.File, Msg: "no vrrp_instance block: nothing to import"})
		}
		return
	}
	taken := map[string]bool{}
	for _, s := range insts {
		in := &instance{from: s, name: s.args()[0], tracked: map[string]bool{}, notifyGiven: map[string]bool{}}
		in.group = groupName(in.name, taken)
		taken[in.group] = true
		if len(insts) > 1 && in.group != in.name {
			im.warn(s, "%q is not a name hbd takes for a group, or is taken (letters, digits, - and _, at most 32, unique): the group is named %s; give it the same name on every node", in.name, in.group)
		}
		im.insts = append(im.insts, in)
	}
	for _, in := range im.insts {
		im.instance(in)
	}
	if len(im.insts) > 1 {
		im.agree()
	}
	im.checkHosts()
	im.mergeNotify()
	for name, s := range im.scripts {
		if !im.scriptUsed(name) {
			if len(im.insts) > 1 {
				im.warn(s, "%q is not tracked by any vrrp_instance: left out", name)
			} else {
				im.warn(s, "%q is not tracked by the vrrp_instance: left out", name)
			}
		}
	}
}

// groupName makes a vrrp_instance name a valid hbd group name (letters,
// digits, - and _, at most 32) that taken does not hold yet.
func groupName(name string, taken map[string]bool) string {
	base := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, name)
	if len(base) > maxGroupName {
		base = base[:maxGroupName]
	}
	g := base
	for n := 2; taken[g]; n++ {
		suffix := fmt.Sprintf("-%d", n)
		g = base[:min(len(base), maxGroupName-len(suffix))] + suffix
	}
	return g
}

// maxGroupName is the longest group name hbd takes.
const maxGroupName = 32

func (im *importer) instance(in *instance) {
	vi := in.from
	in.priority = defaultVRRPPrio
	in.advert = defaultAdvert
	var trackScripts, trackIfaces []*stmt
	for _, s := range vi.block {
		switch k := s.keyword(); k {
		case "state":
			if a := s.args(); len(a) != 1 || (a[0] != "MASTER" && a[0] != "BACKUP") {
				im.fail(s, "want MASTER or BACKUP")
			}
			in.state = s
		case "interface":
			if im.one(s) {
				in.iface = s
			}
		case "virtual_router_id":
			if im.one(s) {
				n, err := strconv.ParseUint(s.args()[0], 10, 32)
				in.id = n
				switch {
				case err != nil || n == 0:
					im.fail(s, "%q is not a number from 1 to 255", s.args()[0])
				case n > 255 && len(im.insts) > 1:
					im.fail(s, "%q is not a number from 1 to 255: it becomes the id of group %s", s.args()[0], in.group)
				}
			}
			in.vrid = s
		case "priority":
			if im.one(s) {
				n, err := strconv.Atoi(s.args()[0])
				if err != nil || n < 1 || n > 255 {
					im.fail(s, "%q is not a number from 1 to 255", s.args()[0])
				}
				in.priority, in.prioStmt = n, s
			}
		case "advert_int":
			if im.one(s) {
				d, ok := im.seconds(s, s.args()[0])
				switch {
				case ok && d <= 0:
					im.fail(s, "must be more than 0")
				case ok && (d < minInterval || d > maxInterval):
					im.fail(s, "%s: hbd's heartbeat interval is %s to %s", d, minInterval, maxInterval)
				}
				in.advert, in.advertStmt = d, s
			}
		case "nopreempt":
			in.nopreempt = s
		case "preempt":
			in.preemptStmt = s
		case "preempt_delay":
			if im.one(s) {
				if _, ok := im.seconds(s, s.args()[0]); ok {
					in.delay = s
				}
			}
		case "unicast_src_ip":
			if im.one(s) {
				if a, err := netip.ParseAddr(s.args()[0]); err != nil || a.Zone() != "" {
					im.fail(s, "%q is not an IP address", s.args()[0])
				}
				in.src = s
			}
		case "unicast_peer":
			im.unicastPeers(in, s)
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			im.virtualAddresses(in, s)
		case "authentication":
			if first := im.firstAuth(); first != nil {
				im.note(s, "not imported, like the authentication on %s (vrrp_instance %s)", im.lineRef(first.auth.file, first.auth.line), first.name)
			} else {
				im.note(s, "not imported: hbd signs every frame with HMAC-SHA256 under the key in auth_key_file (%s), not a VRRP password: write it with `hbd keygen` and copy the same file to every node", im.opts.KeyFile)
			}
			in.auth = s
		case "track_script":
			trackScripts = append(trackScripts, s)
			in.trackFrom = append(in.trackFrom, s)
		case "track_interface":
			trackIfaces = append(trackIfaces, s)
			in.trackFrom = append(in.trackFrom, s)
		case "notify_master", "notify_backup", "notify_fault", "notify":
			im.notifyCmd(in, s)
		case "notify_stop", "notify_deleted", "notify_master_rx_lower_pri":
			im.warn(s, "ignored: hbd runs hooks on becoming master, backup or fault, and on every transition (notify.any)")
		case "smtp_alert":
			im.warn(s, "ignored: hbd sends no e-mail; use a notify hook or alert on the hbd_state metric")
		case "mcast_src_ip":
			in.mcast = s
		case "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
			"garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_interval", "gna_interval", "lower_prio_no_advert",
			"higher_prio_send_advert":
			im.warn(s, "ignored: hbd sends a fixed burst of gratuitous ARPs / unsolicited NAs on every claim and re-announces after a split brain")
		case "version", "vrrp_version", "accept", "no_accept", "strict_mode", "debug", "skip_check_adv_addr",
			"check_unicast_src", "native_ipv6", "unicast_ttl", "kernel_rx_buf_size", "unicast_fault_no_peer",
			"vrrp_skip_check_adv_addr", "vrrp_strict":
			im.warn(s, "ignored: a VRRP protocol setting with no meaning for hbd's own heartbeats")
		case "dont_track_primary":
			im.warn(s, "ignored: hbd always watches the interface's link and never holds the VIP on a dead link")
		case "use_vmac", "vmac_xmit_base":
			im.fail(s, "virtual MAC addresses are not supported: hbd moves the address and announces the new MAC with gratuitous ARP")
		case "virtual_routes", "virtual_rules":
			im.fail(s, "hbd does not move routes or rules with the VIP: add them from a notify.master command (and remove them in notify.backup / notify.fault)")
		case "track_file", "track_process", "track_bfd", "track_src_ip":
			im.fail(s, "not supported: rewrite it as a vrrp_script with a command (an exec track)")
		default:
			im.fail(s, "unknown vrrp_instance keyword (the importer does not know how to map it)")
		}
	}
	if in.iface == nil {
		im.fail(vi, "no interface: hbd needs the interface that carries the VIPs")
	}
	if in.vrid == nil {
		if len(im.insts) > 1 {
			im.fail(vi, "no virtual_router_id: it becomes the id of group %s and must be the same on every node", in.group)
		} else {
			im.fail(vi, "no virtual_router_id: it becomes hbd's cluster_id and must be the same on every node")
		}
	}
	for _, v := range in.vips {
		if v.dev != "" && in.iface != nil && len(in.iface.args()) == 1 && v.dev != in.iface.args()[0] {
			im.errs = append(im.errs, &Problem{File: v.file, Line: v.line, Keyword: v.value,
				Msg: fmt.Sprintf("dev %s: hbd holds every VIP on the one interface (%s); give this address its own hbd cluster", v.dev, in.iface.args()[0])})
		}
	}
	if len(in.vips) == 0 {
		im.fail(vi, "no virtual_ipaddress: nothing to fail over")
	}
	switch {
	case in.peersStmt == nil && in.mcast != nil:
		im.fail(in.mcast, "multicast VRRP: hbd sends unicast only; list the other nodes in a unicast_peer { } block and this host's address in unicast_src_ip")
	case in.peersStmt == nil:
		im.fail(vi, "no unicast_peer block: this instance uses multicast VRRP, and hbd sends unicast only; list the other nodes in unicast_peer { } and this host's address in unicast_src_ip")
	case in.mcast != nil:
		im.warn(in.mcast, "ignored: hbd sends unicast from unicast_src_ip")
	}
	if in.src == nil && im.opts.Listen == "" && in.peersStmt != nil {
		im.fail(vi, "no unicast_src_ip: hbd needs this host's own heartbeat address; add unicast_src_ip or pass --listen ADDRESS")
	}
	if im.opts.Listen != "" && in == im.insts[0] {
		if a, err := netip.ParseAddr(im.opts.Listen); err != nil || a.Zone() != "" {
			im.errs = append(im.errs, &Problem{Keyword: "--listen", Msg: fmt.Sprintf("%q is not an IP address", im.opts.Listen)})
		}
	}
	if in.state != nil {
		im.note(in.state, "hbd has no initial state: the node with the highest priority becomes master, as keepalived does once it has heard its peers")
	}
	if in.nopreempt != nil && in.state != nil && len(in.state.args()) == 1 && in.state.args()[0] == "MASTER" {
		im.warn(in.nopreempt, "keepalived only honours nopreempt with state BACKUP; hbd honours it whatever the state, so this node will not take the VIP back")
	}
	if in.delay != nil && in.nopreempt != nil {
		im.warn(in.delay, "preempt_delay has no effect with nopreempt")
	}
	for _, ts := range trackScripts {
		im.trackScripts(in, ts)
	}
	for _, ti := range trackIfaces {
		im.trackInterfaces(in, ti)
	}
}

// firstAuth is the first instance mapped so far with an authentication
// block, or nil.
func (im *importer) firstAuth() *instance {
	for _, in := range im.insts {
		if in.auth != nil {
			return in
		}
	}
	return nil
}
