package lab

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrMissingPrereq is wrapped by CheckPrereqs and New when a command the lab
// runs is not installed.
var ErrMissingPrereq = errors.New("lab: missing prerequisite")

// Prereq is an external command the lab runs, with the Debian package that
// provides it.
type Prereq struct {
	Command string // e.g. "nft"
	Package string // Debian package, e.g. "nftables"
}

// Prereqs lists every command the lab may run: ip for namespaces and links,
// nft for loss and blackout, redis-server for StartRedis.
var Prereqs = []Prereq{
	{Command: "ip", Package: "iproute2"},
	{Command: "nft", Package: "nftables"},
	{Command: "redis-server", Package: "redis-server"},
}

// CheckPrereqs reports, in one error wrapping ErrMissingPrereq, every command
// of Prereqs that is not on PATH and the Debian package that provides it. It
// installs nothing.
func CheckPrereqs() error {
	return checkCommands(Prereqs)
}

func checkCommands(ps []Prereq) error {
	var missing, pkgs []string
	for _, p := range ps {
		if _, err := exec.LookPath(p.Command); err != nil {
			missing = append(missing, p.Command)
			pkgs = append(pkgs, p.Package)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s not found (apt-get install %s)",
		ErrMissingPrereq, strings.Join(missing, ", "), strings.Join(pkgs, " "))
}
