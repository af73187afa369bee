package daemon

import (
	"os"
	"os/signal"
	"syscall"
)

func notifySIGHUP(c chan os.Signal) { signal.Notify(c, syscall.SIGHUP) }

func stopSignals(c chan os.Signal) { signal.Stop(c) }
