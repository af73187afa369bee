package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"time"
)

// MaxGroups is the most VIP groups a config may declare: what one frame
// carries.
const MaxGroups = 8

// Group is one VIP group: its own VIPs and its own election (its own
// master), carried by the same heartbeat paths as every other group.
type Group struct {
	// Name identifies the group in logs, status, metrics (the group
	// label), notify hooks (HBD_GROUP) and `hbd handover --group`.
	// Letters, digits, - and _, at most 32. Required, unique.
	Name string `yaml:"name"`
	// ID identifies the group on the wire: every node must give a group
	// the same id. Range 1 to 255. Required, unique.
	ID int `yaml:"id"`
	// VIPs are the group's virtual addresses, in CIDR form, held and
	// announced at L2 on the interface like vips. At least one is
	// required; a VIP belongs to one group only.
	VIPs []Prefix `yaml:"vips"`
	// Priority is this node's priority in the group, 1 to 255. Default:
	// this node's entry in priorities, else the top-level priority.
	Priority int `yaml:"priority"`
	// Priorities gives the group's priority of each node by node name, so
	// that every node can carry the same groups section; this node's
	// entry wins over priority. Default: none.
	Priorities map[string]int `yaml:"priorities"`
	// Preempt is the group's preempt. Default: the top-level preempt.
	Preempt *bool `yaml:"preempt"`
	// PreemptDelay is the group's preempt_delay. Default: the top-level
	// preempt_delay.
	PreemptDelay *Duration `yaml:"preempt_delay"`
	// Tracks names the tracks (of the top-level tracks) that count in this
	// group, with their weight or fault; an empty list, none. Default:
	// every track.
	Tracks []string `yaml:"tracks"`
	// Drain is how a handover of this group drains the local app.
	// Default: the top-level drain.
	Drain *Drain `yaml:"drain"`
}

// Election is one election the daemon runs, with every setting resolved:
// one per group, or a single one (Name "", ID 0) for a config without
// groups, whose VIPs are vips.
type Election struct {
	Name         string // "" without groups
	ID           uint8  // the group's wire id; 0 without groups
	VIPs         []netip.Prefix
	Priority     int
	Preempt      bool
	PreemptDelay time.Duration
	Tracks       []Track // the tracks that count in this election
	Drain        Drain
}

// Elections resolves the config's elections: one per group, in the
// config's order, or the single election of a config without groups.
func (c *Config) Elections() []Election {
	if len(c.Groups) == 0 {
		vips := make([]netip.Prefix, len(c.VIPs))
		for i, p := range c.VIPs {
			vips[i] = p.Prefix
		}
		return []Election{{VIPs: vips, Priority: c.Priority, Preempt: c.PreemptEnabled(),
			PreemptDelay: c.PreemptDelay.D(), Tracks: c.Tracks, Drain: c.Drain}}
	}
	out := make([]Election, 0, len(c.Groups))
	for i := range c.Groups {
		g := &c.Groups[i]
		e := Election{Name: g.Name, ID: uint8(g.ID), Priority: c.Priority, Preempt: c.PreemptEnabled(),
			PreemptDelay: c.PreemptDelay.D(), Tracks: c.Tracks, Drain: c.Drain}
		for _, p := range g.VIPs {
			e.VIPs = append(e.VIPs, p.Prefix)
		}
		if g.Priority != 0 {
			e.Priority = g.Priority
		}
		if p, ok := g.Priorities[c.Node]; ok {
			e.Priority = p
		}
		if g.Preempt != nil {
			e.Preempt = *g.Preempt
		}
		if g.PreemptDelay != nil {
			e.PreemptDelay = g.PreemptDelay.D()
		}
		if g.Tracks != nil {
			e.Tracks = []Track{}
			for _, t := range c.Tracks {
				if slices.Contains(g.Tracks, t.Name) {
					e.Tracks = append(e.Tracks, t)
				}
			}
		}
		if g.Drain != nil {
			e.Drain = *g.Drain
		}
		out = append(out, e)
	}
	return out
}

// L2VIPs are every VIP held at L2: vips, or every group's.
func (c *Config) L2VIPs() []netip.Prefix {
	var out []netip.Prefix
	for _, e := range c.Elections() {
		out = append(out, e.VIPs...)
	}
	return out
}

