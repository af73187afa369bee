package keepalived

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/config"
)

// twoWith is a keepalived.conf with two instances that import as two
// groups: good's VI_1, with vi1 at line 12, then VI_2 (lines 14 to 26, the
// same but for its id, priority and VIP), with vi2 at line 25, then top at
// line 27. In VI_2 each old of replace is replaced by its new.
func twoWith(vi1, vi2, top string, replace ...string) string {
	second := strings.NewReplacer("VI_1", "VI_2", "virtual_router_id 51", "virtual_router_id 52",
		"priority 150", "priority 100", "198.51.100.10/24", "198.51.100.20/24").Replace(good)
	second = strings.Replace(strings.Replace(second, "%s", vi2, 1), "%s", top, 1)
	for k := 0; k+1 < len(replace); k += 2 {
		second = strings.Replace(second, replace[k], replace[k+1], 1)
	}
	return strings.Replace(strings.Replace(good, "%s", vi1, 1), "%s", second, 1)
}

var lookPathUsrBin = func(n string) (string, error) { return "/usr/bin/" + n, nil }

// TestGroupErrors checks every refusal of several instances: on the line
// at fault, with the reason.
func TestGroupErrors(t *testing.T) {
	nine := ""
	for i := 3; i <= 9; i++ {
		nine += fmt.Sprintf("vrrp_instance VI_%d {\n}\n", i)
	}
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"interface", twoWith("", "", "", "interface eth0", "interface eth1"),
			[]string{":15: interface: eth1, but vrrp_instance VI_1 (line 1) uses eth0: hbd runs one set of heartbeat paths, on one interface, for every group; import the instances on eth1 into a second hbd config"}},
		{"advert_int", twoWith("", "", "", "priority 100", "priority 100\n    advert_int 0.5"),
			[]string{":18: advert_int: 500ms here, but 1s (keepalived's default) in vrrp_instance VI_1 (line 1): hbd runs one set of heartbeat paths, on one interface, for every group, with one interval for all; give every vrrp_instance the same advert_int"}},
		{"advert_int default", twoWith("    advert_int 2", "", ""),
			[]string{":14: vrrp_instance: advert_int 1s (keepalived's default) here, but 2s in vrrp_instance VI_1 (line 1)"}},
		{"unicast_src_ip", twoWith("", "", "", "198.51.100.11", "198.51.100.13"),
			[]string{":18: unicast_src_ip: this host's address is 198.51.100.13 here, but 198.51.100.11 in vrrp_instance VI_1 (line 1): hbd runs one set of heartbeat paths, on one interface, for every group, listening on one address; give every vrrp_instance the same unicast_src_ip"}},
		{"unicast_peer", twoWith("", "", "", "        198.51.100.12\n", "        198.51.100.12\n        198.51.100.13\n"),
			[]string{":19: unicast_peer: the peers are 198.51.100.12, 198.51.100.13 here, but 198.51.100.12 in vrrp_instance VI_1 (line 1): hbd runs one set of heartbeat paths, on one interface, for every group, each frame carrying every group to every peer"}},
		{"same virtual_router_id", twoWith("", "", "", "virtual_router_id 52", "virtual_router_id 051"),
			[]string{":16: virtual_router_id: 51 is also the virtual_router_id of vrrp_instance VI_1 (line 1): it becomes the group's id, which hbd needs unique among the groups; if the two instances carry the IPv4 and IPv6 addresses of one service, merge them"}},
		{"virtual_router_id over 255", twoWith("", "", "", "virtual_router_id 52", "virtual_router_id 300"),
			[]string{":16: virtual_router_id: \"300\" is not a number from 1 to 255: it becomes the id of group VI_2"}},
		{"no virtual_router_id", twoWith("", "", "", "    virtual_router_id 52\n", ""),
			[]string{":14: vrrp_instance: no virtual_router_id: it becomes the id of group VI_2 and must be the same on every node"}},
		{"VIP in two instances", twoWith("", "", "", "198.51.100.20/24", "198.51.100.10/32"),
			[]string{":23: 198.51.100.10/32: 198.51.100.10 is also a VIP of vrrp_instance VI_1 (line 10): in hbd a VIP belongs to one group only"}},
		{"notify in one instance only", twoWith("    notify_master /usr/bin/vip-up", "", ""),
			[]string{":12: notify_master: vrrp_instance VI_2 (line 14) has none: hbd runs one notify.master for the transitions of every group, with HBD_GROUP naming the group, so this command would run for group VI_2 too"}},
		{"notify differs", twoWith("    notify_fault /usr/bin/vip-down 1", "    notify_fault /usr/bin/vip-down 2", ""),
			[]string{":25: notify_fault: differs from the notify_fault of vrrp_instance VI_1 (line 1): hbd runs one notify.fault for the transitions of every group, with HBD_GROUP naming the group; give every vrrp_instance the same notify_fault"}},
		{"sync group", twoWith("", "", "vrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}"),
			[]string{":27: vrrp_sync_group: not supported: the instances of a sync group move together, and hbd's groups each move on their own; merge the synchronised instances into one vrrp_instance (one hbd group, whose VIPs always move together)"}},
		{"nine instances", twoWith("", "", nine),
			[]string{":39: vrrp_instance: more than 8 vrrp_instance blocks (the first is on line 1): hbd carries at most 8 VIP groups in one cluster"}},
		{"tracked twice in one instance", twoWith("", "    track_interface {\n        eth1\n        eth1 weight -5\n    }", ""),
			[]string{":27: eth1: tracked twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblems(t, tc.src, Options{File: "keepalived.conf", LookPath: lookPathUsrBin}, tc.want)
		})
	}
}

