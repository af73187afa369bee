package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/config"
)

// bound is the generous limit for anything that should happen at once: the
// test machine is small and noisy.
const bound = 10 * time.Second

// syncBuffer is a log destination that tests can read while hooks log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLog() (*slog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// writeScript writes an executable #!/bin/sh script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// run starts r.Run until the test ends and returns a stop that cancels it
// and waits for it to return.
func run(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(bound):
			t.Error("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitFile waits for path to exist and returns its content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not written: %v", filepath.Base(path), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func envMap(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestHookEnvironment(t *testing.T) {
	t.Setenv("HBD_TEST_INHERITED", "yes")
	t.Setenv("HBD_STATE", "stale") // must be replaced, not duplicated
	dir := t.TempDir()
	// Writes its name to the order file, then its environment to $1
	// (atomically, so a file that exists is complete).
	dump := writeScript(t, dir, "dump.sh",
		`echo "$2" >> "`+dir+`/order"; /usr/bin/env > "$1.tmp" && /bin/mv "$1.tmp" "$1"`+"\n")
	r := New(config.Notify{
		Master:  []string{dump, filepath.Join(dir, "master.env"), "master"},
		Backup:  []string{dump, filepath.Join(dir, "backup.env"), "backup"},
		Any:     []string{dump, filepath.Join(dir, "any.env"), "any"},
		Timeout: config.Duration(bound),
	}, nil)
	run(t, r)
	r.Notify(Event{
		From: "BACKUP", To: "MASTER", Node: "hbd-a",
		VIPs:   []string{"198.51.100.10/24", "2001:db8::10/64"},
		Reason: "peer hbd-b silent for 300ms", Epoch: 42, Group: "web1", At: time.Now(),
	})
	want := map[string]string{
		"HBD_STATE":          "MASTER",
		"HBD_PREVIOUS_STATE": "BACKUP",
		"HBD_NODE":           "hbd-a",
		"HBD_VIPS":           "198.51.100.10/24 2001:db8::10/64",
		"HBD_REASON":         "peer hbd-b silent for 300ms",
		"HBD_EPOCH":          "42",
		"HBD_GROUP":          "web1",
		"HBD_TEST_INHERITED": "yes",
	}
	for _, f := range []string{"master.env", "any.env"} {
		raw := waitFile(t, filepath.Join(dir, f))
		env := envMap(raw)
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", f, k, env[k], v)
			}
		}
		if n := strings.Count(raw, "\nHBD_STATE="); n > 1 {
			t.Errorf("%s: HBD_STATE appears %d times", f, n)
		}
	}
	if got := waitFile(t, filepath.Join(dir, "order")); got != "master\nany\n" {
		t.Errorf("hooks ran in order %q, want master then any", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "backup.env")); err == nil {
		t.Error("the backup hook ran on a transition to MASTER")
	}
}

func TestCommandsByState(t *testing.T) {
	r := New(config.Notify{
		Master: []string{"/m"}, Backup: []string{"/b"}, Fault: []string{"/f"}, Any: []string{"/a"},
	}, nil)
	for to, want := range map[string]string{
		"MASTER":      "[[/m] [/a]]",
		"BACKUP":      "[[/b] [/a]]",
		"FAULT":       "[[/f] [/a]]",
		"MAINTENANCE": "[[/a]]",
		"INIT":        "[[/a]]",
	} {
		if got := fmt.Sprint(r.commands(Event{To: to})); got != want {
			t.Errorf("to %s: commands %s, want %s", to, got, want)
		}
	}
	none := New(config.Notify{Master: []string{"/m"}}, nil)
	for range queueLen * 2 {
		none.Notify(Event{To: "BACKUP"}) // no hook: nothing queued, nothing dropped
	}
	if len(none.queue) != 0 || none.Dropped() != 0 {
		t.Errorf("events with no hook: queued %d, dropped %d; want 0, 0", len(none.queue), none.Dropped())
	}
}

// TestTimeoutKillsAndNextRuns: a hook that hangs past the timeout is killed
// with everything it started, and the hooks after it still run.
func TestTimeoutKillsAndNextRuns(t *testing.T) {
	dir := t.TempDir()
	hang := writeScript(t, dir, "hang.sh",
		`/bin/sleep 60 &
echo $! > "`+dir+`/child.$HBD_EPOCH"
echo $$ > "`+dir+`/leader.$HBD_EPOCH"
wait
`)
	mark := writeScript(t, dir, "mark.sh", `echo "$HBD_STATE" >> "`+dir+`/marks"`+"\n")
	log, logs := newLog()
	const timeout = 2 * time.Second // long enough for the script to write its pids on a loaded machine
	r := New(config.Notify{
		Master: []string{hang}, Any: []string{mark}, Timeout: config.Duration(timeout),
	}, log)
	begin := time.Now()
	run(t, r)
	r.Notify(Event{From: "BACKUP", To: "MASTER", Node: "hbd-a", Epoch: 1})
	r.Notify(Event{From: "MASTER", To: "BACKUP", Node: "hbd-a", Epoch: 1})

	deadline := time.Now().Add(bound)
	for waitFile(t, filepath.Join(dir, "marks")) != "MASTER\nBACKUP\n" {
		if time.Now().After(deadline) {
			t.Fatalf("marks = %q, want MASTER then BACKUP", waitFile(t, filepath.Join(dir, "marks")))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if took := time.Since(begin); took < timeout {
		t.Errorf("the hooks after the hanging one ran after %s, before its %s timeout", took, timeout)
	}
	for _, name := range []string{"leader.1", "child.1"} {
		waitGone(t, name, readPID(t, filepath.Join(dir, name)))
	}
	if l := logs.String(); !strings.Contains(l, "notify hook timed out") || !strings.Contains(l, "hook="+hang) {
		t.Errorf("log does not report the timeout:\n%s", l)
	}
}

func TestFailureLogged(t *testing.T) {
	dir := t.TempDir()
	fail := writeScript(t, dir, "fail.sh", "echo cannot reload the proxy >&2\nexit 4\n")
	log, logs := newLog()
	r := New(config.Notify{Fault: []string{fail}, Timeout: config.Duration(bound)}, log)
	run(t, r)
	r.Notify(Event{From: "MASTER", To: "FAULT", Node: "hbd-a"})
	deadline := time.Now().Add(bound)
	for !strings.Contains(logs.String(), "notify hook failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no failure logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	l := logs.String()
	for _, want := range []string{`err="exit status 4"`, `output="cannot reload the proxy"`, "state=FAULT", "node=hbd-a"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %s:\n%s", want, l)
		}
	}
}

// TestNotifyNeverBlocks fills the queue while the hook hangs: Notify returns
// at once and counts the drops, and stopping Run kills the hanging hook.
func TestNotifyNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	hang := writeScript(t, dir, "hang.sh", `echo $$ > "`+dir+`/pid.$HBD_EPOCH"`+"\nexec /bin/sleep 60\n")
	log, _ := newLog()
	r := New(config.Notify{Any: []string{hang}, Timeout: config.Duration(time.Minute)}, log)
	stop := run(t, r)

	r.Notify(Event{To: "MASTER", Epoch: 1})
	pid := readPID(t, filepath.Join(dir, "pid.1")) // waits: the hook now hangs
	const n = 1000
	begin := time.Now()
	for i := range n {
		r.Notify(Event{To: "BACKUP", Epoch: uint64(i + 2)})
	}
	if took := time.Since(begin); took > bound/5 {
		t.Errorf("%d Notify calls took %s", n, took)
	}
	if got, want := r.Dropped(), uint64(n-queueLen); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}

	begin = time.Now()
	stop()
	if took := time.Since(begin); took > bound/2 {
		t.Errorf("Run took %s to return", took)
	}
	waitGone(t, "hanging hook", pid)
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	s := waitFile(t, path)
	for !strings.HasSuffix(s, "\n") { // written, not yet finished
		time.Sleep(10 * time.Millisecond)
		s = waitFile(t, path)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || pid <= 1 {
		t.Fatalf("bad pid %q in %s", s, path)
	}
	return pid
}

// waitGone waits until pid no longer runs: it does not exist, or it is a
// zombie (killed, waiting for its new parent to reap it).
func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // don't leave it behind
			t.Fatalf("%s (pid %d) still runs", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
