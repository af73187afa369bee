package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// parseStatCPU returns utime + stime (in clock ticks) from the text of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("bench: /proc stat: no ')'")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc stat: %d fields after the name", len(f))
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: /proc stat utime %q: %w", f[11], err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: /proc stat stime %q: %w", f[12], err)
	}
	return u + s, nil
}

// parseVmHWM returns the peak resident set size in kB from the text of
// /proc/PID/status.
func parseVmHWM(status string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: /proc status VmHWM %q", rest)
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, errors.New("bench: /proc status: no VmHWM")
}

// procTree returns pid and all its descendants, read from
// /proc/PID/task/TID/children.
func procTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out) && i < 1000; i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// treeCPU sums utime + stime (clock ticks) over the processes.
func treeCPU(pids []int) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return 0, fmt.Errorf("bench: reading CPU of pid %d: %w", p, err)
		}
		t, err := parseStatCPU(string(b))
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// treeHWM sums VmHWM (kB) over the processes.
func treeHWM(pids []int) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			return 0, fmt.Errorf("bench: reading memory of pid %d: %w", p, err)
		}
		k, err := parseVmHWM(string(b))
		if err != nil {
			return 0, err
		}
		sum += k
	}
	return sum, nil
}

// parseCtxSwitches returns voluntary + nonvoluntary context switches from
// the text of /proc/PID/task/TID/status.
func parseCtxSwitches(status string) (uint64, error) {
	var sum uint64
	found := 0
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc status %s %q: %w", k, v, err)
		}
		sum += n
		found++
	}
	if found != 2 {
		return 0, errors.New("bench: /proc status: no context switch counts")
	}
	return sum, nil
}

// treeSwitches sums the context switches of every thread of the
// processes: how often they were scheduled (wakeups), a hint at where idle
// CPU goes.
func treeSwitches(pids []int) uint64 {
	var sum uint64
	for _, p := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", p))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			if n, err := parseCtxSwitches(string(b)); err == nil {
				sum += n
			}
		}
	}
	return sum
}

// parsePss returns the proportional set size in kB from the text of
// /proc/PID/smaps_rollup: pages shared with other processes (the same
// binary's text in the peer's namespace, libc) count in part.
func parsePss(rollup string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(rollup))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Pss:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: /proc smaps_rollup Pss %q", rest)
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, errors.New("bench: /proc smaps_rollup: no Pss")
}

// treePSS sums PSS (kB) over the processes.
func treePSS(pids []int) (uint64, error) {
	var sum uint64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			return 0, fmt.Errorf("bench: reading PSS of pid %d: %w", p, err)
		}
		k, err := parsePss(string(b))
		if err != nil {
			return 0, err
		}
		sum += k
	}
	return sum, nil
}
