package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/testenv"
)

var hbdBin string

func TestMain(m *testing.M) { testenv.MainWithHBD(m, &hbdBin) }

// requireLab fails (skips with HBD_SKIP_ROOT=1) without root and the lab's
// commands.
func requireLab(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	for _, p := range lab.Prereqs {
		testenv.RequireCommand(t, p.Command, p.Package)
	}
}

// namespacesOf lists the named namespaces whose name starts with the lab's ID.
func namespacesOf(t *testing.T, id string) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), id+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestDemoPlaysTheWholeStory(t *testing.T) {
	requireLab(t)
	stateDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	rep, err := Run(ctx, Options{Bin: hbdBin, StateDir: stateDir, Stdout: io.MultiWriter(&out, t.Output())})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("the demo took %s", took.Round(time.Millisecond))
	// Every scenario must pass; nothing is tolerated.
	for _, s := range rep.Scenarios {
		if !s.Verdict.Pass {
			t.Errorf("scenario %d %s: %s", s.N, s.Title, s.Verdict)
		}
	}
	if !rep.Passed() {
		t.Error("the report says the demo did not pass")
	}
	text := out.String()
	for i, a := range script {
		if !strings.Contains(text, fmt.Sprintf("== %d/%d %s ==\n", i+1, len(script), a.title)) {
			t.Errorf("output lacks scenario %q", a.title)
		}
	}
	for _, want := range []string{"  served by    ", "  gap          ", "  requests     ", "  two holders  ", "  timeline     ", "  PASS  "} {
		if n := strings.Count(text, want); n != len(script) {
			t.Errorf("output has %q %d times, want %d", want, n, len(script))
		}
	}
	for _, want := range []string{`answers name "小潘"`, "pc01 (v2) answers", "1. check standby", "== summary ==",
		fmt.Sprintf("all %d scenarios passed", len(script)), "removed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if ns := namespacesOf(t, rep.LabID); len(ns) > 0 {
		t.Errorf("namespaces left behind: %v", ns)
	}
	// Logs stay after a failed verdict; the state file never does.
	if ents, _ := os.ReadDir(stateDir); rep.Passed() && len(ents) > 0 {
		t.Errorf("state directory not emptied: %v", ents)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, "*", StateFile)); len(left) > 0 {
		t.Errorf("state file left behind: %v", left)
	}
	if took > 90*time.Second {
		t.Errorf("the demo took %s, want under 90s", took)
	}
}

func TestDemoKeepThenForwardAndDown(t *testing.T) {
	requireLab(t)
	stateDir := t.TempDir()
	t.Cleanup(func() { Down(context.Background(), stateDir, "", true, io.Discard) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	rep, err := Run(ctx, Options{Bin: hbdBin, StateDir: stateDir, Keep: true, Stdout: &out})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if !rep.Passed() || rep.Kept == nil {
		t.Fatalf("kept run: passed %v, kept %v\n%s", rep.Passed(), rep.Kept, out.String())
	}
	st, err := FindKept(stateDir, rep.LabID)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Procs) != 5 || len(st.Namespaces) != 5 {
		t.Fatalf("state: %d processes, %d namespaces; want 5 and 5: %+v", len(st.Procs), len(st.Namespaces), st)
	}
	for _, p := range st.Procs {
		if !p.alive() {
			t.Errorf("%s on %s (pid %d) is not running after a kept run", p.Name, p.Host, p.PID)
		}
	}
	for _, want := range []string{"keeps running (--keep)", "ip netns exec " + st.ClientNetns + " curl", "lab forward", "lab down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// The forwarder serves the page through the VIP on a loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithCancel(context.Background())
	ferr := make(chan error, 1)
	go func() { ferr <- ServeForward(fctx, st, ln, io.Discard) }()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ln.Addr().String() + "/api/whoami")
	if err != nil {
		t.Fatalf("through the forwarder: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(lab.HeaderServedBy) != "pc01" {
		t.Errorf("through the forwarder: %d %q %s", resp.StatusCode, resp.Header.Get(lab.HeaderServedBy), body)
	}
	fcancel()
	if err := <-ferr; err != nil {
		t.Errorf("forwarder: %v", err)
	}

	var down bytes.Buffer
	if err := Down(context.Background(), stateDir, "", false, &down); err != nil {
		t.Fatalf("Down: %v\n%s", err, down.String())
	}
	t.Logf("hbd-lab down:\n%s", down.String())
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range st.Procs {
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if p.alive() {
			t.Errorf("%s (pid %d) still running after down", p.Name, p.PID)
		}
	}
	if ns := namespacesOf(t, st.ID); len(ns) > 0 {
		t.Errorf("namespaces left after down: %v", ns)
	}
	if _, err := os.Stat(st.Dir); !os.IsNotExist(err) {
		t.Errorf("lab directory left after down: %v", err)
	}
}
