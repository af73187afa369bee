package keepalived

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Several vrrp_instance blocks become hbd VIP groups: each keeps its own
// id, VIPs, priority, preemption and tracks, but every group rides on the
// one set of heartbeat paths of the cluster, on one interface. What
// configures those paths must therefore be the same in every instance.

// ref names an instance in a message: vrrp_instance VI_1 (line 8).
func (im *importer) ref(in *instance) string {
	return fmt.Sprintf("vrrp_instance %s (%s)", in.name, im.lineRef(in.from.file, in.from.line))
}

// agree checks that the instances agree on what hbd has once per cluster,
// and that what each group has is unique among the groups.
func (im *importer) agree() {
	first := im.insts[0]
	const paths = "hbd runs one set of heartbeat paths, on one interface, for every group"
	for _, in := range im.insts[1:] {
		if a, b := word(first.iface), word(in.iface); a != "" && b != "" && a != b {
			im.fail(in.iface, "%s, but %s uses %s: %s; import the instances on %s into a second hbd config, with its own cluster_id, port and control_socket",
				b, im.ref(first), a, paths, b)
		}
		if in.advert != first.advert {
			what := "advert_int " // when blaming the instance
			if in.advertStmt != nil {
				what = ""
			}
			im.fail(orStmt(in.advertStmt, in.from), "%s%s here, but %s in %s: %s, with one interval for all; give every vrrp_instance the same advert_int",
				what, advertText(in), advertText(first), im.ref(first), paths)
		}
		if a, b := im.listen(first), im.listen(in); a.IsValid() && b.IsValid() && a != b {
			im.fail(orStmt(in.src, in.from), "this host's address is %s here, but %s in %s: %s, listening on one address; give every vrrp_instance the same unicast_src_ip",
				b, a, im.ref(first), paths)
		}
		if first.peersStmt != nil && in.peersStmt != nil {
			a, b := peerSet(first), peerSet(in)
			if !slices.Equal(a, b) {
				im.fail(in.peersStmt, "the peers are %s here, but %s in %s: %s, each frame carrying every group to every peer; give every vrrp_instance the same unicast_peer addresses",
					strings.Join(b, ", "), strings.Join(a, ", "), im.ref(first), paths)
			}
		}
	}
	for i, in := range im.insts {
		for _, prev := range im.insts[:i] {
			if prev.id != 0 && prev.id == in.id {
				im.fail(in.vrid, "%d is also the virtual_router_id of %s: it becomes the group's id, which hbd needs unique among the groups; if the two instances carry the IPv4 and IPv6 addresses of one service, merge them into one vrrp_instance, else give one another id",
					in.id, im.ref(prev))
			}
		}
		for _, v := range in.vips {
			a := netip.MustParsePrefix(v.value).Addr()
			for _, prev := range im.insts[:i] {
				if j := slices.IndexFunc(prev.vips, func(o valueFrom) bool { return netip.MustParsePrefix(o.value).Addr() == a }); j >= 0 {
					im.errs = append(im.errs, &Problem{File: v.file, Line: v.line, Keyword: v.value,
						Msg: fmt.Sprintf("%s is also a VIP of vrrp_instance %s (%s): in hbd a VIP belongs to one group only", a, prev.name, im.lineRef(prev.vips[j].file, prev.vips[j].line))})
				}
			}
		}
	}
}

// checkHosts checks this host's heartbeat address and the peers of each
// instance against each other and against every VIP, as hbd check does.
func (im *importer) checkHosts() {
	vips := map[netip.Addr]bool{}
	for _, in := range im.insts {
		for _, v := range in.vips {
			vips[netip.MustParsePrefix(v.value).Addr()] = true
		}
	}
	for _, in := range im.insts {
		listen := im.listen(in)
		if vips[listen] {
			im.fail(orStmt(in.src, in.from), "this host's address %s is a VIP: hbd needs the host's own address for heartbeats", listen)
		}
		for _, p := range in.peers {
			a := netip.MustParseAddr(p.value)
			msg := ""
			switch {
			case a == listen:
				msg = "is this host's own address (unicast_src_ip or --listen): a peer must be another host"
			case vips[a]:
				msg = "is a VIP: list the other nodes' own addresses"
			default:
				continue
			}
			im.errs = append(im.errs, &Problem{File: p.file, Line: p.line, Keyword: p.value, Msg: fmt.Sprintf("%s %s", a, msg)})
		}
	}
}

