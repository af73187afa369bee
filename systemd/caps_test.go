package systemd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/testenv"
)

// TestDaemonRunsWithUnitCapabilities runs `hbd run` the way hbd.service
// does — an unprivileged user holding only the unit's ambient capabilities,
// at the unit's Nice= — in a fresh network namespace, and checks that it claims an IPv4 and an
// IPv6 VIP, announces them without a permission error, and releases them
// on SIGTERM. Addresses are documentation ranges inside that namespace.
func TestDaemonRunsWithUnitCapabilities(t *testing.T) {
	testenv.RequireRoot(t)
	unshare := testenv.RequireCommand(t, "unshare", "util-linux")
	testenv.RequireCommand(t, "setpriv", "util-linux")
	testenv.RequireCommand(t, "ip", "iproute2")
	bin := builtHBD(t)

	caps := directives(string(read(t, "hbd.service")))["Service.AmbientCapabilities"]
	if len(caps) != 1 {
		t.Fatalf("AmbientCapabilities = %q", caps)
	}
	var set []string
	for _, c := range strings.Fields(caps[0]) {
		set = append(set, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	capList := strings.Join(set, ",")
	// The unit's Nice= is applied by systemd (as root) before it drops
	// privileges; so does this test.
	nice := directives(string(read(t, "hbd.service")))["Service.Nice"]
	if len(nice) != 1 {
		t.Fatalf("Nice = %q", nice)
	}

	// A directory the unprivileged user can reach (t.TempDir's parent is 0700).
	dir, err := os.MkdirTemp("", "hbd-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(dir, 0o755))
	const nobody = 65534
	key := filepath.Join(dir, "key")
	must(os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600))
	must(os.Chown(key, nobody, nobody))
	run := filepath.Join(dir, "run")
	must(os.Mkdir(run, 0o700))
	must(os.Chown(run, nobody, nobody))
	cfg := filepath.Join(dir, "hbd.yaml")
	must(os.WriteFile(cfg, []byte(fmt.Sprintf(`node: pc01
interface: hbd0
vips: [198.51.100.10/24, 2001:db8::10/64]
listen: 198.51.100.11
peers: [198.51.100.12]
auth_key_file: %s
control_socket: %s/hbd.sock
metrics: ""
`, key, run)), 0o644))
	logFile := filepath.Join(run, "log")

	script := fmt.Sprintf(`set -e
ip link set lo up
ip link add hbd0 type veth peer name hbd1
ip link set hbd1 up
ip link set hbd0 up
ip addr add 198.51.100.11/24 dev hbd0
nice -n %[6]s setpriv --reuid=%[1]d --regid=%[1]d --clear-groups --inh-caps=%[2]s --ambient-caps=%[2]s --bounding-set=-all,%[2]s \
	%[3]s run -c %[4]s >%[5]s 2>&1 &
pid=$!
i=0
until ip -o addr show dev hbd0 | grep -q 'inet 198.51.100.10/24' && ip -o addr show dev hbd0 | grep -q 'inet6 2001:db8::10/64'; do
	i=$((i+1))
	if [ $i -gt 200 ] || ! kill -0 $pid 2>/dev/null; then echo "VIPs never claimed"; kill $pid 2>/dev/null; exit 1; fi
	sleep 0.05
done
echo claimed
sleep 0.5 # a few announcement rounds and refreshes
kill -TERM $pid
wait $pid || { echo "hbd exited with $?"; exit 1; }
if ip -o addr show dev hbd0 | grep -q '198.51.100.10/24\|2001:db8::10/64'; then echo "VIPs left behind"; exit 1; fi
echo released
`, nobody, capList, bin, cfg, logFile, nice[0])
	out, err := exec.Command(unshare, "--net", "sh", "-c", script).CombinedOutput()
	log, _ := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("%v\n%s\nhbd's log:\n%s", err, out, log)
	}
	if !strings.Contains(string(out), "claimed") || !strings.Contains(string(out), "released") {
		t.Fatalf("unexpected output:\n%s\nhbd's log:\n%s", out, log)
	}
	for _, bad := range []string{"level=ERROR", "level=WARN", "not permitted", "permission denied"} {
		if strings.Contains(string(log), bad) {
			t.Errorf("hbd logged %q with the unit's capabilities:\n%s", bad, log)
		}
	}
}
