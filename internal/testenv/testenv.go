// Package testenv decides whether a test that needs root or an external
// program can run here: it skips on a developer's machine that lacks them,
// and fails under CI=true, where every test must run.
package testenv

import (
	"os"
	"os/exec"
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
