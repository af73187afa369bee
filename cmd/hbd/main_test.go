package main

import (
	"bytes"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestHelpListsEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, c := range []string{"run", "check", "status", "handover", "maintenance", "release", "keygen", "webapp", "import-keepalived"} {
		if !strings.Contains(out.String(), "  "+c+" ") {
			t.Errorf("--help lacks %q:\n%s", c, out.String())
		}
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errb.String())
	}
	out.Reset()
	if code := run(nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage: hbd COMMAND") {
		t.Errorf("bare hbd: exit %d, stdout %q", code, out.String())
	}
}

// TestHelpOnStdout: every command's --help goes to stdout and exits 0, and
// lists the command's flags.
func TestHelpOnStdout(t *testing.T) {
	for name := range commands {
		for _, h := range []string{"--help", "-h"} {
			var out, errb bytes.Buffer
			if code := run([]string{name, h}, &out, &errb); code != 0 || errb.Len() != 0 || !strings.HasPrefix(out.String(), "Usage: hbd "+name) {
				t.Errorf("hbd %s %s: exit %d, stdout %q, stderr %q", name, h, code, out.String(), errb.String())
			}
		}
	}
}

// TestUsageErrors: a usage mistake exits 2 and is printed once, on stderr.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--bogus"},
		{"check", "-q", "extra"},
		{"maintenance"},
		{"maintenance", "sideways"},
		{"import-keepalived"},
		{"import-keepalived", "a.conf", "b.conf"},
		{"handover", "--timeout", "soon"},
		{"version", "--bogus"},
		{"keygen", "--bogus"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != 2 || out.Len() != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "hbd "+args[0]+": ") || lines[1] != "Run 'hbd "+args[0]+" --help' for usage." {
			t.Errorf("hbd %s: exit %d, stdout %q, stderr %q; want exit 2 and the error once", strings.Join(args, " "), code, out.String(), errb.String())
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		for _, want := range []string{"hbd " + version + "\n", "commit: ", "go:     go1.", "built:  "} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out.String())
			}
		}
	}
}

// TestStatusWithoutConfig: with no config at the default path and no -c,
// client commands use the default socket instead of failing on the file.
func TestStatusWithoutConfig(t *testing.T) {
	dir := t.TempDir()
	fs, _, _ := clientFlags("status", "")
	if _, err := parse(fs, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, err := socketFor(fs, filepath.Join(dir, "missing.yaml"), ""); err != nil || got != defaultSocket {
		t.Errorf("no config, no -c: socket %q, %v; want %s", got, err, defaultSocket)
	}
	// An explicit -c that is missing is an error: the operator named it.
	fs, _, _ = clientFlags("status", "")
	if _, err := parse(fs, []string{"-c", filepath.Join(dir, "missing.yaml")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := socketFor(fs, filepath.Join(dir, "missing.yaml"), ""); err == nil {
		t.Error("-c naming a missing file: no error")
	}
	// A config present at the path gives its control_socket.
	cfg := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(cfg, []byte("control_socket: /run/other.sock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, _, _ = clientFlags("status", "")
	if got, err := socketFor(fs, cfg, ""); err != nil || got != "/run/other.sock" {
		t.Errorf("config present: socket %q, %v", got, err)
	}
}

func TestParseFlagsAfterArguments(t *testing.T) {
	fs := newFlags("x", "")
	node := fs.String("node", "", "")
	pos, err := parse(fs, []string{"f.conf", "--node", "pc02", "--", "-g"}, io.Discard)
	if err != nil || *node != "pc02" || strings.Join(pos, " ") != "f.conf -g" {
		t.Errorf("parse: %q %q %v", pos, *node, err)
	}
}

func TestKeygenWrite(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "--write", key, "--owner", "nobody"}, &out, &errb); code != 0 {
		t.Fatalf("keygen --write: exit %d: %s", code, errb.String())
	}
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || strconv.Itoa(int(st.Uid)) != nobody.Uid {
		t.Errorf("key file mode %v uid %d; want 0600 owned by nobody (%s)", fi.Mode().Perm(), st.Uid, nobody.Uid)
	}
	b, _ := os.ReadFile(key)
	if len(strings.TrimSpace(string(b))) != 64 {
		t.Errorf("key %q", b)
	}
	errb.Reset()
	if code := run([]string{"keygen", "--write", key, "--owner", "nobody"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--force") {
		t.Errorf("keygen over an existing key: exit %d, %q; want a refusal naming --force", code, errb.String())
	}
	if b2, _ := os.ReadFile(key); string(b2) != string(b) {
		t.Error("the refused keygen changed the key")
	}
}

func TestCheckNamesLineAndField(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("0123456789abcdef", 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	good := "node: pc01\npriority: 150\ninterface: lo\nvips: [198.51.100.10/24]\nlisten: 198.51.100.11\npeers: [198.51.100.12]\nauth_key_file: " + key + "\n"
	cfg := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(cfg, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "-c", cfg}, &out, &errb); code != 0 {
		t.Fatalf("good config: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "interval: 5ms") || !strings.Contains(errb.String(), "configuration is valid") {
		t.Errorf("effective config not printed:\n%s\n%s", out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "-q", "-c", cfg}, &out, &errb); code != 0 || out.Len()+errb.Len() != 0 {
		t.Errorf("check -q on a valid config: exit %d, printed %q %q; want silence", code, out.String(), errb.String())
	}
	bad := strings.Replace(strings.Replace(good, "priority:", "prioity:", 1), "198.51.100.10/24", "198.51.100.300/24", 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "-c", cfg}, &out, &errb); code != 1 {
		t.Fatalf("bad config: exit %d", code)
	}
	for _, want := range []string{`line 2: prioity: unknown field "prioity" (did you mean "priority"?)`, `line 4: vips[0]: bad CIDR "198.51.100.300/24"`, "2 error(s)"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("hbd check output lacks %q:\n%s", want, errb.String())
		}
	}
}

func TestKeygen(t *testing.T) {
	var a, b, errb bytes.Buffer
	if run([]string{"keygen"}, &a, &errb) != 0 || run([]string{"keygen"}, &b, &errb) != 0 {
		t.Fatal(errb.String())
	}
	if len(strings.TrimSpace(a.String())) != 64 || a.String() == b.String() {
		t.Errorf("keygen: %q %q", a.String(), b.String())
	}
}

// TestImportKeepalivedGroups: two vrrp_instance blocks import as two
// groups, and hbd check takes the result (on lo, with a real key file).
func TestImportKeepalivedGroups(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("0123456789abcdef", 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	conf := "../../internal/keepalived/testdata/active-active-pc02.conf"
	if code := run([]string{"import-keepalived", conf, "--node", "pc02", "--key-file", key}, &out, &errb); code != 0 {
		t.Fatalf("import-keepalived: exit %d\n%s", code, errb.String())
	}
	cfg := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(cfg, bytes.ReplaceAll(out.Bytes(), []byte("interface: eth0"), []byte("interface: lo")), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "-c", cfg}, &out, &errb); code != 0 {
		t.Fatalf("hbd check on the import: exit %d\n%s", code, errb.String())
	}
	for _, want := range []string{"name: VI_1", "id: 51", "name: VI_2", "id: 52"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("hbd check's effective config lacks %q:\n%s", want, out.String())
		}
	}
}
