package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/hbdproject/hbd/internal/daemon"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func init() {
	register(command{name: "run", summary: "run the daemon: heartbeats, election, VIP", run: runDaemon})
}

func runDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", defaultConfig, "config file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hbd run [-c FILE]\n\nRuns the daemon in the foreground until SIGTERM or SIGINT, then releases the\nVIP and tells the peers (bye) so they take over at once. SIGHUP reloads the\nconfig (peers, priority, tracks, hooks, drain, log level, the shared key, also\nwhen its file was rewritten in place). Needs CAP_NET_ADMIN and CAP_NET_RAW (or\nroot).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The daemon is one event loop and a few readers: it needs no
	// parallelism, and one P halves its CPU (fewer cross-thread wakeups:
	// 2.0% instead of 4.0% of a core at the 10ms default, measured in the
	// lab). $GOMAXPROCS still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	return daemon.Run(ctx, daemon.Options{ConfigPath: *path, Version: version})
}
