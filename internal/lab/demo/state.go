package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultStateDir holds one directory per lab the demo started: its logs,
// configs, sockets and StateFile. /run is emptied at boot, as are network
// namespaces.
const DefaultStateDir = "/run/hbd-lab"

// StateFile is the name of the state file in a lab's directory.
const StateFile = "state.json"

// labDirPrefix starts every lab directory's name under the state directory.
const labDirPrefix = "lab-"

// State is what `hbd-lab down` needs to remove a lab: exact namespace names
// and the processes by PID, each with its start time so that a recycled PID
// is never signalled.
type State struct {
	ID          string      `json:"id"`           // the lab's ID, e.g. "hbd-3f9a"
	Dir         string      `json:"dir"`          // the lab's directory (logs, configs, sockets)
	Namespaces  []string    `json:"namespaces"`   // exact names, LAN namespace last
	Procs       []StateProc `json:"procs"`        // processes the lab started that may still run
	ClientNetns string      `json:"client_netns"` // where the page is reachable through the VIP
	URL         string      `json:"url"`          // the page through the VIP
	Sockets     []string    `json:"sockets"`      // the daemons' control sockets
	Keep        bool        `json:"keep"`         // left running on purpose (--keep)
	Owner       StateProc   `json:"owner"`        // the `hbd-lab` process that made it
	Created     time.Time   `json:"created"`
}

// StateProc is one process in a State.
type StateProc struct {
	Host  string `json:"host,omitempty"`
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // start time in clock ticks since boot (/proc/PID/stat field 22)
}

// nameRE is what a namespace name from a state file must look like before
// it is passed to `ip netns del`.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// WriteState writes s to its Dir's StateFile atomically.
func WriteState(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo: writing the state file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, StateFile)); err != nil {
		return fmt.Errorf("demo: writing the state file: %w", err)
	}
	return nil
}

// ReadStates reads the state file of every lab directory under dir, in name
// order. Lab directories without one (logs kept after a failed run) come
// back as a State with only Dir set.
func ReadStates(dir string) ([]*State, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo: reading %s: %w", dir, err)
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), labDirPrefix) {
			continue
		}
		d := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(filepath.Join(d, StateFile))
		if errors.Is(err, os.ErrNotExist) {
			out = append(out, &State{Dir: d})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("demo: reading the state of %s: %w", d, err)
		}
		var s State
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("demo: reading %s: %w", filepath.Join(d, StateFile), err)
		}
		s.Dir = d // the directory it was found in, whatever the file says
		out = append(out, &s)
	}
	return out, nil
}

// procStart returns a process's start time in clock ticks since boot, or an
// error if there is no such process.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("demo: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("demo: short /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, os.ErrProcessDone
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// stateProc describes a running process for a State.
func stateProc(host, name string, pid int) StateProc {
	start, _ := procStart(pid)
	return StateProc{Host: host, Name: name, PID: pid, Start: start}
}

// alive reports whether p is still the process it was recorded as.
func (p StateProc) alive() bool {
	if p.PID <= 0 || p.Start == 0 {
		return false
	}
	start, err := procStart(p.PID)
	return err == nil && start == p.Start
}

// Down removes labs recorded under stateDir: id "" means every one, else
// the lab with that ID or directory name. For each it ends the recorded
// processes that are still the same processes (SIGTERM to the process
// group, SIGKILL after 3s), deletes the recorded namespaces by exact name,
// and removes the lab's directory. A lab whose `hbd-lab` is still running is
// left alone unless force is set. It reports what it did to w.
func Down(ctx context.Context, stateDir, id string, force bool, w io.Writer) error {
	states, err := ReadStates(stateDir)
	if err != nil {
		return err
	}
	var errs []error
	found := false
	for _, s := range states {
		if id != "" && s.ID != id && filepath.Base(s.Dir) != id {
			continue
		}
		found = true
		if s.ID == "" {
			fmt.Fprintf(w, "removing %s (logs of an earlier run)\n", s.Dir)
			errs = append(errs, os.RemoveAll(s.Dir))
			continue
		}
		if !force && s.Owner.alive() {
			fmt.Fprintf(w, "lab %s: its hbd-lab (pid %d) is still running; stop it with Ctrl-C, or use --force\n", s.ID, s.Owner.PID)
			continue
		}
		errs = append(errs, downOne(ctx, s, w))
	}
	if !found {
		if id != "" {
			return fmt.Errorf("no lab %q under %s", id, stateDir)
		}
		fmt.Fprintf(w, "no lab to remove under %s\n", stateDir)
	}
	return errors.Join(errs...)
}

func downOne(ctx context.Context, s *State, w io.Writer) error {
	var errs []error
	var stopped []string
	for _, p := range s.Procs {
		if !p.alive() {
			continue
		}
		if err := stopProc(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		stopped = append(stopped, fmt.Sprintf("%s on %s (pid %d)", p.Name, p.Host, p.PID))
	}
	if len(stopped) > 0 {
		fmt.Fprintf(w, "lab %s: stopped %s\n", s.ID, strings.Join(stopped, ", "))
	}
	var deleted []string
	for _, ns := range s.Namespaces {
		if !nameRE.MatchString(ns) {
			errs = append(errs, fmt.Errorf("lab %s: refusing odd namespace name %q", s.ID, ns))
			continue
		}
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		out, err := exec.CommandContext(cctx, "ip", "netns", "del", ns).CombinedOutput()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("lab %s: ip netns del %s: %w: %s", s.ID, ns, err, strings.TrimSpace(string(out))))
			continue
		}
		deleted = append(deleted, ns)
	}
	if len(deleted) > 0 {
		fmt.Fprintf(w, "lab %s: deleted namespaces %s\n", s.ID, strings.Join(deleted, " "))
	}
	if len(errs) == 0 {
		errs = append(errs, os.RemoveAll(s.Dir))
		fmt.Fprintf(w, "lab %s: removed %s\n", s.ID, s.Dir)
	}
	return errors.Join(errs...)
}

// stopProc ends a recorded process: SIGTERM to its process group (the lab
// started each in its own), SIGKILL after 3s. It is not our child, so it is
// watched through /proc rather than waited for.
func stopProc(ctx context.Context, p StateProc) error {
	target := p.PID
	if pg, err := syscall.Getpgid(p.PID); err == nil && pg == p.PID {
		target = -p.PID // the whole group it leads
	}
	gone := func(limit time.Duration) bool {
		for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
			if !p.alive() {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return !p.alive()
	}
	if err := syscall.Kill(target, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s (pid %d): %w", p.Name, p.PID, err)
	}
	if gone(3 * time.Second) {
		return nil
	}
	if p.alive() { // re-checked: never signal a recycled PID
		_ = syscall.Kill(target, syscall.SIGKILL)
	}
	if gone(2 * time.Second) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
}
