package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// defaultRunTimeout bounds Run and internal commands whose context has no
// deadline.
const defaultRunTimeout = 30 * time.Second

// ErrWaitTimeout is returned by Proc.Wait when the process is still running.
var ErrWaitTimeout = errors.New("lab: process still running")

// runCommand runs argv in the root namespace with stdin, returning combined
// output; a failure's error carries the output.
func runCommand(ctx context.Context, stdin string, argv ...string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultRunTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("lab: running %s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Run runs argv inside the host's namespace (`ip netns exec NS argv...`) and
// returns its combined output; on failure the error includes that output.
// Without a deadline on ctx, Run gives up after 30s.
func (l *Lab) Run(ctx context.Context, host string, argv ...string) ([]byte, error) {
	h, err := l.host(host)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("lab: Run: empty argv")
	}
	return runCommand(ctx, "", append([]string{"ip", "netns", "exec", h.Netns}, argv...)...)
}

// runLAN runs argv in the LAN namespace with stdin.
func (l *Lab) runLAN(ctx context.Context, stdin string, argv ...string) ([]byte, error) {
	return runCommand(ctx, stdin, append([]string{"ip", "netns", "exec", l.lanNS}, argv...)...)
}

// ProcOptions configures Start.
type ProcOptions struct {
	// Name labels the log file "<host>-<name>-<n>.log" in the lab's Dir;
	// default: the base name of argv[0].
	Name string
	// Stdout and Stderr receive the process's output; a nil one goes to the
	// log file.
	Stdout, Stderr io.Writer
	// Env is added to the test process's environment.
	Env []string
	// Dir is the working directory; default: the lab's Dir.
	Dir string
}

// Proc is a process started by Lab.Start. Its methods are safe for
// concurrent use.
type Proc struct {
	host    string
	argv    []string
	cmd     *exec.Cmd
	pid     int
	logPath string
	done    chan struct{}
	err     error // exit status, set before done is closed
	once    sync.Once
	stopErr error
}

// Start runs argv in the host's namespace (`ip netns exec`, which execs argv,
// so the PID is argv's), in a new process group, until it exits or Close
// ends it. The process gets SIGKILL if the test process dies (Pdeathsig).
func (l *Lab) Start(host string, argv []string, opts ProcOptions) (*Proc, error) {
	h, err := l.host(host)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("lab: Start: empty argv")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	l.seq++
	name := opts.Name
	if name == "" {
		name = filepath.Base(argv[0])
	}
	p := &Proc{host: host, argv: append([]string(nil), argv...), done: make(chan struct{})}
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Netns}, argv...)...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Dir = opts.Dir
	if cmd.Dir == "" {
		cmd.Dir = l.dir
	}
	// Setpgid: Close ends the whole group the process may have forked.
	// Pdeathsig: nothing outlives a crashed test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if l.detach {
		cmd.SysProcAttr.Pdeathsig = 0
	}
	cmd.Stdout, cmd.Stderr = opts.Stdout, opts.Stderr
	cmd.WaitDelay = 2 * time.Second // pipes held open by grandchildren
	var logf *os.File
	if cmd.Stdout == nil || cmd.Stderr == nil {
		p.logPath = filepath.Join(l.dir, fmt.Sprintf("%s-%s-%d.log", host, name, l.seq))
		logf, err = os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lab: opening log for %s on %s: %w", name, host, err)
		}
		defer logf.Close() // the child has its own copy
		if cmd.Stdout == nil {
			cmd.Stdout = logf
		}
		if cmd.Stderr == nil {
			cmd.Stderr = logf
		}
	}
	errc := make(chan error, 1)
	l.spawn <- func() { errc <- cmd.Start() }
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("lab: starting %s on %s: %w", name, host, err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	l.log.Info("lab: started", "host", host, "pid", p.pid, "argv", strings.Join(argv, " "), "log", p.logPath)
	return p, nil
}

// PID is the process ID.
func (p *Proc) PID() int { return p.pid }

// Host is the host the process runs on.
func (p *Proc) Host() string { return p.host }

// LogPath is the file receiving the output not sent to given writers, or "".
func (p *Proc) LogPath() string { return p.logPath }

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode is the exit status, or -1 while running or after death by signal.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process (not its group), e.g. SIGSTOP to freeze a
// daemon. It returns os.ErrProcessDone after exit.
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0), or ErrWaitTimeout.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done: // already exited: never ErrWaitTimeout, even for timeout 0
		return p.err
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return ErrWaitTimeout
	}
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Proc) Kill() error {
	p.signalGroup(syscall.SIGKILL)
	if err := p.Wait(5 * time.Second); errors.Is(err, ErrWaitTimeout) {
		return fmt.Errorf("lab: pid %d survived SIGKILL: %w", p.pid, err)
	}
	return nil
}

// Stop sends SIGTERM to the process group, then SIGKILL if it has not exited
// after timeout. An exit caused by the signals is not an error. Idempotent.
func (p *Proc) Stop(timeout time.Duration) error { return p.stop(timeout) }

func (p *Proc) stop(timeout time.Duration) error {
	p.once.Do(func() {
		if p.Exited() {
			return
		}
		p.signalGroup(syscall.SIGCONT) // a SIGSTOPped process must see SIGTERM
		p.signalGroup(syscall.SIGTERM)
		if err := p.Wait(timeout); !errors.Is(err, ErrWaitTimeout) {
			return
		}
		p.stopErr = p.Kill()
	})
	return p.stopErr
}

// signalGroup signals the process group the lab created for this process,
// while the leader has not been reaped (so the group ID is still ours).
func (p *Proc) signalGroup(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	if err := syscall.Kill(-p.pid, sig); err != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// tail returns up to n bytes from the end of the process's log file.
func (p *Proc) tail(n int64) string {
	if p.logPath == "" {
		return ""
	}
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}

// startSpawner starts the goroutine that forks every process Start runs.
// Pdeathsig fires when the forking *thread* exits, and Go may end a thread
// whenever a goroutine exits while locked to it; forking from one thread that
// stays locked until Close keeps that from killing a healthy process.
func (l *Lab) startSpawner() {
	l.spawn = make(chan func())
	l.spawnDone = make(chan struct{})
	go func() {
		defer close(l.spawnDone)
		runtime.LockOSThread() // never unlocked: the thread ends with Close
		for f := range l.spawn {
			f()
		}
	}()
}
