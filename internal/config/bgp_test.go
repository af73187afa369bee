package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A BGP-only node: no L2 vips, the VIPs and neighbours in the bgp section.
const goodBGP = `node: pc01
interface: eth0
listen: 198.51.100.11
peers: [198.51.100.12]
auth_key_file: key
bgp:
  local_as: 65001
  vips:
    - address: 198.51.100.200/32
      communities: ["65001:100", no-export]
    - address: "2001:db8:200::1/128"
  neighbours:
    - address: 198.51.100.30
      as: 65000
      password_file: md5
`

func parseBGP(t *testing.T, src string, pwMode os.FileMode) (*Result, error) {
	t.Helper()
	dir := t.TempDir()
	writeKey(t, dir, 0o600, 64)
	pw := filepath.Join(dir, "md5")
	if err := os.WriteFile(pw, []byte("s3cret\n"), pwMode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pw, pwMode); err != nil {
		t.Fatal(err)
	}
	return Parse([]byte(src), filepath.Join(dir, "hbd.yaml"), opts())
}

func TestBGPDefaults(t *testing.T) {
	res, err := parseBGP(t, goodBGP, 0o600)
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	b := res.Config.BGP
	if b.Interface != "lo" || b.RouterID != "198.51.100.11" || b.StandbyPrepend != 3 || b.StandbyAnnounce {
		t.Errorf("defaults: interface %q router_id %q standby_prepend %d standby_announce %v", b.Interface, b.RouterID, b.StandbyPrepend, b.StandbyAnnounce)
	}
	if n := b.Neighbours[0]; n.HoldTime.D() != 9*time.Second || n.Port != 179 {
		t.Errorf("neighbour defaults: hold_time %s, port %d", n.HoldTime, n.Port)
	}
	pw, err := ReadPassword(RelTo(filepath.Join(t.TempDir(), "x.yaml"), "/nonexistent"))
	if err == nil || pw != "" {
		t.Errorf("ReadPassword of a missing file = %q, %v", pw, err)
	}
}

// Every mistake in the bgp section is reported with its line and field,
// all of them at once.
func TestBGPErrorsNameLineAndField(t *testing.T) {
	src := `node: pc01
interface: eth0
vips: [198.51.100.10/24]
listen: 198.51.100.11
peers: [198.51.100.12]
auth_key_file: key
bgp:
  local_as: 65001
  interface: eth0
  vips:
    - address: 198.51.100.0/24
    - address: 198.51.100.10/32
      communities: ["65001:70000"]
  neighbours:
    - address: 198.51.100.30
      as: 65001
      hold_time: 1s
      password_file: md5
    - address: not-an-ip
      as: 65000
  next_hop: "2001:db8::11"
  med: 4294967295
  standby_prepend: 0
`
	_, err := parseBGP(t, src, 0o644)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want Errors", err)
	}
	want := []string{
		"line 9: bgp.interface: \"eth0\" is the interface",
		"line 11: bgp.vips[0].address: 198.51.100.0/24: announce a host route (/32)",
		"line 12: bgp.vips[1].address: 198.51.100.10 is also vips[0]",
		"line 13: bgp.vips[1].communities[0]: community \"65001:70000\"",
		"line 16: bgp.neighbours[0].as: 65001 is local_as",
		"line 17: bgp.neighbours[0].hold_time: 1s: must be whole seconds, at least 3s",
		"line 18: bgp.neighbours[0].password_file:",
		"mode 0644",
		"line 19: bgp.neighbours[1].address: \"not-an-ip\" is not an IP address",
		"line 21: bgp.next_hop: \"2001:db8::11\": want an IPv4 address",
		"line 22: bgp.med: 4294967295 is the standby's MED",
		"line 23: bgp.standby_prepend: 0 is out of range 1..10",
	}
	msg := es.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("errors lack %q; got:\n%s", w, msg)
		}
	}
}

// Without bgp, vips stays required; a misspelt bgp field is named with a
// suggestion.
func TestBGPSectionRules(t *testing.T) {
	_, err := parseBGP(t, strings.Replace(goodBGP, "bgp:\n", "bgpx:\n", 1), 0o600)
	if err == nil || !strings.Contains(err.Error(), "line 6: bgpx: unknown field \"bgpx\" (did you mean \"bgp\"?)") {
		t.Errorf("err = %v", err)
	}
	_, err = parseBGP(t, strings.Replace(goodBGP, "      as: 65000\n", "      as: 65000\n      hold_tme: 3s\n", 1), 0o600)
	if err == nil || !strings.Contains(err.Error(), "did you mean \"hold_time\"?") {
		t.Errorf("err = %v", err)
	}
	noVIPs := good[:strings.Index(good, "vips:")] + good[strings.Index(good, "listen:"):]
	if _, err := parseBGP(t, noVIPs, 0o600); err == nil || !strings.Contains(err.Error(), "vips: at least one VIP is required") {
		t.Errorf("err = %v", err)
	}
	noAS := strings.Replace(goodBGP, "  local_as: 65001\n", "", 1)
	if _, err := parseBGP(t, noAS, 0o600); err == nil || !strings.Contains(err.Error(), "line 6: bgp.local_as: required") {
		t.Errorf("err = %v", err)
	}
	v6listen := strings.Replace(goodBGP, "listen: 198.51.100.11", "listen: \"2001:db8::11\"", 1)
	v6listen = strings.Replace(v6listen, "peers: [198.51.100.12]", "peers: [\"2001:db8::12\"]", 1)
	if _, err := parseBGP(t, v6listen, 0o600); err == nil || !strings.Contains(err.Error(), "bgp.router_id: required when listen is not IPv4") {
		t.Errorf("err = %v", err)
	}
}

func TestParseCommunity(t *testing.T) {
	for in, want := range map[string]uint32{"65001:100": 65001<<16 | 100, "0:0": 0, "no-export": 0xFFFFFF01, " 1:2 ": 1<<16 | 2} {
		got, err := ParseCommunity(in)
		if err != nil || got != want {
			t.Errorf("ParseCommunity(%q) = %#x, %v; want %#x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "65001", "65536:1", "1:65536", "a:b", "-1:2"} {
		if _, err := ParseCommunity(bad); err == nil {
			t.Errorf("ParseCommunity(%q) accepted", bad)
		}
	}
}

// A build without BGP (Options.NoBGP) refuses a bgp section with its
// message, on the section's line, and nothing else about it; a config
// without one is fine.
func TestNoBGPRefusesTheSection(t *testing.T) {
	o := opts()
	o.NoBGP = "no BGP in this build: install hbd-bgp"
	_, err := parse(t, goodBGP, o)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("err = %v, want one error", err)
	}
	if got, want := errs[0].Error(), "line 6: bgp: no BGP in this build: install hbd-bgp"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	if _, err := parse(t, good, o); err != nil {
		t.Errorf("a config without bgp: %v", err)
	}
}
