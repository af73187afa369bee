// Package sdnotify tells systemd about the daemon's life: READY=1 once the
// first role is known, WATCHDOG=1 from the main loop, STOPPING=1 and
// RELOADING=1, and free-form STATUS= lines. It speaks the sd_notify(3)
// protocol (datagrams on the unix socket named by $NOTIFY_SOCKET) in a few
// lines, without libsystemd or go-systemd.
//
// Outside systemd (no $NOTIFY_SOCKET) every call is a no-op that reports
// sent == false, so the daemon calls them unconditionally.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables systemd sets for a Type=notify service.
const (
	envSocket      = "NOTIFY_SOCKET"
	envWatchdogUS  = "WATCHDOG_USEC"
	envWatchdogPID = "WATCHDOG_PID"
)

// Notify sends state, one or more newline-separated VAR=VALUE assignments,
// to the socket named by $NOTIFY_SOCKET. It reports sent == false and no
// error when the variable is unset (not running under systemd). A name
// starting with "@" is a socket in the abstract namespace.
func Notify(state string) (sent bool, err error) {
	return notifyTo(os.Getenv(envSocket), state)
}

func notifyTo(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	if socket[0] != '/' && socket[0] != '@' {
		// vsock:… and other transports are for VMs and containers; hbd
		// runs on the host.
		return false, fmt.Errorf("sdnotify: unsupported NOTIFY_SOCKET %q: want a path or an @abstract name", socket)
	}
	// Go maps a leading "@" to the abstract namespace's NUL byte.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: connecting to %s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: sending %q: %w", firstLine(state), err)
	}
	return true, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "…"
	}
	return s
}

// Ready tells systemd that start-up is finished (READY=1).
func Ready() (bool, error) { return Notify("READY=1") }

// Stopping tells systemd that the service is shutting down (STOPPING=1).
func Stopping() (bool, error) { return Notify("STOPPING=1") }

// Reloading tells systemd that the service reloads its configuration
// (RELOADING=1); send Ready when done.
func Reloading() (bool, error) { return Notify("RELOADING=1") }

// Watchdog pings the service watchdog (WATCHDOG=1).
func Watchdog() (bool, error) { return Notify("WATCHDOG=1") }

// Status sets the one-line status `systemctl status` shows (STATUS=s).
// Newlines in s are replaced by spaces: they would end the assignment.
func Status(s string) (bool, error) {
	return Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// WatchdogInterval returns the watchdog timeout systemd expects pings
// within ($WATCHDOG_USEC), and false when the watchdog is off or meant for
// another process ($WATCHDOG_PID names a different PID). Ping at half of it.
func WatchdogInterval() (time.Duration, bool) {
	d, err := watchdogFrom(os.Getenv(envWatchdogUS), os.Getenv(envWatchdogPID), os.Getpid())
	return d, err == nil && d > 0
}

var errNoWatchdog = errors.New("sdnotify: watchdog not enabled")

func watchdogFrom(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, errNoWatchdog
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil {
			return 0, fmt.Errorf("sdnotify: bad %s %q: %w", envWatchdogPID, pid, err)
		}
		if p != self {
			return 0, errNoWatchdog
		}
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("sdnotify: bad %s %q: %w", envWatchdogUS, usec, err)
	}
	if us == 0 {
		return 0, errNoWatchdog
	}
	return time.Duration(us) * time.Microsecond, nil
}
