// Package systemd holds hbd's systemd units (hbd.service, hbd-webapp.service),
// the example configuration of a two-host pair (pc01.yaml, pc02.yaml) and of
// an active-active one (active-active.yaml) and the web app's environment
// file, embedded so that the Debian package is built from exactly the files
// the tests check.
package systemd

import "embed"

// Files holds the units, example configs and environment file by name:
// hbd.service, hbd-webapp.service, pc01.yaml, pc02.yaml, active-active.yaml,
// webapp.env, and hbd-hooks.rules, the polkit rule that lets notify hooks
// start named units.
//
//go:embed hbd.service hbd-webapp.service pc01.yaml pc02.yaml active-active.yaml webapp.env hbd-hooks.rules
var Files embed.FS
