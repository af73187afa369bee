package systemd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/testenv"
)

var units = []string{"hbd.service", "hbd-webapp.service"}

// hbdBin is the binary TestMain builds for the tests that run hbd.
var hbdBin string

func TestMain(m *testing.M) { testenv.MainWithHBD(m, &hbdBin) }

// builtHBD is the hbd binary built for this package's tests.
func builtHBD(t *testing.T) string { return hbdBin }

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := Files.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unitCopies writes the units to a temp dir with /usr/bin/hbd pointing at
// a freshly built binary, so that systemd-analyze checks real executables.
func unitCopies(t *testing.T, edit func(name, text string) string) []string {
	t.Helper()
	bin := builtHBD(t)
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		text := strings.ReplaceAll(string(read(t, u)), "/usr/bin/hbd", bin)
		if edit != nil {
			text = edit(u, text)
		}
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// verify runs systemd-analyze verify and returns the lines it printed about
// our units (it may also grumble about unrelated units on the machine).
func verify(t *testing.T, paths []string) (ours []string, err error) {
	t.Helper()
	sa := testenv.RequireCommand(t, "systemd-analyze", "systemd")
	cmd := exec.Command(sa, append([]string{"verify", "--man=no"}, paths...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	dir := filepath.Dir(paths[0])
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, dir) || strings.Contains(l, "hbd.service") || strings.Contains(l, "hbd-webapp.service") {
			ours = append(ours, l)
		}
	}
	return ours, err
}

func TestUnitsVerify(t *testing.T) {
	lines, err := verify(t, unitCopies(t, nil))
	if err != nil || len(lines) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, strings.Join(lines, "\n"))
	}
	// The check above must be able to fail: a misspelt directive is only a
	// warning (exit status 0), so it is the output that counts.
	lines, _ = verify(t, unitCopies(t, func(_, text string) string {
		return strings.Replace(text, "NoNewPrivileges=", "NoNewPrivilege=", 1)
	}))
	if !strings.Contains(strings.Join(lines, "\n"), "NoNewPrivilege") {
		t.Fatalf("systemd-analyze verify did not report a misspelt directive: %q", lines)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnitsSecurityExposure asks systemd-analyze security for the units'
// exposure score (0 = locked down, 10 = unprotected).
func TestUnitsSecurityExposure(t *testing.T) {
	sa := testenv.RequireCommand(t, "systemd-analyze", "systemd")
	for _, p := range unitCopies(t, nil) {
		cmd := exec.Command(sa, "security", "--offline=true", "--no-pager", p)
		cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_COLORS=0")
		out, err := cmd.CombinedOutput()
		m := exposureRE.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: %v: no exposure level in\n%s", filepath.Base(p), err, out)
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: exposure %.1f", filepath.Base(p), score)
		if score > 3.0 {
			t.Errorf("%s: exposure %.1f, want at most 3.0:\n%s", filepath.Base(p), score, out)
		}
	}
}

// directives parses a unit file into "Section.Key" → values, in order.
func directives(text string) map[string][]string {
	d := map[string][]string{}
	section := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			section = strings.Trim(l, "[]")
		default:
			k, v, _ := strings.Cut(l, "=")
			d[section+"."+strings.TrimSpace(k)] = append(d[section+"."+strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return d
}

var hardening = map[string]string{
	"NoNewPrivileges":         "yes",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"ProtectClock":            "yes",
	"ProtectHostname":         "yes",
	"RestrictNamespaces":      "yes",
	"RestrictRealtime":        "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
	"SystemCallFilter":        "@system-service",
	"UMask":                   "0077",
}

func TestUnitsHardening(t *testing.T) {
	for _, tc := range []struct {
		unit string
		want map[string]string
	}{
		{"hbd.service", map[string]string{
			"Type":                    "notify",
			"User":                    "hbd",
			"WatchdogSec":             "5s",
			"Restart":                 "on-failure",
			"AmbientCapabilities":     "CAP_NET_ADMIN CAP_NET_RAW CAP_BPF", // CAP_BPF: daisy chaining
			"CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_RAW CAP_BPF",
			"SystemCallFilter":        "@system-service bpf",
			"Nice":                    "-10",
			"RuntimeDirectory":        "hbd",
			"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
			"ExecStartPre":            "/usr/bin/hbd check -q -c /etc/hbd/hbd.yaml",
			"ExecStart":               "/usr/bin/hbd run -c /etc/hbd/hbd.yaml",
			"ExecStopPost":            "/usr/bin/hbd release -c /etc/hbd/hbd.yaml",
		}},
		{"hbd-webapp.service", map[string]string{
			"DynamicUser":             "yes",
			"Restart":                 "always",
			"AmbientCapabilities":     "",
			"CapabilityBoundingSet":   "",
			"EnvironmentFile":         "/etc/hbd/webapp.env",
			"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		}},
	} {
		d := directives(string(read(t, tc.unit)))
		check := func(k, want string) {
			got := d["Service."+k]
			if len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s=%q, want exactly one %s=%s", tc.unit, k, got, k, want)
			}
		}
		for k, v := range hardening {
			if _, own := tc.want[k]; !own {
				check(k, v)
			}
		}
		for k, v := range tc.want {
			check(k, v)
		}
		if !strings.Contains(strings.Join(d["Install.WantedBy"], " "), "multi-user.target") {
			t.Errorf("%s: not WantedBy=multi-user.target", tc.unit)
		}
	}
	d := directives(string(read(t, "hbd.service")))
	// A bad config fails the start and, after a few tries, stays failed:
	// no endless restart loop once a second.
	if l, b := d["Unit.StartLimitIntervalSec"], d["Unit.StartLimitBurst"]; len(l) != 1 || l[0] == "0" || l[0] == "infinity" || len(b) != 1 || b[0] == "0" {
		t.Errorf("hbd.service: StartLimitIntervalSec=%q StartLimitBurst=%q: a failing start would be retried forever", l, b)
	}
	if r := d["Service.ExecReload"]; len(r) == 0 || r[len(r)-1] != "/bin/kill -HUP $MAINPID" {
		t.Errorf("hbd.service: ExecReload=%q, want it to end with /bin/kill -HUP $MAINPID", r)
	}
	if w := d["Service.ExecStart"]; len(w) != 1 || !strings.HasPrefix(w[0], "/usr/bin/hbd") {
		t.Errorf("hbd.service: ExecStart=%q", w)
	}
	if ws := d["Service.User"]; len(ws) == 1 && ws[0] == "root" {
		t.Error("hbd.service runs as root")
	}
	wd := directives(string(read(t, "hbd-webapp.service")))
	if w := wd["Service.ExecStart"]; len(w) != 1 || !strings.HasPrefix(w[0], "/usr/bin/hbd webapp --node %H ") || !strings.Contains(w[0], "--redis ${HBD_REDIS_URL}") {
		t.Errorf("hbd-webapp.service: ExecStart=%q", w)
	}
}

// keyFile writes a valid shared key and returns its path.
func keyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// exampleConfig returns an example config with its key file moved to a
// temp file, written to dir.
func exampleConfig(t *testing.T, name, key, dir string) string {
	t.Helper()
	return writeExample(t, name, string(read(t, name)), key, dir)
}

// writeExample writes an example's text as dir/name, with its key file
// moved to key.
func writeExample(t *testing.T, name, text, key, dir string) string {
	t.Helper()
	if !strings.Contains(text, "auth_key_file: /etc/hbd/key") {
		t.Fatalf("%s does not use /etc/hbd/key", name)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Replace(text, "/etc/hbd/key", key, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// activeActive writes the active-active example as it is (pc01's) and as
// its comment says to make pc02's: node, listen and peers changed.
func activeActive(t *testing.T, key, dir string) (pc01, pc02 string) {
	t.Helper()
	text := string(read(t, "active-active.yaml"))
	other := text
	for _, r := range [][2]string{{"node: pc01", "node: pc02"}, {"listen: 198.51.100.11:8707", "listen: 198.51.100.12:8707"},
		{"  - 198.51.100.12:8707", "  - 198.51.100.11:8707"}} {
		if strings.Count(other, r[0]) != 1 {
			t.Fatalf("active-active.yaml: want one %q", r[0])
		}
		other = strings.Replace(other, r[0], r[1], 1)
	}
	return exampleConfig(t, "active-active.yaml", key, dir), writeExample(t, "active-active-pc02.yaml", other, key, dir)
}

// TestActiveActiveExample: on both hosts the example declares the same two
// groups, web1 preferring pc01 and web2 preferring pc02, each with its own
// VIP, and the pair's tracks and drain.
func TestActiveActiveExample(t *testing.T) {
	key, dir := keyFile(t), t.TempDir()
	pair, err := config.Load(exampleConfig(t, "pc01.yaml", key, dir), config.Options{InterfaceMayBeMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	pc01, pc02 := activeActive(t, key, dir)
	prio := map[string]map[string]int{} // group → node → priority
	vips := map[string]string{}
	for _, path := range []string{pc01, pc02} {
		res, err := config.Load(path, config.Options{InterfaceMayBeMissing: true})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		c := res.Config
		if len(c.VIPs) != 0 || !reflect.DeepEqual(c.Tracks, pair.Config.Tracks) || !reflect.DeepEqual(c.Drain, pair.Config.Drain) {
			t.Errorf("%s: vips %v, tracks %+v, drain %+v; want no vips and pc01.yaml's tracks and drain", c.Node, c.VIPs, c.Tracks, c.Drain)
		}
		es := c.Elections()
		if len(es) != 2 || es[0].Name != "web1" || es[0].ID != 1 || es[1].Name != "web2" || es[1].ID != 2 {
			t.Fatalf("%s: elections %+v, want web1 (id 1) and web2 (id 2)", c.Node, es)
		}
		for _, e := range es {
			if prio[e.Name] == nil {
				prio[e.Name] = map[string]int{}
			}
			prio[e.Name][c.Node] = e.Priority
			if len(e.VIPs) != 1 || len(e.Tracks) != 2 || !e.Preempt {
				t.Errorf("%s, %s: vips %v, %d tracks, preempt %v; want one VIP, both tracks, preempt", c.Node, e.Name, e.VIPs, len(e.Tracks), e.Preempt)
			}
			v := fmt.Sprint(e.VIPs)
			if vips[e.Name] != "" && vips[e.Name] != v {
				t.Errorf("%s: %s's VIPs %s on one host, %s on the other", c.Node, e.Name, vips[e.Name], v)
			}
			vips[e.Name] = v
		}
	}
	if prio["web1"]["pc01"] <= prio["web1"]["pc02"] || prio["web2"]["pc02"] <= prio["web2"]["pc01"] {
		t.Errorf("priorities %v: want web1 to prefer pc01 and web2 pc02", prio)
	}
	if vips["web1"] == vips["web2"] {
		t.Errorf("web1 and web2 share their VIPs %s", vips["web1"])
	}
}

func TestExampleConfigs(t *testing.T) {
	key, dir := keyFile(t), t.TempDir()
	var cfgs []*config.Config
	for _, name := range []string{"pc01.yaml", "pc02.yaml"} {
		res, err := config.Load(exampleConfig(t, name, key, dir), config.Options{InterfaceMayBeMissing: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := res.Config
		if len(c.Tracks) != 2 || c.Tracks[0].Type != "http" || !c.Tracks[0].Fault ||
			c.Tracks[0].URL != "http://127.0.0.1:8080/healthz" || c.Tracks[0].Interval.D().String() != "200ms" ||
			c.Tracks[0].Rise != 2 || c.Tracks[0].Fall != 2 {
			t.Errorf("%s: tracks %+v, want first the web app's /healthz with fault: true, 200ms, rise 2, fall 2", name, c.Tracks)
		}
		// Readiness (Redis) must never be a fault: a Redis outage is
		// shared by both hosts and must not take the VIP away.
		if len(c.Tracks) == 2 && (c.Tracks[1].URL != "http://127.0.0.1:8080/readyz" || c.Tracks[1].Fault || c.Tracks[1].Weight <= 0) {
			t.Errorf("%s: track %+v, want the web app's /readyz with a weight and no fault", name, c.Tracks[1])
		}
		if c.Drain.Socket != "/run/hbd-webapp/admin.sock" || c.Drain.URL != "http://localhost/admin/drain" ||
			c.Drain.InflightURL != "http://localhost/admin/inflight" || c.Drain.UndrainURL != "http://localhost/admin/undrain" {
			t.Errorf("%s: drain %+v", name, c.Drain)
		}
		cfgs = append(cfgs, c)
	}
	a, b := cfgs[0], cfgs[1]
	if a.Node == b.Node || a.Priority == b.Priority || a.Listen == b.Listen {
		t.Error("pc01 and pc02 share a node name, priority or listen address")
	}
	if len(a.Peers) != 1 || len(b.Peers) != 1 || a.Peers[0] != b.Listen || b.Peers[0] != a.Listen {
		t.Errorf("peers are not each other's listen addresses: %v %v / %v %v", a.Peers, b.Listen, b.Peers, a.Listen)
	}
	// Apart from those four fields, the files are the same line for line.
	la := strings.Split(string(read(t, "pc01.yaml")), "\n")
	lb := strings.Split(string(read(t, "pc02.yaml")), "\n")
	if len(la) != len(lb) {
		t.Fatalf("pc01.yaml has %d lines, pc02.yaml %d", len(la), len(lb))
	}
	allowed := regexp.MustCompile(`^(# /etc/hbd/hbd.yaml on pc0|node:|priority:|listen:|  - 198\.51\.100\.1[12]:8707$)`)
	for i := range la {
		if la[i] != lb[i] && !(allowed.MatchString(la[i]) && allowed.MatchString(lb[i])) {
			t.Errorf("line %d differs beyond node/priority/listen/peers:\n  %s\n  %s", i+1, la[i], lb[i])
		}
	}
}

// TestExampleConfigsHbdCheck runs the real `hbd check` on the examples, as
// ExecStartPre does.
func TestExampleConfigsHbdCheck(t *testing.T) {
	bin := builtHBD(t)
	key, dir := keyFile(t), t.TempDir()
	aa01, aa02 := activeActive(t, key, dir)
	for _, path := range []string{exampleConfig(t, "pc01.yaml", key, dir), exampleConfig(t, "pc02.yaml", key, dir), aa01, aa02} {
		// -q, as ExecStartPre runs it: silent when the config is valid.
		out, err := exec.Command(bin, "check", "-q", "-c", path).CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("hbd check -q %s: %v, printed %q; want exit 0 and nothing", filepath.Base(path), err, out)
		}
	}
}

func TestWebappEnv(t *testing.T) {
	env := string(read(t, "webapp.env"))
	vars := map[string]bool{}
	for _, l := range strings.Split(env, "\n") {
		if l = strings.TrimSpace(l); l == "" || l[0] == '#' {
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		if !ok {
			t.Errorf("webapp.env: line %q is not VAR=value", l)
		}
		vars[k] = true
	}
	// Every variable the unit uses is set in the file, and the other way round.
	unit := string(read(t, "hbd-webapp.service"))
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{?(HBD_[A-Z_]+)`).FindAllStringSubmatch(unit, -1) {
		used[m[1]] = true
	}
	used["HBD_REDIS_PASSWORD"] = true // read by the app itself
	for k := range used {
		if !vars[k] {
			t.Errorf("webapp.env does not set %s", k)
		}
	}
	for k := range vars {
		if !used[k] {
			t.Errorf("webapp.env sets %s, which nothing reads", k)
		}
	}
}
