package demo

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStateRoundTrip(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "lab-1")
	logs := filepath.Join(root, "lab-2")
	for _, d := range []string{dir, logs, filepath.Join(root, "other")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	in := &State{ID: "hbd-3f9a", Dir: dir, Namespaces: []string{"hbd-3f9a-pc01", "hbd-3f9a-lan"},
		Procs: []StateProc{{Host: "pc01", Name: "hbd run", PID: 42, Start: 7}}, ClientNetns: "hbd-3f9a-client", Keep: true}
	if err := WriteState(in); err != nil {
		t.Fatal(err)
	}
	states, err := ReadStates(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 {
		t.Fatalf("got %d states, want 2 (lab-1 with state, lab-2 logs only): %+v", len(states), states)
	}
	got := states[0]
	if got.ID != in.ID || got.Dir != dir || len(got.Namespaces) != 2 || got.Procs[0] != in.Procs[0] || !got.Keep {
		t.Errorf("read back %+v, want %+v", got, in)
	}
	if states[1].ID != "" || states[1].Dir != logs {
		t.Errorf("logs-only dir read as %+v", states[1])
	}
	if st, err := ReadStates(filepath.Join(root, "missing")); err != nil || st != nil {
		t.Errorf("missing state dir: %v, %v", st, err)
	}

	if k, err := FindKept(root, ""); err != nil || k.ID != "hbd-3f9a" {
		t.Errorf("FindKept: %+v, %v", k, err)
	}
	if _, err := FindKept(root, "hbd-ffff"); err == nil {
		t.Error("FindKept found a lab that is not there")
	}
}

func TestProcStart(t *testing.T) {
	p := stateProc("", "me", os.Getpid())
	if p.Start == 0 || !p.alive() {
		t.Fatalf("own process: %+v alive=%v", p, p.alive())
	}
	p.Start++
	if p.alive() {
		t.Error("a recorded start time that differs must not count as the same process")
	}
	if (StateProc{PID: 0}).alive() {
		t.Error("PID 0 alive")
	}
}

// startSleep starts a process in its own group, as the lab does.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestDownStopsOnlyRecordedProcesses(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "lab-1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	victim, bystander := startSleep(t), startSleep(t)
	wrongStart := stateProc("", "sleep", bystander.Process.Pid)
	wrongStart.Start-- // as if the PID had been recycled
	st := &State{ID: "hbd-0001", Dir: dir, Procs: []StateProc{stateProc("pc01", "sleep", victim.Process.Pid), wrongStart},
		Owner: StateProc{Name: "hbd-lab", PID: 1, Start: 1}}
	if err := WriteState(st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Down(context.Background(), root, "", false, &out); err != nil {
		t.Fatalf("Down: %v\n%s", err, out.String())
	}
	done := make(chan error, 1)
	go func() { done <- victim.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the recorded process was not stopped")
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process whose start time did not match was signalled: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("lab directory not removed: %v", err)
	}
	if s := out.String(); !strings.Contains(s, "stopped sleep on pc01") || !strings.Contains(s, "removed "+dir) {
		t.Errorf("output:\n%s", s)
	}
}

func TestDownLeavesRunningLabAndOddNames(t *testing.T) {
	root := t.TempDir()
	running := filepath.Join(root, "lab-1")
	odd := filepath.Join(root, "lab-2")
	logs := filepath.Join(root, "lab-3")
	for _, d := range []string{running, odd, logs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Its hbd-lab is this very process: still running.
	if err := WriteState(&State{ID: "hbd-0001", Dir: running, Owner: stateProc("", "hbd-lab", os.Getpid())}); err != nil {
		t.Fatal(err)
	}
	if err := WriteState(&State{ID: "hbd-0002", Dir: odd, Namespaces: []string{"../../etc"}}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := Down(context.Background(), root, "", false, &out)
	if err == nil || !strings.Contains(err.Error(), `refusing odd namespace name "../../etc"`) {
		t.Errorf("Down: %v", err)
	}
	if !strings.Contains(out.String(), "lab hbd-0001: its hbd-lab (pid") {
		t.Errorf("output:\n%s", out.String())
	}
	for _, d := range []string{running, odd} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	if _, err := os.Stat(logs); !os.IsNotExist(err) {
		t.Errorf("logs-only directory not removed: %v", err)
	}
	if err := Down(context.Background(), root, "hbd-0009", false, &out); err == nil {
		t.Error("Down of an unknown lab succeeded")
	}
}