// word is the one argument of s, or "" when s is missing or malformed.
func word(s *stmt) string {
	if s == nil || len(s.args()) != 1 {
		return ""
	}
	return s.args()[0]
}

func orStmt(s, otherwise *stmt) *stmt {
	if s != nil {
		return s
	}
	return otherwise
}

func advertText(in *instance) string {
	if in.advertStmt == nil {
		return in.advert.String() + " (keepalived's default)"
	}
	return in.advert.String()
}

// listen is the heartbeat address of in: its unicast_src_ip, else
// --listen; invalid when neither parses.
func (im *importer) listen(in *instance) netip.Addr {
	s := im.opts.Listen
	if w := word(in.src); w != "" {
		s = w
	}
	a, _ := netip.ParseAddr(s)
	return a
}

// peerSet is the sorted addresses of the unicast_peer block of in.
func peerSet(in *instance) []string {
	var out []string
	for _, p := range in.peers {
		out = append(out, p.value)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mergeNotify makes the top-level notify commands. With one instance they
// are its own. hbd runs one command per kind for the transitions of every
// group (HBD_GROUP names it), so with several instances each kind must be
// given by every instance, the same command each time.
func (im *importer) mergeNotify() {
	if len(im.insts) == 1 {
		im.notify = im.insts[0].notify
		return
	}
	for _, field := range []string{"master", "backup", "fault", "any"} {
		var merged *notifyCmd
		var holder, missing *instance
		for _, in := range im.insts {
			i := slices.IndexFunc(in.notify, func(n notifyCmd) bool { return n.field == field })
			if i < 0 {
				// Given but not mapped is an error already.
				if !in.notifyGiven[notifyKeyword[field]] && missing == nil {
					missing = in
				}
				continue
			}
			n := in.notify[i]
			if merged == nil {
				merged, holder = &n, in
				continue
			}
			if !slices.Equal(n.argv, merged.argv) {
				im.fail(n.from, "differs from the %s of %s: hbd runs one notify.%s for the transitions of every group, with HBD_GROUP naming the group; give every vrrp_instance the same %s (one script can tell the groups apart by HBD_GROUP)",
					merged.from.keyword(), im.ref(holder), field, n.from.keyword())
				merged = nil
				break
			}
			merged.also = append(merged.also, n.from)
		}
		switch {
		case merged == nil:
		case missing != nil:
			im.fail(merged.from, "%s has none: hbd runs one notify.%s for the transitions of every group, with HBD_GROUP naming the group, so this command would run for group %s too; give every vrrp_instance the same %s (one script can tell the groups apart by HBD_GROUP)",
				im.ref(missing), field, missing.group, merged.from.keyword())
		default:
			im.notify = append(im.notify, *merged)
		}
	}
}

// notifyKeyword is the keepalived keyword of each notify field.
var notifyKeyword = map[string]string{"master": "notify_master", "backup": "notify_backup", "fault": "notify_fault", "any": "notify"}

// lines is "line 10" for one statement, "lines 10 and 31" or "lines 10,
// 31 and 52" for several in the imported file; statements in included
// files are named with their file.
func (im *importer) lines(ss []*stmt) string {
	if len(ss) == 1 {
		return im.lineRef(ss[0].file, ss[0].line)
	}
	same := true
	for _, s := range ss {
		same = same && s.file == ss[0].file
	}
	parts := make([]string, len(ss))
	for i, s := range ss {
		if same {
			parts[i] = strconv.Itoa(s.line)
		} else {
			parts[i] = im.lineRef(s.file, s.line)
		}
	}
	list := strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	switch {
	case !same:
		return list
	case ss[0].file != "" && ss[0].file != im.opts.File:
		return filepath.Base(ss[0].file) + " lines " + list
	default:
		return "lines " + list
	}
}
