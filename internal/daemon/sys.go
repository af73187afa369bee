package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

func notifySIGHUP(c chan os.Signal) { signal.Notify(c, syscall.SIGHUP) }

func stopSignals(c chan os.Signal) { signal.Stop(c) }

// daemonNice is the nice value `hbd run` gives itself: a host whose CPUs
// are saturated (a build, a runaway process) must not stall the loop past
// dead_after, or the master steps down (stall self-demotion) and the VIP
// moves for nothing. Under CFS a nice -10 thread gets about ten times the
// share of a nice 0 one; the loop needs well under 1% of a core.
const daemonNice = -10

// raisePriority sets every thread of the process to daemonNice; threads
// the runtime starts later inherit it from the thread that creates them.
// It needs CAP_SYS_NICE (root, or the unit's AmbientCapabilities); without
// it hbd logs why and runs at the normal priority.
func raisePriority() error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("listing our threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, daemonNice); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("setting nice %d on thread %d: %w", daemonNice, tid, err)
		}
	}
	return nil
}
