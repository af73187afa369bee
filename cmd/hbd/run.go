package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"

	"github.com/hbdproject/hbd/internal/daemon"
	"github.com/hbdproject/hbd/internal/journal"
)

func init() {
	register(command{name: "run", summary: "run the daemon: heartbeats, election, VIP", run: runDaemon})
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "Usage: hbd run [-c FILE]\n\nRuns the daemon in the foreground until SIGTERM or SIGINT, then releases the\nVIP and tells the peers (bye) so they take over at once. SIGHUP reloads the\nconfig (priority, peers, tracks, hooks, drain, log level). Needs\nCAP_NET_ADMIN and CAP_NET_RAW (or root). Logs go to standard error; under\nsystemd they are journal entries with their priority and HBD_* fields.\n")
	path := fs.String("c", defaultConfig, "config `file`")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	// The daemon is one event loop and a few readers: it needs no
	// parallelism, and one P halves its CPU (fewer cross-thread wakeups:
	// 2.0% instead of 4.0% of a core at the 10ms default, measured in the
	// lab). $GOMAXPROCS still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// Under systemd, stderr is the journal: log native entries with their
	// priority and HBD_* fields (journalctl -p warning, HBD_STATE=MASTER).
	level := new(slog.LevelVar)
	b := buildInfo()
	return daemon.Run(ctx, daemon.Options{ConfigPath: *path, Version: b.Version, Commit: b.Commit,
		Logger: slog.New(journal.New(level)), Level: level})
}
