package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/testenv"
)

// TestHookMayStartAllowedUnit asks a real polkitd, loaded with the shipped
// rule (hbd-hooks.rules), the question systemd asks it when a notify hook
// running as hbd runs `systemctl start UNIT`: may this process do
// org.freedesktop.systemd1.manage-units with unit=UNIT, verb=start? The
// machine that runs the tests has no systemd as PID 1, so the test cannot
// start a unit for real; it runs a private system bus and polkitd in a
// mount namespace of its own (its own /run/dbus, rules and an hbd user in
// a private /etc/passwd) and asks with pkcheck for a process of that user.
func TestHookMayStartAllowedUnit(t *testing.T) {
	testenv.RequireRoot(t)
	for name, pkg := range map[string]string{"unshare": "util-linux", "setpriv": "util-linux", "dbus-daemon": "dbus-daemon", "dbus-send": "dbus-bin", "pkcheck": "polkitd"} {
		testenv.RequireCommand(t, name, pkg)
	}
	if _, err := os.Stat("/usr/lib/polkit-1/polkitd"); err != nil {
		t.Fatalf("polkitd: %v (apt-get install polkitd)", err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules", "50-hbd-hooks.rules"), read(t, "hbd-hooks.rules"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, line string }{
		{"passwd", "hbd:x:64999:64999:hbd:/nonexistent:/usr/sbin/nologin\n"},
		{"group", "hbd:x:64999:\n"},
	} {
		b, err := os.ReadFile("/etc/" + f.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), append(b, f.line...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Each answer is "UNIT VERB rc": pkcheck exits 0 when authorized and
	// 2 (or 1) when not. Every process the script starts dies with it.
	script := `
set -u
d=$1
mount -t tmpfs tmpfs /run/dbus 2>/dev/null || { mkdir -p /run/dbus && mount -t tmpfs tmpfs /run/dbus; }
mount --bind "$d/rules" /etc/polkit-1/rules.d
mount --bind "$d/passwd" /etc/passwd
mount --bind "$d/group" /etc/group
dbus-daemon --system --nofork --nopidfile & bus=$!
polkit=; hook=
trap 'kill $bus $polkit $hook 2>/dev/null; wait' EXIT
for i in $(seq 100); do [ -S /run/dbus/system_bus_socket ] && break; sleep 0.1; done
/usr/lib/polkit-1/polkitd --no-debug >"$d/polkitd.log" 2>&1 & polkit=$!
for i in $(seq 200); do
	dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.NameHasOwner string:org.freedesktop.PolicyKit1 2>/dev/null | grep -q 'boolean true' && break
	sleep 0.1
done
setpriv --reuid 64999 --regid 64999 --clear-groups sleep 60 & hook=$!
for q in "haproxy.service start" "haproxy.service restart" "nginx.service start" "haproxy.service mask"; do
	set -- $q
	pkcheck --action-id org.freedesktop.systemd1.manage-units --process $hook --detail unit $1 --detail verb $2 >/dev/null 2>&1
	echo "$1 $2 $?"
done
`
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			got[f[0]+" "+f[1]] = f[2]
		}
	}
	for q, allowed := range map[string]bool{
		"haproxy.service start":   true,
		"haproxy.service restart": true,
		"nginx.service start":     false, // not in the rule's list
		"haproxy.service mask":    false, // not a verb the rule grants
	} {
		rc, ok := got[q]
		switch {
		case !ok:
			t.Errorf("%s: no answer:\n%s", q, out)
		case allowed && rc != "0":
			t.Errorf("%s: pkcheck exit %s, want 0 (allowed)", q, rc)
		case !allowed && rc == "0":
			t.Errorf("%s: allowed, want refused", q)
		}
	}
	if t.Failed() {
		log, _ := os.ReadFile(filepath.Join(dir, "polkitd.log"))
		t.Logf("polkitd:\n%s", log)
	}
}
