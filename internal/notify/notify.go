// Package notify runs the operator's commands on state transitions, like
// keepalived's notify_master, notify_backup and notify_fault, one at a time
// and in order, without ever making the caller wait.
//
// Each command runs without a shell, in its own process group, with the
// daemon's environment plus HBD_STATE, HBD_PREVIOUS_STATE, HBD_NODE,
// HBD_VIPS (space-separated), HBD_REASON, HBD_EPOCH and HBD_GROUP (the VIP
// group, empty in a config without groups). It is bounded by
// the configured timeout, after which its whole process group is killed.
package notify

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hbdproject/hbd/internal/proc"

	"github.com/hbdproject/hbd/internal/config"
)

// Event is one transition, as the hooks see it.
type Event struct {
	From, To string   // state names: INIT, BACKUP, MASTER, FAULT, MAINTENANCE
	Node     string   // this node's name
	VIPs     []string // the VIPs, e.g. 198.51.100.10/24
	Reason   string   // why the transition happened, for people
	Epoch    uint64   // the mastership epoch after the transition
	Group    string   // the VIP group that changed state; "" without groups
	At       time.Time
}

const (
	// queueLen bounds the transitions waiting for their hooks. Transitions
	// come seconds apart; this many waiting means the hooks hang, and
	// dropping then is better than holding the election loop.
	queueLen = 64
	// defaultTimeout is config's default, for a Notify built by hand.
	defaultTimeout = 10 * time.Second
	// maxOutput is how much of a hook's stdout and stderr is kept for the log.
	maxOutput = 512
	// waitDelay bounds the wait for a grandchild that left the process
	// group and still holds the output pipe.
	waitDelay = 200 * time.Millisecond
)

// Runner queues transitions and runs their hooks. Notify and Dropped may be
// called from any goroutine; Run is called once.
type Runner struct {
	cfg     config.Notify
	log     *slog.Logger
	queue   chan Event
	dropped atomic.Uint64
}

// New returns a runner for cfg. A zero timeout means config's default, 10s.
// log may be nil.
func New(cfg config.Notify, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = config.Duration(defaultTimeout)
	}
	return &Runner{cfg: cfg, log: log, queue: make(chan Event, queueLen)}
}

// Notify queues ev's hooks. It never blocks: when the queue is full the
// event is dropped, logged and counted in Dropped.
func (r *Runner) Notify(ev Event) {
	if len(r.commands(ev)) == 0 {
		return // nothing configured for it: don't take a queue slot
	}
	select {
	case r.queue <- ev:
	default:
		n := r.dropped.Add(1)
		r.log.Warn("notify queue full: hooks for this transition dropped",
			"node", ev.Node, "state", ev.To, "from", ev.From, "dropped", n)
	}
}

// Dropped returns how many transitions' hooks were dropped because the
// queue was full.
func (r *Runner) Dropped() uint64 { return r.dropped.Load() }

// Run runs queued hooks one at a time, in order, until ctx is done; the
// hook running then is killed and Run returns.
func (r *Runner) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			if n := len(r.queue); n > 0 {
				r.log.Info("notify stopping; hooks not run", "transitions", n)
			}
			return
		case ev := <-r.queue:
			for _, argv := range r.commands(ev) {
				if ctx.Err() != nil {
					break
				}
				r.run(ctx, argv, ev)
			}
		}
	}
}

// commands returns the hooks for ev in the order they run: the new state's
// own, then Any.
func (r *Runner) commands(ev Event) [][]string {
	var cmds [][]string
	var own []string
	switch strings.ToUpper(ev.To) {
	case "MASTER":
		own = r.cfg.Master
	case "BACKUP":
		own = r.cfg.Backup
	case "FAULT":
		own = r.cfg.Fault
	}
	if len(own) > 0 {
		cmds = append(cmds, own)
	}
	if len(r.cfg.Any) > 0 {
		cmds = append(cmds, r.cfg.Any)
	}
	return cmds
}

// hookEnv returns the variables a hook for ev gets on top of the daemon's
// environment.
func hookEnv(ev Event) []string {
	return []string{
		"HBD_STATE=" + ev.To,
		"HBD_PREVIOUS_STATE=" + ev.From,
		"HBD_NODE=" + ev.Node,
		"HBD_VIPS=" + strings.Join(ev.VIPs, " "),
		"HBD_REASON=" + ev.Reason,
		"HBD_EPOCH=" + strconv.FormatUint(ev.Epoch, 10),
		"HBD_GROUP=" + ev.Group,
	}
}

// run runs one hook to its end, its timeout or ctx's end, and logs how it
// went.
func (r *Runner) run(ctx context.Context, argv []string, ev Event) {
	timeout := r.cfg.Timeout.D()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := proc.Command(hctx, argv, waitDelay)
	// Later entries win, so HBD_* from the daemon's own environment are
	// replaced.
	cmd.Env = append(os.Environ(), hookEnv(ev)...)
	out := &proc.Capped{Max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out

	start := time.Now()
	err := proc.Run(cmd)
	log := r.log.With("node", ev.Node, "state", ev.To, "from", ev.From,
		"hook", argv[0], "took", time.Since(start).Round(time.Millisecond), "output", out.OneLine())
	switch {
	case errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		log.Warn("notify hook timed out; killed its process group", "timeout", timeout)
	case ctx.Err() != nil:
		log.Info("notify hook killed: shutting down")
	case err != nil:
		log.Warn("notify hook failed", "err", err)
	default:
		log.Info("notify hook ran", "status", "exit status 0")
	}
}