// parseImported parses an imported config as hbd check does, the key
// moved to a temp file and the interface allowed to be missing.
func parseImported(t *testing.T, y []byte) *config.Config {
	t.Helper()
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("0123456789abcdef", 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	y = bytes.Replace(y, []byte("auth_key_file: /etc/hbd/key"), []byte("auth_key_file: "+key), 1)
	pr, err := config.Parse(y, "imported.yaml", config.Options{InterfaceMayBeMissing: true,
		Hostname: func() (string, error) { return "host", nil }})
	if err != nil {
		t.Fatalf("the imported config does not pass hbd check: %v\n%s", err, y)
	}
	return pr.Config
}

// TestActiveActive imports the classic two-instance layout on both nodes
// (testdata/active-active-pc0[12].conf): the two configs must declare the
// same groups with the same ids, each node preferred in one group, and
// run the same heartbeat settings with listen and peers swapped.
func TestActiveActive(t *testing.T) {
	cfg := map[string]*config.Config{}
	for _, node := range []string{"pc01", "pc02"} {
		file := "testdata/active-active-" + node + ".conf"
		res, err := Import(must(os.ReadFile(file)), Options{File: file, Node: node})
		if err != nil {
			t.Fatal(err)
		}
		cfg[node] = parseImported(t, res.YAML)
	}
	a, b := cfg["pc01"], cfg["pc02"]
	if a.ClusterID != b.ClusterID || a.ClusterID != 51 {
		t.Errorf("cluster_id %d and %d, want 51 on both", a.ClusterID, b.ClusterID)
	}
	if a.Interval != b.Interval || a.DeadAfter != b.DeadAfter || a.Interface != b.Interface {
		t.Errorf("heartbeat settings differ: %v/%v/%s and %v/%v/%s", a.Interval, a.DeadAfter, a.Interface, b.Interval, b.DeadAfter, b.Interface)
	}
	if a.Listen.Addr() != b.Peers[0].Addr() || b.Listen.Addr() != a.Peers[0].Addr() || len(a.Peers) != 1 || len(b.Peers) != 1 {
		t.Errorf("listen and peers are not swapped: %v %v, %v %v", a.Listen, a.Peers, b.Listen, b.Peers)
	}
	ea, eb := a.Elections(), b.Elections()
	if len(ea) != 2 || len(eb) != 2 {
		t.Fatalf("%d and %d elections, want 2 groups on each", len(ea), len(eb))
	}
	want := []struct {
		name       string
		id         uint8
		vips       string
		prioA, pri int
	}{
		{"VI_1", 51, "[198.51.100.10/24]", 150, 100},
		{"VI_2", 52, "[198.51.100.20/24 2001:db8::20/64]", 100, 150},
	}
	for i, w := range want {
		for _, e := range []config.Election{ea[i], eb[i]} {
			if e.Name != w.name || e.ID != w.id || fmt.Sprint(e.VIPs) != w.vips || !e.Preempt {
				t.Errorf("group %d: %+v, want %s id %d vips %s, preempt", i, e, w.name, w.id, w.vips)
			}
			if len(e.Tracks) != 1 || e.Tracks[0].Name != "chk_haproxy" || e.Tracks[0].Weight != 60 {
				t.Errorf("group %s: tracks %+v, want chk_haproxy weight 60", e.Name, e.Tracks)
			}
		}
		if ea[i].Priority != w.prioA || eb[i].Priority != w.pri {
			t.Errorf("group %s: priority %d on pc01, %d on pc02; want %d and %d", w.name, ea[i].Priority, eb[i].Priority, w.prioA, w.pri)
		}
		// The preferred node, its check failing, falls below the other.
		if w.prioA-60 >= w.pri && w.pri-60 >= w.prioA {
			t.Errorf("group %s: a failing chk_haproxy does not move it", w.name)
		}
	}
}

// TestGroupTracks: a check tracked by several instances is one track when
// they weigh it alike, and a second track, with a warning on the line,
// when they do not; each group lists the tracks that count in it, and an
// instance without tracks gets none.
func TestGroupTracks(t *testing.T) {
	scripts := "vrrp_script chk {\n    script \"/usr/bin/true\"\n    weight -20\n}\nvrrp_script spare {\n    script \"/usr/bin/true\"\n}"
	src := twoWith("    track_script {\n        chk\n    }\n    track_interface {\n        eth1 weight -10\n    }",
		"    track_script {\n        chk weight -30\n    }\n    track_interface {\n        eth1 weight -10\n    }", scripts)
	src += "vrrp_instance VI_3 {\n    interface eth0\n    virtual_router_id 53\n    unicast_src_ip 198.51.100.11\n    unicast_peer {\n        198.51.100.12\n    }\n" +
		"    virtual_ipaddress {\n        198.51.100.30/24\n    }\n    track_script {\n        chk weight -30\n    }\n}\nvrrp_instance VI.4 {\n    interface eth0\n    virtual_router_id 54\n" +
		"    unicast_src_ip 198.51.100.11\n    unicast_peer {\n        198.51.100.12\n    }\n    virtual_ipaddress {\n        198.51.100.40/24\n    }\n}\n"
	res, err := Import([]byte(src), Options{File: "k.conf"})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	c := parseImported(t, res.YAML)
	var names []string
	for _, tr := range c.Tracks {
		names = append(names, fmt.Sprintf("%s/%d", tr.Name, tr.Weight))
	}
	if got := strings.Join(names, " "); got != "chk/20 link-eth1/10 chk-VI_2/30" {
		t.Errorf("tracks %s, want chk/20 link-eth1/10 chk-VI_2/30\n%s", got, res.YAML)
	}
	groups := map[string]string{}
	for _, e := range c.Elections() {
		var ts []string
		for _, tr := range e.Tracks {
			ts = append(ts, tr.Name)
		}
		groups[e.Name] = strings.Join(ts, ",")
	}
	for g, want := range map[string]string{"VI_1": "chk,link-eth1", "VI_2": "link-eth1,chk-VI_2", "VI_3": "chk-VI_2", "VI_4": ""} {
		if got, ok := groups[g]; !ok || got != want {
			t.Errorf("group %s counts tracks %q (present %v), want %q\n%s", g, got, ok, want, res.YAML)
		}
	}
	for _, w := range []string{
		"k.conf:31: warning: chk: weight -30 here, but weight -20 where vrrp_instance VI_1 tracks it (line 13): an hbd track has one weight, so this one is imported as a second track, chk-VI_2, which runs the same check again and counts only in group VI_2",
		"k.conf:41: warning: vrrp_script: \"spare\" is not tracked by any vrrp_instance: left out",
		"k.conf:59: warning: vrrp_instance: \"VI.4\" is not a name hbd takes for a group, or is taken (letters, digits, - and _, at most 32, unique): the group is named VI_4",
	} {
		if !hasWarning(res, w) {
			t.Errorf("no warning %q in\n%v", w, res.Warnings)
		}
	}
	if !bytes.Contains(res.YAML, []byte("# vrrp_script chk (line 37), track_script (lines 31 and 56)")) {
		t.Errorf("the shared track does not name both track_script lines:\n%s", res.YAML)
	}
}

func TestGroupName(t *testing.T) {
	long := strings.Repeat("x", 40)
	taken := map[string]bool{}
	for _, tc := range []struct{ in, want string }{
		{"VI_1", "VI_1"},
		{"web.1", "web_1"},
		{"web_1", "web_1-2"},
		{"web 1", "web_1-3"},
		{long, strings.Repeat("x", 32)},
		{long, strings.Repeat("x", 30) + "-2"},
		{"été", "_t_"},
	} {
		got := groupName(tc.in, taken)
		taken[got] = true
		if got != tc.want {
			t.Errorf("groupName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(got) > 32 || strings.Trim(got, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			t.Errorf("groupName(%q) = %q: not a valid group name", tc.in, got)
		}
	}
	if !slices.Contains([]string{"VI_1"}, groupName("VI_1", map[string]bool{})) {
		t.Error("a valid name is kept")
	}
}

// TestGroupSettings: preemption is the group's own, from its instance;
// --listen stands in for a missing unicast_src_ip as with one instance.
func TestGroupSettings(t *testing.T) {
	src := twoWith("    nopreempt", "    preempt_delay 2.5", "", "    unicast_src_ip 198.51.100.11\n", "")
	res, err := Import([]byte(src), Options{File: "k.conf", Listen: "198.51.100.11"})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	c := parseImported(t, res.YAML)
	e := c.Elections()
	if len(e) != 2 || e[0].Preempt || !e[1].Preempt || e[1].PreemptDelay != 2500*time.Millisecond || e[0].Priority != 150 || e[1].Priority != 100 {
		t.Errorf("elections %+v, want VI_1 150 without preempt, VI_2 100 with preempt_delay 2.5s\n%s", e, res.YAML)
	}
	if c.Listen.Addr().String() != "198.51.100.11" || len(c.Tracks) != 0 || bytes.Contains(res.YAML, []byte("tracks")) {
		t.Errorf("listen %v, tracks %v\n%s", c.Listen, c.Tracks, res.YAML)
	}
	// Another --listen than VI_1's unicast_src_ip: two addresses.
	_, err = Import([]byte(src), Options{File: "k.conf", Listen: "198.51.100.13"})
	if err == nil || !strings.Contains(err.Error(), "k.conf:14: vrrp_instance: this host's address is 198.51.100.13 here, but 198.51.100.11 in vrrp_instance VI_1 (line 1)") {
		t.Errorf("--listen differing from VI_1's unicast_src_ip: %v", err)
	}
}

// TestGroupNoCascade: a notify command that cannot be mapped in one
// instance is one error, not also "the other instance has none".
func TestGroupNoCascade(t *testing.T) {
	src := twoWith("    notify_master /usr/bin/vip-up", "    notify_master \"/usr/bin/vip-up | /usr/bin/logger\"", "")
	_, err := Import([]byte(src), Options{File: "k.conf"})
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 || !strings.Contains(ps[0].Error(), "k.conf:25: notify_master: command") {
		t.Errorf("want one error, on line 25, got %v", err)
	}
}

// TestGroupTrackNames: a track name that is not a plain YAML word in a
// [ ] list is quoted there, and still names its track.
func TestGroupTrackNames(t *testing.T) {
	src := twoWith("    track_script {\n        chk,1\n    }", "    track_script {\n        chk,1\n    }", "vrrp_script chk,1 {\n    script /usr/bin/true\n    weight -5\n}")
	res, err := Import([]byte(src), Options{File: "k.conf"})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	for _, e := range parseImported(t, res.YAML).Elections() {
		if len(e.Tracks) != 1 || e.Tracks[0].Name != "chk,1" {
			t.Errorf("group %s counts %v, want the track chk,1\n%s", e.Name, e.Tracks, res.YAML)
		}
	}
}

// TestDecimalIDs: keepalived reads virtual_router_id 051 as 51; written
// as is, YAML would read it as octal (41).
func TestDecimalIDs(t *testing.T) {
	one := strings.Replace(strings.Replace(good, "%s", "", 2), "virtual_router_id 51", "virtual_router_id 051", 1)
	res, err := Import([]byte(one), Options{File: "k.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if c := parseImported(t, res.YAML); c.ClusterID != 51 {
		t.Errorf("one instance: cluster_id %d, want 51\n%s", c.ClusterID, res.YAML)
	}
	res, err = Import([]byte(twoWith("", "", "", "virtual_router_id 52", "virtual_router_id 052")), Options{File: "k.conf"})
	if err != nil {
		t.Fatal(err)
	}
	c := parseImported(t, res.YAML)
	if e := c.Elections(); c.ClusterID != 51 || e[0].ID != 51 || e[1].ID != 52 {
		t.Errorf("two instances: cluster_id %d, ids %d and %d; want 51, 51 and 52\n%s", c.ClusterID, e[0].ID, e[1].ID, res.YAML)
	}
}

// TestAddressesOnTheirOwn: a peer listed twice is imported once, with a
// warning, and an IPv6 address that starts with a colon is quoted (a
// plain "::" would read as a YAML mapping).
func TestAddressesOnTheirOwn(t *testing.T) {
	src := strings.Replace(strings.Replace(good, "%s", "", 2), "        198.51.100.12\n", "        ::1\n        ::1\n        198.51.100.12\n", 1)
	res, err := Import([]byte(src), Options{File: "k.conf"})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if c := parseImported(t, res.YAML); len(c.Peers) != 2 || c.Peers[0].Addr().String() != "::1" {
		t.Errorf("peers %v, want ::1 and 198.51.100.12\n%s", c.Peers, res.YAML)
	}
	if !hasWarning(res, "k.conf:8: warning: ::1: ::1 is listed again (first on line 7): imported once") {
		t.Errorf("no warning about the second ::1: %v", res.Warnings)
	}
}
