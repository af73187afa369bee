package systemd

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/testenv"
)

// TestJournalPriorities runs the real hbd binary with a real
// systemd-journald, as a unit's process would (JOURNAL_STREAM names its
// stderr), and reads the entries back with journalctl: warnings have
// priority 4, so `journalctl -p warning` keeps only them, and the
// transition to MASTER carries HBD_STATE=MASTER. The test machine has no
// systemd as PID 1, so journald runs in a mount and network namespace of
// the test's own (its sockets and runtime journal on tmpfs there), and hbd
// holds its VIP on that namespace's loopback.
func TestJournalPriorities(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "journalctl", "systemd")
	testenv.RequireCommand(t, "unshare", "util-linux")
	if _, err := os.Stat("/lib/systemd/systemd-journald"); err != nil {
		t.Fatalf("systemd-journald: %v (apt-get install systemd)", err)
	}
	dir := t.TempDir()
	key := strings.Repeat("ab", 32)
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `node: pc01
interface: lo
vips: [198.51.100.10/32]
listen: 127.0.0.1
peers: [127.0.0.2]
auth_key_file: ` + dir + `/key
control_socket: ` + dir + `/hbd.sock
metrics: ""
tracks:
  - name: always-fails
    type: exec
    command: ["/bin/false"]
    weight: 10
`
	if err := os.WriteFile(filepath.Join(dir, "hbd.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The script prints the hbd entries as JSON, then the MESSAGE of those
	// `journalctl -p warning` keeps, after a line "--".
	script := `
set -u
d=$1 hbd=$2
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/log && mount -t tmpfs tmpfs /run/log
ip link set lo up
jd=; h=
trap 'kill $h $jd 2>/dev/null; wait' EXIT
/lib/systemd/systemd-journald & jd=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
j() { journalctl -D /run/log/journal --no-pager -q SYSLOG_IDENTIFIER=hbd "$@"; }
: >"$d/stderr"
JOURNAL_STREAM=$(stat -c %d:%i "$d/stderr") "$hbd" run -c "$d/hbd.yaml" 2>>"$d/stderr" & h=$!
for i in $(seq 200); do j HBD_STATE=MASTER | grep -q . && break; sleep 0.1; done
kill $h; wait $h; h=
j -o json
echo --
j -p warning -o cat
`
	out, err := exec.Command("unshare", "-m", "-n", "--propagation", "private", "sh", "-c", script, "sh", dir, builtHBD(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	entries, warnings, _ := strings.Cut(string(out), "\n--\n")
	var master, checkFails, started bool
	for _, l := range strings.Split(entries, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("journalctl -o json: %v: %s", err, l)
		}
		msg, _ := e["MESSAGE"].(string)
		switch {
		case e["HBD_STATE"] == "MASTER":
			master = e["PRIORITY"] == "6" && e["HBD_NODE"] == "pc01" && e["HBD_REASON"] != nil
		case strings.HasPrefix(msg, "check fails"):
			checkFails = e["PRIORITY"] == "4" && e["HBD_CHECK"] == "always-fails"
		case strings.HasPrefix(msg, "hbd started"):
			started = e["PRIORITY"] == "6"
		}
	}
	if !master || !checkFails || !started {
		t.Errorf("entries: MASTER transition at info with HBD_STATE/HBD_REASON %v, failing check at warning %v, start at info %v\n%s", master, checkFails, started, out)
	}
	// Everything else hbd logged here is information (start, transitions,
	// the claim, the clean stop): none of it passes -p warning.
	for _, l := range strings.Split(strings.TrimSpace(warnings), "\n") {
		if !strings.HasPrefix(l, "check fails") {
			t.Errorf("journalctl -p warning shows %q: only the failing check is a warning here", l)
		}
	}
	if !strings.Contains(warnings, "check fails") {
		t.Errorf("journalctl -p warning lacks the failing check:\n%s", warnings)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "stderr")); len(b) > 0 {
		t.Errorf("with the journal reachable, nothing should go to stderr; got:\n%s", b)
	}
}
