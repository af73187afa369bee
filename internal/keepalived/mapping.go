package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// one checks that s has exactly one argument.
func (im *importer) one(s *stmt) bool {
	if len(s.args()) != 1 {
		im.fail(s, "want exactly one value, got %d", len(s.args()))
		return false
	}
	return true
}

// seconds parses a keepalived TIMER: seconds, possibly with a fraction.
func (im *importer) seconds(s *stmt, v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f > 1e6 {
		im.fail(s, "%q is not a number of seconds", v)
		return 0, false
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, true
}

func (im *importer) unicastPeers(in *instance, s *stmt) {
	if !s.hasBlock {
		im.fail(s, "want a block: unicast_peer { ADDRESS … }")
		return
	}
	if in.peersStmt != nil {
		im.fail(s, "a second unicast_peer block (the first is on line %d)", in.peersStmt.line)
		return
	}
	in.peersStmt = s
	for _, p := range s.block {
		a, err := netip.ParseAddr(p.keyword())
		switch {
		case err != nil || a.Zone() != "":
			im.fail(p, "not an IP address")
			continue
		case a.IsUnspecified() || a.IsMulticast():
			im.fail(p, "%s cannot be a peer (unspecified or multicast): list the other nodes' own addresses", a)
			continue
		}
		if i := slices.IndexFunc(in.peers, func(o valueFrom) bool { return o.value == a.String() }); i >= 0 {
			im.warn(p, "%s is listed again (first on line %d): imported once", a, in.peers[i].line)
			continue
		}
		if len(p.args()) > 0 {
			im.warn(p, "ignored options %q: hbd authenticates frames instead of checking TTLs", strings.Join(p.args(), " "))
		}
		in.peers = append(in.peers, valueFrom{value: a.String(), file: p.file, line: p.line})
	}
	if len(s.block) == 0 {
		im.fail(s, "empty: hbd needs at least one peer")
	}
}

// vipValueOpts take a value; vipFlagOpts stand alone.
var (
	vipValueOpts = map[string]bool{"brd": true, "broadcast": true, "dev": true, "scope": true, "label": true, "peer": true, "preferred_lft": true, "valid_lft": true, "metric": true}
	vipFlagOpts  = map[string]bool{"home": true, "-nodad": true, "nodad": true, "noprefixroute": true, "autojoin": true, "no_track": true}
)

func (im *importer) virtualAddresses(in *instance, s *stmt) {
	if !s.hasBlock {
		im.fail(s, "want a block: %s { ADDRESS[/PREFIX] [dev IFACE] … }", s.keyword())
		return
	}
	in.vipsStmt = append(in.vipsStmt, s)
	if s.keyword() == "virtual_ipaddress_excluded" {
		im.warn(s, "imported as ordinary VIPs: hbd does not distinguish addresses left out of VRRP adverts")
	}
	for _, v := range s.block {
		text := v.keyword()
		var p netip.Prefix
		var err error
		if strings.Contains(text, "/") {
			p, err = netip.ParsePrefix(text)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(text); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			im.fail(v, "not an address or address/prefix")
			continue
		}
		if a := p.Addr(); a.IsLoopback() || a.IsMulticast() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.Is4In6() {
			im.fail(v, "%s cannot be a VIP in hbd (loopback, multicast, unspecified, link-local or IPv4-mapped)", a)
			continue
		}
		from := valueFrom{value: p.String(), file: v.file, line: v.line}
		if !strings.Contains(text, "/") {
			from.note = fmt.Sprintf("no prefix given: /%d, as keepalived does", p.Bits())
		}
		if i := slices.IndexFunc(in.vips, func(o valueFrom) bool { return netip.MustParsePrefix(o.value).Addr() == p.Addr() }); i >= 0 {
			im.warn(v, "%s is listed again (first on line %d as %s): imported once", p.Addr(), in.vips[i].line, in.vips[i].value)
			continue
		}
		args := v.args()
		var ignored []string
		for i := 0; i < len(args); i++ {
			o := args[i]
			switch {
			case vipValueOpts[o]:
				if i+1 >= len(args) {
					im.fail(v, "%s needs a value", o)
					break
				}
				val := args[i+1]
				i++
				switch o {
				case "dev":
					from.dev = val
				case "peer":
					im.fail(v, "peer %s: point-to-point VIPs are not supported", val)
				default:
					ignored = append(ignored, o+" "+val)
				}
			case vipFlagOpts[o]:
				ignored = append(ignored, o)
			default:
				im.fail(v, "unknown address option %q", o)
			}
		}
		if len(ignored) > 0 {
			im.warn(v, "ignored %s: hbd adds the VIP with its own label (IFNAME:hbd), a finite lifetime and default scope", strings.Join(ignored, ", "))
		}
		in.vips = append(in.vips, from)
	}
}

func (im *importer) notifyCmd(in *instance, s *stmt) {
	in.notifyGiven[s.keyword()] = true
	if len(s.args()) == 0 {
		im.fail(s, "want a command")
		return
	}
	argv, note, ok := im.command(s)
	if !ok {
		return
	}
	var field string
	for f, k := range notifyKeyword {
		if k == s.keyword() {
			field = f
		}
	}
	for _, n := range in.notify {
		if n.field == field {
			im.fail(s, "given twice (also line %d)", n.from.line)
			return
		}
	}
	if field == "any" {
		if len(im.insts) > 1 {
			im.warn(s, "keepalived passes TYPE NAME STATE PRIORITY as arguments; hbd passes HBD_STATE, HBD_PREVIOUS_STATE, HBD_NODE, HBD_VIPS, HBD_REASON, HBD_EPOCH and HBD_GROUP (the group, named after the instance) in the environment instead: adapt the script")
		} else {
			im.warn(s, "keepalived passes TYPE NAME STATE PRIORITY as arguments; hbd passes HBD_STATE, HBD_PREVIOUS_STATE, HBD_NODE, HBD_VIPS, HBD_REASON and HBD_EPOCH in the environment instead: adapt the script")
		}
	}
	in.notify = append(in.notify, notifyCmd{field: field, argv: argv, note: note, from: s})
}

func (im *importer) scriptUsed(name string) bool {
	for _, t := range im.tracks {
		if t.key == "script "+name {
			return true
		}
	}
	return false
}

// scriptMapped is a vrrp_script block mapped to a track, before the
// weight a track_script entry may give it.
type scriptMapped struct {
	t          track
	weight     int
	weightStmt *stmt
	ok         bool
}

// script maps the vrrp_script block named name, once: every instance
// that tracks it shares the result and its messages.
func (im *importer) script(name string) *scriptMapped {
	if m, ok := im.mapped[name]; ok {
		return m
	}
	vs := im.scripts[name]
	m := &scriptMapped{}
	im.mapped[name] = m
	t := track{name: name, key: "script " + name, def: vs, kind: "exec", interval: defaultScriptIval, rise: 1, fall: 1}
	var timeout *stmt
	scriptFailed := false // its script line is wrong: no "no script line" after that
	for _, o := range vs.block {
		switch o.keyword() {
		case "script":
			if len(o.args()) == 0 {
				im.fail(o, "want a command")
				scriptFailed = true
				continue
			}
			argv, note, ok := im.command(o)
			if !ok {
				scriptFailed = true
				continue
			}
			t.command, t.cmdNote = argv, note
		case "interval":
			if im.one(o) {
				if d, ok := im.seconds(o, o.args()[0]); ok {
					if d < minCheckInterval {
						im.fail(o, "%s: hbd runs a check at most every %s", d, minCheckInterval)
					}
					t.interval = d
				}
			}
		case "timeout":
			if im.one(o) {
				if d, ok := im.seconds(o, o.args()[0]); ok {
					t.timeout, timeout = d, o
				}
			}
		case "weight":
			if w, ok := im.weight(o); ok {
				m.weight, m.weightStmt = w, o
			}
		case "rise", "fall":
			if im.one(o) {
				n, err := strconv.Atoi(o.args()[0])
				if err != nil || n < 1 {
					im.fail(o, "%q is not a count of 1 or more", o.args()[0])
				} else if o.keyword() == "rise" {
					t.rise = n
				} else {
					t.fall = n
				}
			}
		case "user":
			im.warn(o, "ignored: hbd runs checks as its own user (hbd); grant that user what the script needs")
		case "init_fail":
			t.notes = append(t.notes, "init_fail: hbd treats a check as failing until it has passed `rise` times")
		default:
			im.fail(o, "unknown vrrp_script keyword")
		}
	}
	if t.command == nil {
		if !scriptFailed {
			im.fail(vs, "no script line")
		}
		return m
	}
	if t.timeout > t.interval {
		im.warn(timeout, "timeout %s is longer than interval %s; hbd bounds a run by its interval, so timeout is %s", t.timeout, t.interval, t.interval)
		t.timeout = t.interval
	}
	if t.timeout == t.interval {
		t.timeout = 0 // the default
	}
	m.t, m.ok = t, true
	return m
}

func (im *importer) trackScripts(in *instance, ts *stmt) {
	if !ts.hasBlock {
		im.fail(ts, "want a block: track_script { NAME [weight N] … }")
		return
	}
	for _, e := range ts.block {
		name := e.keyword()
		if _, ok := im.scripts[name]; !ok {
			im.fail(e, "no vrrp_script %q is defined", name)
			continue
		}
		if in.tracked["script "+name] {
			im.fail(e, "tracked twice")
			continue
		}
		in.tracked["script "+name] = true
		m := im.script(name)
		if !m.ok {
			continue
		}
		t := m.t
		t.notes = slices.Clone(t.notes)
		weight, weightStmt := m.weight, m.weightStmt
		// The instance's own weight for this script overrides the script's.
		if len(e.args()) > 0 {
			if len(e.args()) == 2 && e.args()[0] == "weight" {
				if w, ok := im.weight(&stmt{file: e.file, line: e.line, words: []string{"weight", e.args()[1]}}); ok {
					weight, weightStmt = w, e
				}
			} else {
				im.fail(e, "want `NAME` or `NAME weight N`, got %q", e.raw)
				continue
			}
		}
		im.setWeight(&t, weight, weightStmt)
		im.addTrack(in, t, e)
	}
}

// addTrack makes t count in the group of in, tracked from entry e: as a
// track already there when another instance tracks the same check with
// the same weight, else as a new one. An hbd track has one weight: the
// same check with another weight is a second track, under another name.
func (im *importer) addTrack(in *instance, t track, e *stmt) {
	t.uses = []*stmt{e}
	var other *track
	for i := range im.tracks {
		x := &im.tracks[i]
		if x.key != t.key {
			continue
		}
		if x.fault == t.fault && x.weight == t.weight {
			x.uses = append(x.uses, e)
			in.tracks = append(in.tracks, x.name)
			return
		}
		if other == nil {
			other = x
		}
	}
	if other != nil {
		t.name = im.trackName(t.name + "-" + in.group)
		owner := im.instanceOf(other.uses[0])
		im.warn(e, "%s here, but %s where vrrp_instance %s tracks it (%s): an hbd track has one weight, so this one is imported as a second track, %s, which runs the same check again and counts only in group %s",
			weightText(t), weightText(*other), owner.name, im.lineRef(other.uses[0].file, other.uses[0].line), t.name, in.group)
	}
	im.tracks = append(im.tracks, t)
	in.tracks = append(in.tracks, t.name)
}

// trackName is name, or name-2, name-3, … when a track has it already.
func (im *importer) trackName(name string) string {
	taken := func(n string) bool {
		return slices.ContainsFunc(im.tracks, func(t track) bool { return t.name == n })
	}
	n := name
	for i := 2; taken(n); i++ {
		n = fmt.Sprintf("%s-%d", name, i)
	}
	return n
}

// instanceOf is the instance whose block holds the track entry e.
func (im *importer) instanceOf(e *stmt) *instance {
	for _, in := range im.insts {
		for _, b := range in.trackFrom {
			if slices.Contains(b.block, e) {
				return in
			}
		}
	}
	panic("keepalived: a track entry outside every instance")
}

// weightText says how keepalived weighs a track: "weight -20", or "no
// weight" (FAULT while failing).
func weightText(t track) string {
	if t.kaWeight == 0 {
		return "no weight (FAULT while failing)"
	}
	return fmt.Sprintf("weight %+d", t.kaWeight)
}

// weight parses `weight N`; keepalived's "reverse" has no hbd counterpart.
func (im *importer) weight(s *stmt) (int, bool) {
	a := s.args()
	if len(a) == 2 && a[1] == "reverse" {
		im.fail(s, "`reverse` is not supported: hbd only lowers the priority of a failing check")
		return 0, false
	}
	if len(a) != 1 {
		im.fail(s, "want one number from -253 to 253")
		return 0, false
	}
	n, err := strconv.Atoi(a[0])
	if err != nil || n < -254 || n > 254 {
		im.fail(s, "%q is not a number from -253 to 253", a[0])
		return 0, false
	}
	return n, true
}

// setWeight maps a keepalived weight: 0 puts the instance in FAULT while
// the check fails; -N subtracts N while it fails; +N adds N while it
// passes, which hbd can only express as subtracting N while it fails.
func (im *importer) setWeight(t *track, w int, from *stmt) {
	t.kaWeight = w
	switch {
	case w == 0:
		t.fault = true
		t.notes = append(t.notes, "no weight: FAULT while failing, as in keepalived")
	case w < 0:
		t.weight = -w
		t.notes = append(t.notes, fmt.Sprintf("weight %d (%s)", w, im.lineRef(from.file, from.line)))
	default:
		t.weight = w
		t.notes = append(t.notes, fmt.Sprintf("weight +%d (%s): keepalived adds it while passing, hbd subtracts it while failing", w, im.lineRef(from.file, from.line)))
		im.warn(from, "positive weight %d: keepalived adds it while the check passes, hbd subtracts it while the check fails; the order of nodes running the same check is the same, but compare the priorities", w)
	}
}

func (im *importer) trackInterfaces(in *instance, ti *stmt) {
	if !ti.hasBlock {
		im.fail(ti, "want a block: track_interface { IFACE [weight N] … }")
		return
	}
	for _, e := range ti.block {
		t := track{name: "link-" + e.keyword(), key: "interface " + e.keyword(), kind: "interface", iface: e.keyword()}
		if in.iface != nil && len(in.iface.args()) == 1 && e.keyword() == in.iface.args()[0] {
			im.warn(e, "hbd always watches the VIP interface %s; no track is needed for it", e.keyword())
			continue
		}
		w, from := 0, e
		if len(e.args()) > 0 {
			if len(e.args()) < 2 || e.args()[0] != "weight" {
				im.fail(e, "want `IFACE` or `IFACE weight N`, got %q", e.raw)
				continue
			}
			var ok bool
			if w, ok = im.weight(&stmt{file: e.file, line: e.line, words: e.args()}); !ok {
				continue
			}
		}
		if in.tracked[t.key] {
			im.fail(e, "tracked twice")
			continue
		}
		in.tracked[t.key] = true
		im.setWeight(&t, w, from)
		im.addTrack(in, t, e)
	}
}

// shellChars are the characters that only mean something to a shell.
const shellChars = "|&;<>()$`\\*?[]~{}"

// splitCommand splits a script or notify command into a program and its
// arguments the way keepalived does without a shell: on blanks, with
// single or double quotes grouping. Anything that needs a shell to mean
// what it says (pipes, redirections, variables, globs, …) is refused.
func splitCommand(s *stmt) ([]string, error) {
	text := s.raw
	if len(s.args()) == 1 && s.quoted[1] {
		text = s.args()[0] // script "/usr/bin/killall -0 haproxy"
	}
	var argv []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				argv = append(argv, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			j := strings.IndexByte(text[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("command %q: unterminated %c quote", text, c)
			}
			part := text[i+1 : i+1+j]
			if c == '"' && strings.ContainsAny(part, "$`\\") {
				return nil, fmt.Errorf("command %q needs a shell (%q inside double quotes); hbd runs commands without one: put the shell code in a script file and name that file", text, part)
			}
			cur.WriteString(part)
			inWord = true
			i += j + 1
		case strings.IndexByte(shellChars, c) >= 0:
			return nil, fmt.Errorf("command %q needs a shell (%q); hbd runs commands without one: put the shell code in a script file and name that file", text, string(c))
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		argv = append(argv, cur.String())
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	if strings.Contains(argv[0], "=") && !strings.Contains(argv[0], "/") {
		return nil, fmt.Errorf("command %q starts with a variable assignment, which needs a shell; hbd runs commands without one", text)
	}
	return argv, nil
}

// command splits the command of s and makes its program an absolute path:
// hbd runs commands without a shell or PATH. A bare name (pidof) is looked
// up on the importing host's PATH, and note says so for the output's
// comment; a relative path (./check.sh) is an error.
func (im *importer) command(s *stmt) (argv []string, note string, ok bool) {
	argv, err := splitCommand(s)
	if err != nil {
		im.fail(s, "%v", err)
		return nil, "", false
	}
	prog := argv[0]
	switch {
	case strings.HasPrefix(prog, "/"):
		return argv, "", true
	case strings.Contains(prog, "/"):
		im.fail(s, "the program %q is a relative path: give its absolute path (hbd runs commands without a shell or PATH, from /)", prog)
		return nil, "", false
	}
	abs, err := im.opts.LookPath(prog)
	if err != nil || !filepath.IsAbs(abs) {
		im.fail(s, "the program %q is not on this host's PATH: give its absolute path (hbd runs commands without a shell or PATH)", prog)
		return nil, "", false
	}
	argv[0] = abs
	return argv, fmt.Sprintf("%s: found at %s on the importing host's PATH; check it on every node", prog, abs), true
}