var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// defaultsGroups fills in each group what it takes from the top level, so
// that `hbd check` prints what each group runs with. It runs last.
func (v *validator) defaultsGroups(c *Config) {
	for i := range c.Groups {
		g := &c.Groups[i]
		if p, ok := g.Priorities[c.Node]; ok {
			g.Priority = p // what this node runs with
		} else if _, written := v.idx.lines[fmt.Sprintf("groups[%d].priority", i)]; !written {
			g.Priority = c.Priority
		}
		if g.Preempt == nil {
			p := c.PreemptEnabled()
			g.Preempt = &p
		}
		if g.PreemptDelay == nil {
			d := c.PreemptDelay
			g.PreemptDelay = &d
		}
		if g.Tracks == nil {
			g.Tracks = []string{}
			for _, t := range c.Tracks {
				g.Tracks = append(g.Tracks, t.Name)
			}
		}
		if g.Drain == nil {
			d := c.Drain
			d.Command = slices.Clone(d.Command)
			g.Drain = &d
		}
		setDur(&g.Drain.Timeout, defaultDrainTO)
	}
}

// validateGroups checks the groups and adds their VIPs to seenVIP (VIP →
// the field that names it).
func (v *validator) validateGroups(c *Config, seenVIP map[netip.Addr]string) {
	if len(c.Groups) == 0 {
		return
	}
	if len(c.VIPs) > 0 {
		v.fail("vips", "with groups, every VIP belongs to a group: move these into a group's vips")
	}
	if len(c.Groups) > MaxGroups {
		v.fail("groups", "%d groups; at most %d", len(c.Groups), MaxGroups)
	}
	if c.BGP.Enabled() {
		v.fail("groups", "groups hold L2 VIPs only: bgp and groups cannot be used together (yet)")
	}
	if c.Witness.Enabled() {
		v.fail("groups", "a witness covers a single election: witness and groups cannot be used together (yet); with three or more nodes the majority quorum keeps each group to one master")
	}
	tracks := map[string]bool{}
	for _, t := range c.Tracks {
		tracks[t.Name] = true
	}
	names, ids := map[string]int{}, map[int]int{}
	for i := range c.Groups {
		g := &c.Groups[i]
		f := fmt.Sprintf("groups[%d]", i)
		switch j, dup := names[g.Name]; {
		case g.Name == "":
			v.fail(f+".name", "required, e.g. web1")
		case !groupNameRE.MatchString(g.Name):
			v.fail(f+".name", "%q: use letters, digits, - and _, at most 32", g.Name)
		case dup:
			v.fail(f+".name", "%q is used twice (also groups[%d])", g.Name, j)
		}
		names[g.Name] = i
		switch j, dup := ids[g.ID]; {
		case g.ID == 0:
			v.fail(f+".id", "required: the group's id on the wire, 1..255, the same on every node")
		case g.ID < 1 || g.ID > 255:
			v.fail(f+".id", "%d is out of range 1..255", g.ID)
		case dup:
			v.fail(f+".id", "%d is used twice (also groups[%d])", g.ID, j)
		}
		ids[g.ID] = i
		if len(g.VIPs) == 0 {
			v.fail(f+".vips", "at least one VIP is required, e.g. [198.51.100.10/24]")
		}
		for k, p := range g.VIPs {
			v.checkVIP(fmt.Sprintf("%s.vips[%d]", f, k), p.Addr(), seenVIP)
		}
		if _, mapped := g.Priorities[c.Node]; !mapped && (g.Priority < 1 || g.Priority > 255) {
			v.fail(f+".priority", "%d is out of range 1..255", g.Priority)
		}
		for node, p := range g.Priorities {
			switch {
			case node == "" || len(node) > 64:
				v.fail(f+".priorities", "%q is not a node name (1 to 64 bytes)", node)
			case p < 1 || p > 255:
				v.fail(f+".priorities."+node, "%d is out of range 1..255", p)
			}
		}
		if g.PreemptDelay != nil && *g.PreemptDelay < 0 {
			v.fail(f+".preempt_delay", "must not be negative")
		}
		seen := map[string]bool{}
		for k, t := range g.Tracks {
			tf := fmt.Sprintf("%s.tracks[%d]", f, k)
			switch {
			case !tracks[t]:
				v.fail(tf, "%q is not the name of a track (tracks[].name)", t)
			case seen[t]:
				v.fail(tf, "%q is listed twice", t)
			}
			seen[t] = true
		}
		if g.Drain != nil {
			v.validateDrain(f+".drain", g.Drain)
		}
	}
}
