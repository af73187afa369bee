package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeKey(t *testing.T, dir string, mode os.FileMode, n int) string {
	t.Helper()
	p := filepath.Join(dir, "key")
	if err := os.WriteFile(p, []byte(strings.Repeat("0123456789abcdef", 8)[:n]+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func opts() Options {
	return Options{
		InterfaceExists: func(n string) bool { return n == "eth0" },
		Hostname:        func() (string, error) { return "host1", nil },
	}
}

const good = `node: pc01
priority: 150
interface: eth0
vips: [198.51.100.10/24, "2001:db8::10/64"]
listen: 198.51.100.11
peers: [198.51.100.12, "[2001:db8::12]:9000"]
auth_key_file: key
`

func parse(t *testing.T, src string, o Options) (*Result, error) {
	t.Helper()
	dir := t.TempDir()
	writeKey(t, dir, 0o600, 64)
	return Parse([]byte(src), filepath.Join(dir, "hbd.yaml"), o)
}

func TestGoodConfigGetsDefaults(t *testing.T) {
	res, err := parse(t, good, opts())
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	c := res.Config
	if c.Interval.D() != 5*time.Millisecond || c.DeadAfter.D() != 300*time.Millisecond {
		t.Errorf("timing defaults: %s %s", c.Interval, c.DeadAfter)
	}
	if !c.PreemptEnabled() || c.ClusterID != 1 || c.VIPLifetime.D() != 2*time.Second {
		t.Errorf("defaults: preempt=%v cluster=%d lifetime=%s", c.PreemptEnabled(), c.ClusterID, c.VIPLifetime)
	}
	if c.Listen.Port() != DefaultPort || c.Peers[0].Port() != DefaultPort || c.Peers[1].Port() != 9000 {
		t.Errorf("ports: %v %v", c.Listen, c.Peers)
	}
	if len(res.Key) != 64 {
		t.Errorf("key length %d", len(res.Key))
	}
	if c.MetricsAddr() != "127.0.0.1:9707" || c.ControlSocket != "/run/hbd/hbd.sock" {
		t.Errorf("metrics %q socket %q", c.MetricsAddr(), c.ControlSocket)
	}
}

func TestNodeDefaultsToHostname(t *testing.T) {
	res, err := parse(t, strings.Replace(good, "node: pc01\n", "", 1), opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Config.Node != "host1" {
		t.Errorf("node = %q", res.Config.Node)
	}
}

func TestErrorsNameLineAndField(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		line  int
		field string
		msg   string
	}{
		{"typo", strings.Replace(good, "priority:", "prioity:", 1), 2, "prioity", `unknown field "prioity" (did you mean "priority"?)`},
		{"bad cidr", strings.Replace(good, "198.51.100.10/24", "198.51.100.300/24", 1), 4, "vips[0]", "bad CIDR"},
		{"no unit", good + "interval: 50\n", 8, "interval", "has no unit"},
		{"dead_after too small", good + "interval: 100ms\ndead_after: 150ms\n", 9, "dead_after", "less than 2 × interval"},
		{"peer is self", strings.Replace(good, "peers: [198.51.100.12,", "peers: [198.51.100.11,", 1), 6, "peers[0]", "own listen address"},
		{"duplicate peer", strings.Replace(good, `"[2001:db8::12]:9000"`, "198.51.100.12", 1), 6, "peers[1]", "listed twice"},
		{"missing interface", strings.Replace(good, "eth0", "eth9", 1), 3, "interface", `interface "eth9" does not exist`},
		{"priority range", strings.Replace(good, "150", "300", 1), 2, "priority", "out of range"},
		{"wrong type", strings.Replace(good, "150", "high", 1), 2, "priority", "wrong type"},
		{"track needs weight", good + "tracks:\n  - name: app\n    type: http\n    url: http://127.0.0.1:8080/healthz\n", 9, "tracks[0].weight", "needs a weight"},
		{"relative command", good + "notify:\n  master: [notify.sh]\n", 9, "notify.master", "absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantFieldError(t, tt.src, tt.line, tt.field, tt.msg) })
	}
}

// wantFieldError parses src and wants an error at line naming field, its
// message containing msg.
func wantFieldError(t *testing.T, src string, line int, field, msg string) {
	t.Helper()
	_, err := parse(t, src, opts())
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %v", err)
	}
	for _, e := range es {
		if e.Line == line && e.Field == field && strings.Contains(e.Msg, msg) {
			return
		}
	}
	t.Errorf("no error at line %d field %s containing %q; got:\n%v", line, field, msg, err)
}

func TestEveryErrorIsReported(t *testing.T) {
	src := strings.NewReplacer("priority:", "prioity:", "198.51.100.10/24", "nonsense", "198.51.100.12,", "198.51.100.11,").Replace(good)
	_, err := parse(t, src, opts())
	var es Errors
	if !errors.As(err, &es) || len(es) < 2 {
		t.Fatalf("want several errors, got %v", err)
	}
}

func TestMissingInterfaceIsAWarningForCheck(t *testing.T) {
	o := opts()
	o.InterfaceMayBeMissing = true
	res, err := parse(t, strings.Replace(good, "eth0", "eth9", 1), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].Field != "interface" || res.Warnings[0].Line != 3 {
		t.Errorf("warnings: %v", res.Warnings)
	}
}

func TestKeyFileChecks(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode os.FileMode
		n    int
		msg  string
	}{
		{"group readable", 0o640, 64, "group or others"},
		{"short", 0o600, 31, "at least 32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKey(t, dir, tt.mode, tt.n)
			_, err := Parse([]byte(good), filepath.Join(dir, "hbd.yaml"), opts())
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "auth_key_file") {
				t.Errorf("got %v, want %q", err, tt.msg)
			}
		})
	}
	_, err := Parse([]byte(good), filepath.Join(t.TempDir(), "hbd.yaml"), opts())
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing key: %v", err)
	}
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	_, err := parse(t, good+"vips: [unclosed\n", opts())
	if err == nil || !strings.Contains(err.Error(), "line ") {
		t.Errorf("got %v", err)
	}
}
