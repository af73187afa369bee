package vip

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/testenv"
	"github.com/vishvananda/netns"
)

// fixture is two network namespaces, "host" and "client", joined by a veth
// pair: host hveth0 198.51.100.1/24 2001:db8::1/64, client cveth0
// 198.51.100.2/24 2001:db8::2/64. The code under test runs in host.
type fixture struct {
	host, client     string // namespace names, "hbdv-<rand>-h" and "-c"
	hostNS           netns.NsHandle
	hostIf, clientIf string
	hostMAC          net.HardwareAddr
}

const (
	hostIf   = "hveth0"
	clientIf = "cveth0"
)

// newFixture builds the namespaces and removes them, by exact name, when the
// test ends, failed or not.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "ip", "iproute2")
	b := make([]byte, 4)
	rand.Read(b)
	suffix := hex.EncodeToString(b)
	f := &fixture{
		host:     "hbdv-" + suffix + "-h",
		client:   "hbdv-" + suffix + "-c",
		hostIf:   hostIf,
		clientIf: clientIf,
	}
	for _, ns := range []string{f.host, f.client} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("removing namespace %s: %v: %s", ns, err, out)
			}
		})
	}
	ipCmd(t, "-n", f.host, "link", "add", hostIf, "type", "veth", "peer", "name", clientIf, "netns", f.client)
	ipCmd(t, "-n", f.host, "addr", "add", "198.51.100.1/24", "dev", hostIf)
	ipCmd(t, "-n", f.host, "addr", "add", "2001:db8::1/64", "dev", hostIf, "nodad")
	ipCmd(t, "-n", f.client, "addr", "add", "198.51.100.2/24", "dev", clientIf)
	ipCmd(t, "-n", f.client, "addr", "add", "2001:db8::2/64", "dev", clientIf, "nodad")
	ipCmd(t, "-n", f.host, "link", "set", hostIf, "up")
	ipCmd(t, "-n", f.client, "link", "set", clientIf, "up")

	h, err := netns.GetFromName(f.host)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", f.host, err)
	}
	t.Cleanup(func() { h.Close() })
	f.hostNS = h

	// Wait until both ends are up and IPv6 is configured on them. The
	// kernel configures IPv6 on a link (and adds its ff00::/8 route, without
	// which multicast such as our neighbour advertisements is dropped as
	// "no route") only after linkwatch reports it running, up to a second
	// after carrier.
	for _, end := range []struct{ ns, dev string }{{f.host, hostIf}, {f.client, clientIf}} {
		waitFor(t, 10*time.Second, end.dev+" up with IPv6 multicast route", func() bool {
			l := ipJSON[[]ipLink](t, "-n", end.ns, "link", "show", "dev", end.dev)
			r := ipJSON[[]any](t, "-n", end.ns, "-6", "route", "show", "table", "local", "type", "multicast", "dev", end.dev)
			return len(l) == 1 && l[0].OperState == "UP" && len(r) > 0
		})
	}
	link := ipJSON[[]ipLink](t, "-n", f.host, "link", "show", "dev", hostIf)[0]
	f.hostMAC, err = net.ParseMAC(link.Address)
	if err != nil {
		t.Fatalf("host MAC %q: %v", link.Address, err)
	}
	return f
}

// enterHost moves the calling goroutine into the host namespace for the rest
// of its life: it locks it to its thread and never unlocks, so the thread
// ends with the goroutine instead of going back to the pool in the wrong
// namespace. Goroutines the test starts must call it themselves.
func (f *fixture) enterHost(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	if err := netns.Set(f.hostNS); err != nil {
		t.Fatalf("entering namespace %s: %v", f.host, err)
	}
}

func ipCmd(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func ipJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	out := ipCmd(t, append([]string{"-j"}, args...)...)
	var v T
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ip -j %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return v
}

// waitFor polls cond every 20 ms until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ipLink is an entry of `ip -j link show`.
type ipLink struct {
	Address   string `json:"address"`
	OperState string `json:"operstate"`
}

// ipAddr is an entry of `ip -j addr show`.
type ipAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Label     string `json:"label"`
	NoDAD     bool   `json:"nodad"`
	Tentative bool   `json:"tentative"`
	DADFailed bool   `json:"dadfailed"`
	Valid     uint32 `json:"valid_life_time"`
	Preferred uint32 `json:"preferred_life_time"`
}

// hostAddrs lists the addresses of the host end of the veth, by `ip`, not by
// the code under test.
func (f *fixture) hostAddrs(t *testing.T) map[string]ipAddr {
	t.Helper()
	links := ipJSON[[]struct {
		AddrInfo []ipAddr `json:"addr_info"`
	}](t, "-n", f.host, "addr", "show", "dev", hostIf)
	m := make(map[string]ipAddr)
	for _, l := range links {
		for _, a := range l.AddrInfo {
			m[fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)] = a
		}
	}
	return m
}

// clientNeigh returns the client's link-layer address for ip, "" if none.
func (f *fixture) clientNeigh(t *testing.T, ip string) string {
	t.Helper()
	entries := ipJSON[[]struct {
		Dst    string `json:"dst"`
		LLAddr string `json:"lladdr"`
	}](t, "-n", f.client, "neigh", "show", "dev", clientIf)
	for _, e := range entries {
		if e.Dst == ip {
			return e.LLAddr
		}
	}
	return ""
}

func sameMAC(a string, b net.HardwareAddr) bool {
	m, err := net.ParseMAC(a)
	return err == nil && bytes.Equal(m, b)
}
