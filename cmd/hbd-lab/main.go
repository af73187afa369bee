// Command hbd-lab is hbd's demo and benchmark: it builds a throw-away test
// bed of network namespaces on this machine and runs the real hbd binary in
// it. It is a binary of its own so that none of the lab's code (plots, fonts,
// the namespace harness) ships in the daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hbdproject/hbd/internal/lab/bench"
	"github.com/hbdproject/hbd/internal/lab/demo"
	"golang.org/x/sys/unix"
)

// exitError carries a specific exit status without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runLab(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintf(os.Stderr, "hbd-lab: %v\n", err)
		os.Exit(1)
	}
}

// hbdBinary finds the hbd binary that the lab runs on its hosts: the
// --hbd flag, else "hbd" next to this binary (make build puts both in
// bin/), else hbd on $PATH.
func hbdBinary(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if exe, err := os.Executable(); err == nil {
		next := filepath.Join(filepath.Dir(exe), "hbd")
		if fi, err := os.Stat(next); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return next, nil
		}
	}
	p, err := exec.LookPath("hbd")
	if err != nil {
		return "", errors.New("no hbd binary next to hbd-lab or on $PATH: build it (make build) or pass --hbd PATH")
	}
	return filepath.Abs(p)
}

const labUsage = `Usage:
  hbd-lab [--keep] [--width N]     play the failover story in network namespaces
  hbd-lab down [--force] [ID]      remove labs left by --keep (or by a killed run)
  hbd-lab forward [--listen ADDR] [--lab ID]
                                   serve a kept lab's page on this machine
  hbd-lab bench [flags]            the benchmark (hbd-lab bench --help)

hbd-lab builds a throw-away test bed on this machine — network namespaces
pc01, pc02, redis and client on one bridge, 198.51.100.0/24 and
2001:db8::/64 only — and runs in it the real thing: the hbd binary's
'hbd run' and 'hbd webapp' on pc01 and pc02, and redis-server on redis.
Then it plays the story, narrated with timestamps, while the client sends
a request through the VIP (198.51.100.10:8080) every 10 ms on a new
connection (whether or not the earlier ones have been answered, as many
users would) and the VIP's holders are followed from the hosts' address
events:

  1. save "小潘" in the session (pc01 answers), kill -9 pc01's web app:
     pc02 answers, with the name intact
  2. restart pc01's web app: pc01 preempts, pc02 hands the VIP back
  3. pull pc01's cable: pc02 serves
  4. plug it back: pc01 takes the VIP back by handover
  5. hbd handover pc01 → pc02
  6. update pc01's app to v2, hand back: the answers carry v2

For each scenario it prints who served before and after, the longest gap
between good responses, failed requests, whether two hosts ever held the
VIP, a timeline (one character per 10 ms), and a verdict: a failover must
move the VIP within a 2 s gap and keep the session, a handover must fail
no request, and two hosts must never hold the VIP. A summary table ends
the run; the exit status is 1 if any verdict failed. It takes about 10 s.

It needs root, ip (iproute2), nft (nftables) and redis-server
(redis-server); it installs nothing ('sudo make setup' does). Ctrl-C at
any point removes everything: the processes it started by PID and the
namespaces by exact name. The lab's logs and configs live in
/run/hbd-lab/lab-*/ while it runs.

With --keep the lab stays up at the end, with a state file listing its
namespaces and PIDs; 'hbd-lab forward' then serves its page on
http://127.0.0.1:8080/ and 'hbd-lab down' removes it.

Flags of hbd-lab:
`

func runLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "down":
			return runLabDown(ctx, args[1:], stdout, stderr)
		case "forward":
			return runLabForward(ctx, args[1:], stdout, stderr)
		case "bench":
			bargs := args[1:]
			if !hasFlag(bargs, "bin") && !hasFlag(bargs, "replot") && !hasHelp(bargs) {
				bin, err := hbdBinary("")
				if err != nil {
					return err
				}
				bargs = append([]string{"--bin", bin}, bargs...)
			}
			return bench.Main(ctx, bargs, stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "leave the lab running at the end (remove it with 'hbd-lab down')")
	width := fs.Int("width", 0, "wrap timelines to `N` columns (default: the terminal's width, else 80)")
	stateDir := fs.String("state-dir", demo.DefaultStateDir, "`dir`ectory of the labs' directories and state files")
	hbdFlag := fs.String("hbd", "", "the hbd `binary` to run on the lab's hosts (default: hbd next to hbd-lab, else on $PATH)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), labUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hbd-lab: unexpected argument %q\n\n", fs.Arg(0))
		fs.Usage()
		return exitError{2}
	}
	bin, err := hbdBinary(*hbdFlag)
	if err != nil {
		return err
	}
	if *width <= 0 {
		*width = terminalWidth()
	}

	// The caller's context ends on the first SIGINT or SIGTERM; SIGHUP (the
	// terminal went away) ends it too. Later signals are caught, so that
	// the cleanup the first one started runs to its end.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-sigs:
				if n > 1 {
					fmt.Fprintln(stderr, "\nhbd-lab: still removing the lab; wait a few seconds (namespaces must not be left behind)")
				}
				cancel()
			}
		}
	}()

	rep, err := demo.Run(ctx, demo.Options{Bin: bin, Keep: *keep, StateDir: *stateDir, Width: *width, Stdout: stdout})
	switch {
	case errors.Is(err, demo.ErrNotRoot):
		fmt.Fprintf(stderr, "hbd-lab: %v\n", err)
		return exitError{1}
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(stderr, "hbd-lab: interrupted")
		return exitError{130}
	case err != nil:
		return err
	case !rep.Passed():
		return exitError{1}
	}
	return nil
}

func runLabDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "also remove a lab whose 'hbd-lab' is still running")
	stateDir := fs.String("state-dir", demo.DefaultStateDir, "`dir`ectory of the labs' directories and state files")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hbd-lab down [--force] [ID]\n\n"+
			"Removes the labs recorded under the state directory (every one, or the\n"+
			"one with that ID): it stops the recorded processes that are still the\n"+
			"same processes (PID and start time), deletes the recorded namespaces by\n"+
			"exact name, and removes the lab's directory. Nothing else is touched.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{2}
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError{2}
	}
	if os.Geteuid() != 0 {
		return errors.New("removing namespaces needs root: sudo hbd-lab down")
	}
	return demo.Down(context.WithoutCancel(ctx), *stateDir, fs.Arg(0), *force, stdout)
}

func runLabForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", demo.DefaultForwardListen, "`address` to listen on, on this machine")
	id := fs.String("lab", "", "`ID` of the kept lab (default: the only one)")
	stateDir := fs.String("state-dir", demo.DefaultStateDir, "`dir`ectory of the labs' directories and state files")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hbd-lab forward [--listen ADDR] [--lab ID]\n\n"+
			"Serves a kept lab's page (hbd-lab --keep) on this machine: every\n"+
			"connection to ADDR is joined to one to the VIP's web app (198.51.100.10:8080)\n"+
			"dialled from inside the lab's client namespace. Open http://127.0.0.1:8080/.\n"+
			"Runs until Ctrl-C.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitError{2}
	}
	if os.Geteuid() != 0 {
		return errors.New("entering the lab's namespace needs root: sudo hbd-lab forward")
	}
	st, err := demo.FindKept(*stateDir, *id)
	if err != nil {
		return err
	}
	return demo.Forward(ctx, st, *listen, stdout)
}

// hasFlag reports whether args set the flag --name (or -name), with or
// without "=value".
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func hasHelp(args []string) bool { return hasFlag(args, "h") || hasFlag(args, "help") }

// terminalWidth is stdout's terminal width, else $COLUMNS, else 80; at
// most 160.
func terminalWidth() int {
	if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col >= 40 {
		return min(int(ws.Col), 160)
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return min(n, 160)
	}
	return demo.DefaultWidth
}
