package lab

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/testenv"
)

// NewForTest creates a lab for a test and closes it in t.Cleanup. It needs
// root and the Prereqs: without them it fails (skips with HBD_SKIP_ROOT=1). opts
// (at most one) defaults to Options{} with a logger writing to t.Log and Dir
// set to a t.TempDir(). If the test failed, Cleanup logs the tail of every
// process log before closing.
func NewForTest(t testing.TB, opts ...Options) *Lab {
	t.Helper()
	if len(opts) > 1 {
		t.Fatalf("lab.NewForTest: at most one Options, got %d", len(opts))
	}
	testenv.RequireRoot(t)
	for _, p := range Prereqs {
		testenv.RequireCommand(t, p.Command, p.Package)
	}
	var o Options
	if len(opts) == 1 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := New(ctx, o)
	if err != nil {
		t.Fatalf("lab.New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			procs := l.procs
			l.mu.Unlock()
			for _, p := range procs {
				if tail := p.tail(4096); tail != "" {
					t.Logf("--- %s pid %d (%s) log tail:\n%s", p.host, p.pid, strings.Join(p.argv, " "), tail)
				}
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab.Close: %v", err)
		}
	})
	return l
}
