// Package testenv decides whether a test that needs root or an external
// program can run here: it skips on a developer's machine that lacks them,
// and fails under CI=true, where every test must run.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where nothing may skip.
func InCI() bool { return os.Getenv("CI") == "true" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI=true: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// RequireRoot fails (CI) or skips (elsewhere) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "test needs root (network namespaces, netlink)")
	}
}

// RequireCommand returns the path of name, or fails (CI) or skips (elsewhere)
// naming the Debian package that provides it.
func RequireCommand(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found (apt-get install %s)", name, debianPackage)
	}
	return p
}

// MainWithHBD is a TestMain for packages whose tests run the real hbd
// binary: it builds ./cmd/hbd (found from the module root, whatever the
// package's depth) into a temporary directory, stores its path in *bin,
// runs the tests and removes the binary.
func MainWithHBD(m *testing.M, bin *string) {
	os.Exit(mainWithHBD(m, bin))
}

func mainWithHBD(m *testing.M, bin *string) int {
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "finding the module root:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "hbd-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "hbd")
	build := exec.Command("go", "build", "-o", *bin, "./cmd/hbd")
	build.Dir = strings.TrimSpace(string(root))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hbd:", err)
		return 1
	}
	return m.Run()
}
