// Package scripts holds the shell scripts of the build (setup.sh); its test
// runs them.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/testenv"
)

// fakeGo is a go command that reports version v.
func fakeGo(t *testing.T, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n[ \"$1 $2\" = \"env GOVERSION\" ] && echo go"+v+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSetupJudgesGo: setup refuses a Go older than go.mod's go line, and,
// when there is no Go, installs Debian's golang-go only if it is new
// enough, naming what to install otherwise.
func TestSetupJudgesGo(t *testing.T) {
	testenv.RequireRoot(t) // setup installs packages as root
	testenv.RequireCommand(t, "apt-cache", "apt")
	min := ""
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			min = v
		}
	}
	cand, _ := exec.Command("sh", "-c", `apt-cache policy golang-go | sed -n 's/^ *Candidate: \([0-9]*:\)\{0,1\}\([0-9][0-9.]*\).*/\2/p'`).Output()
	// A fake apt-get records what setup would install and installs
	// nothing: this test never changes the machine.
	fake := t.TempDir()
	aptLog := filepath.Join(fake, "apt-get.log")
	if err := os.WriteFile(filepath.Join(fake, "apt-get"), []byte("#!/bin/sh\necho \"$*\" >>"+aptLog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, goBin string
		ok          bool
		want        string
	}{
		{"too old", fakeGo(t, "1.19.8"), false, "is Go 1.19.8; hbd needs Go " + min + " or newer: install Go " + min + " or newer from https://go.dev/dl/"},
		{"the minimum", fakeGo(t, min), true, "setup: ok"},
		{"no Go", "", !older(strings.TrimSpace(string(cand)), min), "no Go here, and Debian's golang-go (" + strings.TrimSpace(string(cand)) + ") is older than Go " + min},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(aptLog)
			cmd := exec.Command("bash", "setup.sh")
			cmd.Env = append(os.Environ(), "HBD_GO="+tc.goBin, "PATH="+fake+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if installs, _ := os.ReadFile(aptLog); tc.goBin != "" || !tc.ok {
				if strings.Contains(string(installs), "golang-go") {
					t.Errorf("setup would install golang-go: apt-get %s", installs)
				}
			}
			if (err == nil) != tc.ok {
				t.Errorf("setup.sh: %v, want success %v\n%s", err, tc.ok, out)
			}
			if !tc.ok && !strings.Contains(string(out), tc.want) {
				t.Errorf("setup.sh says\n%s\nwant it to say %q", out, tc.want)
			}
		})
	}
}

// older reports whether version a (1.19, 1.26.0) is older than b.
func older(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
