// Package proc runs the operator's commands — exec checks, notify hooks,
// drain commands — without a shell, each in a process group of its own that
// is killed whole when its context ends, and keeps the start of what they
// print.
package proc

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Command returns argv ready to run: its own process group, SIGKILL to the
// whole group when ctx ends (so nothing a script started survives it), and
// no wait longer than waitDelay for a grandchild that left the group while
// holding its output open. argv must not be empty.
func Command(ctx context.Context, argv []string, waitDelay time.Duration) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// Run starts cmd, made by Command, and waits for it. When its main process
// exits, whatever it left in its process group is killed, as systemd's
// KillMode=control-group does: a background child holding the output open
// neither outlives the command nor makes it look failed.
func Run(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	// Wait for the exit without reaping: until Wait reaps it, the main
	// process's zombie keeps its group id from being reused.
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return cmd.Wait()
}

// Capped keeps the first Max bytes written to it and drops the rest, so a
// chatty command cannot grow the daemon's memory.
type Capped struct {
	Max int
	buf bytes.Buffer
}

func (c *Capped) Write(p []byte) (int, error) {
	if room := c.Max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// OneLine is what was kept, its white space folded onto one line.
func (c *Capped) OneLine() string { return OneLine(c.buf.Bytes()) }

// OneLine folds b's white space onto one line.
func OneLine(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }
