package keepalived

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// out collects YAML lines with trailing comments, aligned on output.
type out struct{ lines [][2]string }

func (o *out) add(text, comment string) { o.lines = append(o.lines, [2]string{text, comment}) }

// comment adds a comment line at the indentation of indent.
func (o *out) comment(indent, text string) {
	o.lines = append(o.lines, [2]string{indent + "# " + text, ""})
}

// yamlPrintable replaces with U+FFFD what YAML does not allow in a
// comment: invalid UTF-8, line breaks and the characters outside YAML's
// printable set (C0 and C1 controls but tab and NEL, DEL, U+FFFE, U+FFFF).
func yamlPrintable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t', r == 0x85:
			return r
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == 0xfffe, r == 0xffff:
			return '\uFFFD'
		}
		return r
	}, s)
}

func (o *out) blank() { o.lines = append(o.lines, [2]string{"", ""}) }

func (o *out) bytes() []byte {
	col := 0
	for _, l := range o.lines {
		if l[1] != "" && len(l[0]) > col && len(l[0]) < 40 {
			col = len(l[0])
		}
	}
	var b strings.Builder
	for _, l := range o.lines {
		// Comments quote keepalived.conf, which need not be UTF-8 nor
		// printable; YAML must be both, even in comments.
		l = [2]string{strings.ToValidUTF8(l[0], "\uFFFD"), yamlPrintable(l[1])}
		if strings.HasPrefix(strings.TrimLeft(l[0], " "), "#") {
			l[0] = yamlPrintable(l[0])
		}
		b.WriteString(l[0])
		if l[1] != "" {
			pad := col + 2 - len(l[0])
			if pad < 2 {
				pad = 2
			}
			b.WriteString(strings.Repeat(" ", pad))
			b.WriteString("# " + l[1])
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// str writes s as a YAML scalar: plain when that is unambiguous, else in
// double quotes.
func str(s string) string {
	if s == "" {
		return `""`
	}
	if _, err := netip.ParseAddr(s); err == nil && !strings.HasPrefix(s, ":") && !strings.HasSuffix(s, ":") {
		return s // "::" or "2001:db8::" would read as a mapping
	}
	plain := true
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '/' ||
			i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '@' || c == '+' || c == '=' || c == ',')
		if !ok {
			plain = false
			break
		}
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		plain = false
	}
	if strings.HasSuffix(s, ":") { // "a::" would read as a mapping
		plain = false
	}
	if plain {
		return s
	}
	return strconv.Quote(s)
}

func argv(a []string) string {
	q := make([]string, len(a))
	for i, s := range a {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func dur(d time.Duration) string { return d.String() }

func (im *importer) line(s *stmt) string {
	return fmt.Sprintf("%s (%s)", strings.TrimSpace(s.keyword()+" "+s.raw), im.lineRef(s.file, s.line))
}

// lineRef is "line N", with the file's name when the line is in an
// included file.
func (im *importer) lineRef(file string, n int) string {
	if file != "" && file != im.opts.File {
		return fmt.Sprintf("%s line %d", filepath.Base(file), n)
	}
	return fmt.Sprintf("line %d", n)
}

// deadAfter is VRRP's master-down interval (RFC 5798 section 6.1):
// 3 × advert_int plus a skew of (256 − priority)/256 × advert_int, so that
// a higher-priority backup claims first, rounded to the millisecond, and
// never less than 2 × interval (hbd's own floor).
func deadAfter(advert time.Duration, priority int) time.Duration {
	skew := time.Duration(int64(256-priority) * int64(advert) / 256)
	d := (3*advert + skew).Round(time.Millisecond)
	if d < 2*advert {
		d = 2 * advert
	}
	return d
}

func (im *importer) render() []byte {
	var o out
	name := filepath.Base(im.opts.File)
	if im.opts.File == "" || im.opts.File == "-" {
		name = "standard input"
	}
	first := im.insts[0]
	multi := len(im.insts) > 1
	o.comment("", fmt.Sprintf("hbd configuration imported by `hbd import-keepalived` from %s,", name))
	if multi {
		var names []string
		for _, in := range im.insts {
			names = append(names, fmt.Sprintf("%s (%s)", in.name, im.lineRef(in.from.file, in.from.line)))
		}
		o.comment("", fmt.Sprintf("vrrp_instance %s: one VIP group each.", strings.Join(names, ", ")))
		o.comment("", "Comments say where each value came from.")
	} else {
		o.comment("", fmt.Sprintf("vrrp_instance %s (%s). Comments say where each value came from.", first.name, im.lineRef(first.from.file, first.from.line)))
	}
	o.comment("", "Review it, copy it to /etc/hbd/hbd.yaml and run: hbd check -c /etc/hbd/hbd.yaml")
	o.blank()
	if im.opts.Node != "" {
		o.add("node: "+str(im.opts.Node), "--node")
	} else {
		o.comment("", "node: defaults to the host name; it must differ between the nodes (--node)")
	}
	if multi {
		low := slices.MinFunc(im.insts, func(a, b *instance) int { return cmp.Compare(a.id, b.id) })
		o.add(fmt.Sprintf("cluster_id: %d", low.id), fmt.Sprintf("the lowest virtual_router_id (%s); each group has its own id below", im.lineRef(low.vrid.file, low.vrid.line)))
		o.add("interface: "+str(word(first.iface)), im.each(func(in *instance) *stmt { return in.iface }))
	} else {
		o.add(fmt.Sprintf("cluster_id: %d", first.id), im.line(first.vrid))
		o.add(fmt.Sprintf("priority: %d", first.priority), im.prioComment(first))
		o.add("interface: "+str(first.iface.args()[0]), im.line(first.iface))
		im.renderVIPs(&o, "", first)
	}
	const port = "; UDP and TCP port 8707"
	switch {
	case first.src == nil:
		o.add("listen: "+str(im.opts.Listen), "--listen"+port)
	case multi && slices.ContainsFunc(im.insts, func(in *instance) bool { return in.src == nil }):
		o.add("listen: "+str(first.src.args()[0]), im.line(first.src)+", and --listen"+port)
	case multi:
		o.add("listen: "+str(first.src.args()[0]), im.each(func(in *instance) *stmt { return in.src })+port)
	default:
		o.add("listen: "+str(first.src.args()[0]), im.line(first.src)+port)
	}
	peerStmts := []*stmt{first.peersStmt}
	if multi {
		peerStmts = im.all(func(in *instance) *stmt { return in.peersStmt })
	}
	o.add("peers:", fmt.Sprintf("unicast_peer (%s)", im.lines(peerStmts)))
	for _, p := range first.peers {
		o.add("  - "+str(p.value), fmt.Sprintf("line %d", p.line))
	}
	switch adverts := im.all(func(in *instance) *stmt { return in.advertStmt }); {
	case len(adverts) == 0:
		o.add("interval: "+dur(first.advert), "keepalived's default advert_int")
	case multi && len(adverts) < len(im.insts):
		o.add("interval: "+dur(first.advert), fmt.Sprintf("advert_int %s (%s), and keepalived's default", strings.Join(adverts[0].args(), " "), im.lines(adverts)))
	case multi:
		o.add("interval: "+dur(first.advert), im.each(func(in *instance) *stmt { return in.advertStmt }))
	default:
		o.add("interval: "+dur(first.advert), im.line(first.advertStmt))
	}
	if multi {
		low := slices.MinFunc(im.insts, func(a, b *instance) int { return cmp.Compare(a.priority, b.priority) })
		o.add("dead_after: "+dur(deadAfter(first.advert, low.priority)), fmt.Sprintf("3 × advert_int + (256 − %d)/256 × advert_int, like VRRP's master-down interval at the lowest priority", low.priority))
	} else {
		o.add("dead_after: "+dur(deadAfter(first.advert, first.priority)), fmt.Sprintf("3 × advert_int + (256 − %d)/256 × advert_int, like VRRP's master-down interval", first.priority))
	}
	if first.advert >= 200*time.Millisecond {
		o.comment("", "hbd's defaults are interval 5ms and dead_after 300ms: delete both lines above")
		o.comment("", "for sub-second failover (same change on every node).")
	}
	o.add("auth_key_file: "+str(im.opts.KeyFile), keyComment(im))
	if multi {
		im.renderGroups(&o)
	} else {
		im.renderPreempt(&o, "", first)
	}
	if len(im.tracks) > 0 {
		o.blank()
		o.add("tracks:", "")
		for _, t := range im.tracks {
			o.add("  - name: "+str(t.name), im.trackComment(t))
			o.add("    type: "+t.kind, "")
			if t.kind == "exec" {
				o.add("    command: "+argv(t.command), strings.TrimSuffix("split without a shell; "+t.cmdNote, "; "))
				o.add("    interval: "+dur(t.interval), "")
				if t.timeout != 0 {
					o.add("    timeout: "+dur(t.timeout), "")
				}
				o.add(fmt.Sprintf("    rise: %d", t.rise), "")
				o.add(fmt.Sprintf("    fall: %d", t.fall), "")
			} else {
				o.add("    interface: "+str(t.iface), "")
			}
			if t.fault {
				o.add("    fault: true", strings.Join(t.notes, "; "))
			} else {
				o.add(fmt.Sprintf("    weight: %d", t.weight), strings.Join(t.notes, "; "))
			}
		}
	}
	if len(im.notify) > 0 {
		o.blank()
		o.add("notify:", "")
		for _, field := range []string{"master", "backup", "fault", "any"} {
			for _, n := range im.notify {
				if n.field == field {
					c := im.line(n.from)
					if len(n.also) > 0 {
						c = fmt.Sprintf("%s (%s)", strings.TrimSpace(n.from.keyword()+" "+n.from.raw), im.lines(append([]*stmt{n.from}, n.also...)))
					}
					o.add("  "+field+": "+argv(n.argv), strings.TrimSuffix(c+"; "+n.note, "; "))
				}
			}
		}
	}
	return o.bytes()
}

// renderGroups writes the groups section: one group per instance.
func (im *importer) renderGroups(o *out) {
	o.blank()
	o.add("groups:", "")
	for _, in := range im.insts {
		o.add("  - name: "+str(in.group), im.ref(in))
		o.add(fmt.Sprintf("    id: %d", in.id), im.line(in.vrid))
		o.add(fmt.Sprintf("    priority: %d", in.priority), im.prioComment(in))
		im.renderVIPs(o, "    ", in)
		im.renderPreempt(o, "    ", in)
		if len(im.tracks) == 0 {
			continue // omitted: every track, and there is none
		}
		names := make([]string, len(in.tracks))
		for i, t := range in.tracks {
			names[i] = str(t)
			if strings.Contains(names[i], ",") { // a plain scalar ends at a comma in [ ]
				names[i] = strconv.Quote(t)
			}
		}
		c := "no track_script or track_interface: no track counts"
		if len(in.trackFrom) > 0 {
			var kws []string
			for _, s := range in.trackFrom {
				kws = append(kws, fmt.Sprintf("%s (%s)", s.keyword(), im.lineRef(s.file, s.line)))
			}
			c = strings.Join(kws, ", ")
		}
		o.add("    tracks: ["+strings.Join(names, ", ")+"]", c)
	}
}

func (im *importer) prioComment(in *instance) string {
	if in.prioStmt != nil {
		return im.line(in.prioStmt)
	}
	return "keepalived's default priority"
}

// renderVIPs writes the vips of in at indent.
func (im *importer) renderVIPs(o *out, indent string, in *instance) {
	o.add(indent+"vips:", fmt.Sprintf("%s (%s)", in.vipsStmt[0].keyword(), im.lineRef(in.vipsStmt[0].file, in.vipsStmt[0].line)))
	for _, v := range in.vips {
		c := im.lineRef(v.file, v.line)
		if v.note != "" {
			c += "; " + v.note
		}
		o.add(indent+"  - "+v.value, c)
	}
}

// renderPreempt writes the preempt and preempt_delay of in at indent.
func (im *importer) renderPreempt(o *out, indent string, in *instance) {
	switch {
	case in.nopreempt != nil:
		o.add(indent+"preempt: false", im.line(in.nopreempt))
	case in.preemptStmt != nil:
		o.add(indent+"preempt: true", im.line(in.preemptStmt))
	}
	if in.delay != nil && in.nopreempt == nil {
		d, _ := im.seconds(in.delay, in.delay.args()[0])
		o.add(indent+"preempt_delay: "+dur(d), im.line(in.delay))
	}
}

// trackComment says where a track came from: its vrrp_script and every
// track_script entry naming it, or its track_interface entries.
func (im *importer) trackComment(t track) string {
	if t.def != nil {
		return fmt.Sprintf("vrrp_script %s (%s), track_script (%s)", t.def.args()[0], im.lineRef(t.def.file, t.def.line), im.lines(t.uses))
	}
	return fmt.Sprintf("track_interface %s (%s)", t.iface, im.lines(t.uses))
}

// all is what get gives for each instance, nils left out.
func (im *importer) all(get func(*instance) *stmt) []*stmt {
	var out []*stmt
	for _, in := range im.insts {
		if s := get(in); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// each is the comment for a setting every instance gives alike: the
// first's text and every instance's line.
func (im *importer) each(get func(*instance) *stmt) string {
	ss := im.all(get)
	return fmt.Sprintf("%s (%s)", strings.TrimSpace(ss[0].keyword()+" "+ss[0].raw), im.lines(ss))
}

func keyComment(im *importer) string {
	if in := im.firstAuth(); in != nil {
		return fmt.Sprintf("replaces authentication (%s): hbd keygen --write %s", im.lineRef(in.auth.file, in.auth.line), im.opts.KeyFile)
	}
	return "hbd keygen --write " + im.opts.KeyFile + "; the same file on every node"
}
