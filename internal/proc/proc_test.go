package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunEndsTheGroupWhenTheCommandExits is finding 7 of the security
// review: a hook that exits 0 but leaves a background child holding its
// output used to be logged as failed (WaitDelay expired) while the child
// ran on.
func TestRunEndsTheGroupWhenTheCommandExits(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	cmd := Command(context.Background(), []string{"/bin/sh", "-c",
		`sleep 60 & echo $! > "$0"; echo started`, pidFile}, 5*time.Second)
	out := &Capped{Max: 100}
	cmd.Stdout = out
	start := time.Now()
	err := Run(cmd)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v (after %s), want success", err, took)
	}
	if took > 3*time.Second {
		t.Fatalf("Run took %s: it waited for the background child", took)
	}
	if out.OneLine() != "started" {
		t.Fatalf("output %q", out.OneLine())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if !alive(child) {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("background child %d still runs after its command exited", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func TestRunReportsFailureAndTimeout(t *testing.T) {
	err := Run(Command(context.Background(), []string{"/bin/sh", "-c", "exit 3"}, time.Second))
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Run: %v, want exit status 3", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = Run(Command(ctx, []string{"/bin/sh", "-c", "sleep 60 & sleep 60"}, time.Second))
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Run with a 100ms context: %v after %s", err, time.Since(start))
	}
	if err := Run(Command(context.Background(), []string{"/nonexistent/hook"}, time.Second)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Run of a missing command: %v", err)
	}
}
