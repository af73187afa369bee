package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonDependencies keeps the shipped binary lean: nothing of the lab,
// the benchmark's plots or the test harness may reach cmd/hbd, and the
// config package stays free of go-redis.
func TestDaemonDependencies(t *testing.T) {
	forbidden := []string{
		"gonum.org/", "codeberg.org/go-fonts", "codeberg.org/go-pdf", "codeberg.org/go-latex",
		"github.com/chromedp/", "git.sr.ht/~sbinet/gg", "pgregory.net/rapid", "github.com/cilium/", "debug/elf",
		"github.com/hbdproject/hbd/internal/lab", "github.com/hbdproject/hbd/internal/testenv",
		"github.com/hbdproject/hbd/internal/redistest",
	}
	for _, d := range deps(t, "github.com/hbdproject/hbd/cmd/hbd") {
		if d == "testing" || strings.HasPrefix(d, "testing/") {
			t.Errorf("cmd/hbd links %s", d)
		}
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("cmd/hbd links %s", d)
			}
		}
	}
	for _, d := range deps(t, "github.com/hbdproject/hbd/internal/config") {
		if strings.HasPrefix(d, "github.com/redis/") || d == "github.com/hbdproject/hbd/webapp" {
			t.Errorf("internal/config links %s", d)
		}
	}
	// GoBGP (and the gRPC and protobuf it drags in, 18 MB) is reached
	// through vip/bgp alone, and the nobgp build has none of it.
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/hbdproject/hbd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, "github.com/osrg/gobgp/") && f[0] != "github.com/hbdproject/hbd/vip/bgp" {
				t.Errorf("%s imports %s: only vip/bgp may", f[0], imp)
			}
		}
	}
	nobgp, err := exec.Command("go", "list", "-deps", "-tags", "nobgp", "github.com/hbdproject/hbd/cmd/hbd").Output()
	if err != nil {
		t.Fatalf("go list -deps -tags nobgp: %v", err)
	}
	for _, d := range strings.Fields(string(nobgp)) {
		if strings.HasPrefix(d, "github.com/osrg/gobgp/") || strings.HasPrefix(d, "google.golang.org/") {
			t.Errorf("cmd/hbd built with nobgp links %s", d)
		}
	}
	for _, d := range deps(t, "github.com/hbdproject/hbd/internal/witness") {
		if d == "github.com/hbdproject/hbd/webapp" {
			t.Errorf("internal/witness links the web app")
		}
	}
}

// TestImportsPointDownward checks the layering: the protocol packages
// (heartbeat, vip) import nothing of the daemon's own (internal/), and
// internal packages never import a cmd.
func TestImportsPointDownward(t *testing.T) {
	for _, pkg := range []string{"github.com/hbdproject/hbd/heartbeat/...", "github.com/hbdproject/hbd/vip"} {
		for _, d := range deps(t, pkg) {
			if strings.HasPrefix(d, "github.com/hbdproject/hbd/internal/") || strings.HasPrefix(d, "github.com/hbdproject/hbd/webapp") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
	for _, d := range deps(t, "github.com/hbdproject/hbd/internal/...") {
		if strings.HasPrefix(d, "github.com/hbdproject/hbd/cmd/") {
			t.Errorf("internal/... depends on %s", d)
		}
	}
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestMakeTestCoversEveryPackage keeps `make test` honest: every package of
// the module is in the Makefile's UNIT or NETNS list, so that no package's
// tests are left out of CI.
func TestMakeTestCoversEveryPackage(t *testing.T) {
	root := strings.TrimSpace(string(goOut(t, "go", "list", "-m", "-f", "{{.Dir}}")))
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	inList := false
	for _, line := range strings.Split(string(mk), "\n") {
		if strings.HasPrefix(line, "UNIT ") || strings.HasPrefix(line, "NETNS ") {
			inList = true
			line = line[strings.Index(line, ":=")+2:]
		}
		if !inList {
			continue
		}
		cont := strings.HasSuffix(line, "\\")
		patterns = append(patterns, strings.Fields(strings.TrimSuffix(line, "\\"))...)
		inList = cont
	}
	if len(patterns) == 0 {
		t.Fatal("no UNIT or NETNS list in the Makefile")
	}
	listed := map[string]bool{}
	cmd := append([]string{"list", "-e"}, patterns...)
	c := exec.Command("go", cmd...)
	c.Dir = root
	out, err := c.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	for _, p := range strings.Fields(string(out)) {
		listed[p] = true
	}
	for _, p := range strings.Fields(string(goOut(t, "go", "list", "github.com/hbdproject/hbd/..."))) {
		if !listed[p] {
			t.Errorf("%s is in neither UNIT nor NETNS of the Makefile: make test skips it", p)
		}
	}
}

func goOut(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}
