//go:build !linux

package heartbeat

import (
	"errors"
	"syscall"
	"time"
)

// hbd runs on Linux; elsewhere the socket tuning is skipped so that the
// package still builds (and its pure parts test) on a developer's laptop.

func setTOS(syscall.RawConn) {}

func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }

func userTimeout(syscall.RawConn) (time.Duration, error) {
	return 0, errors.ErrUnsupported
}

func smoothedRTT(syscall.RawConn) (time.Duration, bool) { return 0, false }
