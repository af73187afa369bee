package keepalived

import (
	"fmt"
	"net/netip"
	"path/filepath"
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
	if _, err := netip.ParseAddr(s); err == nil {
		return s
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
	o.comment("", fmt.Sprintf("hbd configuration imported by `hbd import-keepalived` from %s,", name))
	o.comment("", fmt.Sprintf("vrrp_instance %s (%s). Comments say where each value came from.", im.name, im.lineRef(im.inst.file, im.inst.line)))
	o.comment("", "Review it, copy it to /etc/hbd/hbd.yaml and run: hbd check -c /etc/hbd/hbd.yaml")
	o.blank()
	if im.opts.Node != "" {
		o.add("node: "+str(im.opts.Node), "--node")
	} else {
		o.comment("", "node: defaults to the host name; it must differ between the nodes (--node)")
	}
	o.add(fmt.Sprintf("cluster_id: %s", im.vrid.args()[0]), im.line(im.vrid))
	if im.prioStmt != nil {
		o.add(fmt.Sprintf("priority: %d", im.priority), im.line(im.prioStmt))
	} else {
		o.add(fmt.Sprintf("priority: %d", im.priority), "keepalived's default priority")
	}
	o.add("interface: "+str(im.iface.args()[0]), im.line(im.iface))
	o.add("vips:", fmt.Sprintf("%s (%s)", im.vipsStmt[0].keyword(), im.lineRef(im.vipsStmt[0].file, im.vipsStmt[0].line)))
	for _, v := range im.vips {
		c := im.lineRef(v.file, v.line)
		if v.note != "" {
			c += "; " + v.note
		}
		o.add("  - "+v.value, c)
	}
	if im.src != nil {
		o.add("listen: "+str(im.src.args()[0]), im.line(im.src)+"; UDP and TCP port 8707")
	} else {
		o.add("listen: "+str(im.opts.Listen), "--listen; UDP and TCP port 8707")
	}
	o.add("peers:", fmt.Sprintf("unicast_peer (%s)", im.lineRef(im.peersStmt.file, im.peersStmt.line)))
	for _, p := range im.peers {
		o.add("  - "+str(p.value), fmt.Sprintf("line %d", p.line))
	}
	da := deadAfter(im.advert, im.priority)
	if im.advertStmt != nil {
		o.add("interval: "+dur(im.advert), im.line(im.advertStmt))
	} else {
		o.add("interval: "+dur(im.advert), "keepalived's default advert_int")
	}
	o.add("dead_after: "+dur(da), fmt.Sprintf("3 × advert_int + (256 − %d)/256 × advert_int, like VRRP's master-down interval", im.priority))
	if im.advert >= 200*time.Millisecond {
		o.comment("", "hbd's defaults are interval 5ms and dead_after 300ms: delete both lines above")
		o.comment("", "for sub-second failover (same change on every node).")
	}
	o.add("auth_key_file: "+str(im.opts.KeyFile), keyComment(im))
	switch {
	case im.nopreempt != nil:
		o.add("preempt: false", im.line(im.nopreempt))
	case im.preemptStmt != nil:
		o.add("preempt: true", im.line(im.preemptStmt))
	}
	if im.delay != nil && im.nopreempt == nil {
		d, _ := im.seconds(im.delay, im.delay.args()[0])
		o.add("preempt_delay: "+dur(d), im.line(im.delay))
	}
	if len(im.tracks) > 0 {
		o.blank()
		o.add("tracks:", "")
		for _, t := range im.tracks {
			o.add("  - name: "+str(t.name), t.comment)
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
					o.add("  "+field+": "+argv(n.argv), strings.TrimSuffix(im.line(n.from)+"; "+n.note, "; "))
				}
			}
		}
	}
	return o.bytes()
}

func keyComment(im *importer) string {
	if im.auth != nil {
		return fmt.Sprintf("replaces authentication (%s): hbd keygen --write %s", im.lineRef(im.auth.file, im.auth.line), im.opts.KeyFile)
	}
	return "hbd keygen --write " + im.opts.KeyFile + "; the same file on every node"
}
