//go:build linux

package daemon

import (
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// alarm is the loop's one timer: a timerfd, read in Go's network poller
// and armed with raw system calls. A Go timer (or a plain syscall) makes
// the runtime's monitor thread wake at every expiry besides the thread
// that runs the loop; at a 5 ms heartbeat that doubled the daemon's
// context switches. C receives once per expiry; an expiry that the loop
// has not yet taken is not queued twice.
type alarm struct {
	C    <-chan time.Time
	c    chan time.Time
	f    *os.File
	rc   syscall.RawConn
	done chan struct{}
}

func newAlarm() (*alarm, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating the loop's timerfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("polling the loop's timerfd: %w", err)
	}
	c := make(chan time.Time, 1)
	a := &alarm{C: c, c: c, f: f, rc: rc, done: make(chan struct{})}
	go a.run()
	return a, nil
}

// run forwards expiries to C until the timerfd is closed.
func (a *alarm) run() {
	defer close(a.done)
	var n uint64
	for {
		err := a.rc.Read(func(fd uintptr) bool {
			_, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&n)), 8)
			return errno != syscall.EAGAIN && errno != syscall.EINTR
		})
		if err != nil {
			return
		}
		select {
		case a.c <- time.Time{}:
		default:
		}
	}
}

// set arms the alarm to go off after d (at once if d ≤ 0), replacing any
// earlier setting.
func (a *alarm) set(d time.Duration) {
	d = max(d, time.Nanosecond) // zero would disarm it
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	_ = a.rc.Control(func(fd uintptr) {
		syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	})
}

// close stops the alarm.
func (a *alarm) close() {
	a.f.Close()
	<-a.done
}
