package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
