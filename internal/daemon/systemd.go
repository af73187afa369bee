package daemon

import "github.com/hbdproject/hbd/internal/sdnotify"

// The daemon tells systemd (Type=notify) when it is ready — once its first
// role is known — when it reloads and when it stops. Outside systemd these
// do nothing.

func notifyReady(state string) { sdnotify.Notify("READY=1\nSTATUS=" + state) }

func notifyReloading() { sdnotify.Reloading() }

func notifyStopping() { sdnotify.Stopping() }
