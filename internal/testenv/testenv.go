// Package testenv decides whether a test that needs root or an external
// program can run here. A missing prerequisite fails the test: a run that
// skipped half the suite must not look like a pass. A developer without
// root can ask to skip with HBD_SKIP_ROOT=1; CI=true never skips, even then.
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

// SkipVar is the environment variable with which a developer asks to skip,
// rather than fail, the tests whose prerequisites (root, programs) are
// missing.
const SkipVar = "HBD_SKIP_ROOT"

// Strict reports whether a missing prerequisite fails the test: always,
// unless HBD_SKIP_ROOT=1 outside CI.
func Strict() bool { return os.Getenv(SkipVar) != "1" || InCI() }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("prerequisite missing (set "+SkipVar+"=1 to skip instead): "+format, args...)
		return
	}
	t.Skipf("prerequisite missing, skipped as "+SkipVar+"=1 asks: "+format, args...)
}

// RequireRoot fails (or skips with HBD_SKIP_ROOT=1) unless the test runs
// as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "test needs root (network namespaces, netlink)")
	}
}

// RequireCommand returns the path of name, or fails (or skips with
// HBD_SKIP_ROOT=1) naming the Debian package that provides it.
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
