package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…
// -X main.buildDate=…" (the Makefile and mkdeb do). A plain go build in a
// git checkout still gets the commit and its time from Go's VCS stamp.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

func init() {
	register(command{name: "version", summary: "print the version, commit, Go version and build date (also --version, -v)", run: runVersion})
}

// build is what `hbd version` prints and hbd_build_info carries.
type build struct {
	Version, Commit, GoVersion, Date string
}

func buildInfo() build {
	b := build{Version: version, Commit: commit, GoVersion: runtime.Version(), Date: buildDate}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, at string
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if b.Commit == "" && rev != "" {
			b.Commit = rev
			if dirty {
				b.Commit += "-dirty"
			}
		}
		if b.Date == "" && at != "" {
			b.Date = at + " (commit time)"
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "Usage: hbd version\n\nPrints hbd's version, the commit it was built from, the Go version that\nbuilt it and the build date. hbd --version and hbd -v do the same.\n")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	b := buildInfo()
	_, err = fmt.Fprintf(stdout, "hbd %s\ncommit: %s\ngo:     %s\nbuilt:  %s\n", b.Version, b.Commit, b.GoVersion, b.Date)
	return err
}
