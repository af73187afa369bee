package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/hbdproject/hbd/internal/daemon"
	"github.com/hbdproject/hbd/internal/journal"
)

func init() {
	register(command{name: "run", summary: "run the daemon: heartbeats, election, VIP", run: runDaemon})
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "Usage: hbd run [-c FILE]\n\nRuns the daemon in the foreground until SIGTERM or SIGINT, then releases the\nVIP and tells the peers (bye) so they take over at once. SIGHUP reloads the\nconfig (priority, peers, tracks, hooks, drain, log level, the shared key, also\nwhen its file was rewritten in place). Needs CAP_NET_ADMIN and CAP_NET_RAW (or\nroot). Logs go to standard error; under\nsystemd they are journal entries with their priority and HBD_* fields.\n")
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
	// Its live heap is about a megabyte and it allocates little (two small
	// objects per received frame), so a quarter of the default GC target
	// costs a collection every few seconds of almost nothing and keeps
	// the resident set about 2 MB smaller (12.7 instead of 14.8 MB after a
	// minute at 5 ms, measured in the lab). $GOGC still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	// Under systemd, stderr is the journal: log native entries with their
	// priority and HBD_* fields (journalctl -p warning, HBD_STATE=MASTER).
	level := new(slog.LevelVar)
	b := buildInfo()
	return daemon.Run(ctx, daemon.Options{ConfigPath: *path, Version: b.Version, Commit: b.Commit,
		Logger: slog.New(journal.New(level)), Level: level})
}
