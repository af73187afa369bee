package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab/cluster"
)

// Notify hooks run on transitions with the documented environment, and
// SIGHUP applies a good config live and refuses a broken one.
func TestNotifyHooksAndReload(t *testing.T) {
	dir := t.TempDir()
	hook := filepath.Join(dir, "hook.sh")
	must(t, os.WriteFile(hook, []byte("#!/bin/sh\necho \"$1 $HBD_STATE $HBD_PREVIOUS_STATE $HBD_NODE $HBD_EPOCH [$HBD_VIPS] $HBD_REASON\" >> "+filepath.Join(dir, "events")+"\n"), 0o755))
	extra := "notify:\n  master: [" + hook + ", master]\n  backup: [" + hook + ", backup]\n  fault: [" + hook + ", fault]\n"
	c := startElected(t, cluster.Options{Extra: map[string]string{"pc01": extra, "pc02": extra}})
	must(t, c.Lab.CablePull("pc01"))
	if _, err := c.WaitOnlyHolder("pc02", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"master MASTER BACKUP pc01 1 [198.51.100.10/24 2001:db8::10/64]",
		"fault FAULT MASTER pc01",
		"master MASTER BACKUP pc02 2",
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "events"))
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(string(b), w)
		}
		if ok {
			t.Logf("hook runs:\n%s", b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook runs so far:\n%s\nwant lines containing %q", b, want)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Reload: a broken config is refused and the daemon keeps running the
	// old one; a good one changes the priority live, the VIP staying put.
	// The broken file also changes the priority to 7, so a daemon that
	// accepted it (ignoring the misspelt field) would show it.
	n := c.Nodes["pc02"]
	good, err := os.ReadFile(n.Config)
	must(t, err)
	broken := strings.Replace(string(good), "priority: 100", "priority: 7", 1) + "prioity: 7\n"
	if broken == string(good)+"prioity: 7\n" {
		t.Fatalf("config has no \"priority: 100\" line:\n%s", good)
	}
	must(t, os.WriteFile(n.Config, []byte(broken), 0o644))
	must(t, n.Hbd.Signal(syscall.SIGHUP))
	// The refusal is logged when the reload is decided: wait for it, then
	// the status shows the outcome.
	deadline = time.Now().Add(10 * time.Second)
	for {
		logb, _ := os.ReadFile(n.Hbd.LogPath())
		if strings.Contains(string(logb), "reload refused") && strings.Contains(string(logb), "prioity") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line refuses the reload and names the broken field:\n%s", logb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := c.Status(context.Background(), "pc02")
	must(t, err)
	if st.State != "MASTER" || st.Priority != 100 {
		t.Fatalf("after a broken reload: %s priority %d, want MASTER 100", st.State, st.Priority)
	}
	must(t, os.WriteFile(n.Config, []byte(strings.Replace(string(good), "priority: 100", "priority: 120", 1)), 0o644))
	must(t, n.Hbd.Signal(syscall.SIGHUP))
	deadline = time.Now().Add(5 * time.Second)
	for {
		st, err = c.Status(context.Background(), "pc02")
		must(t, err)
		if st.Priority == 120 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("priority after reload: %d", st.Priority)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := c.Holders(); len(h) != 1 || h[0] != "pc02" {
		t.Errorf("holders after reload: %v", h)
	}
}

// A key file rotated in place (same path, new contents) is noticed by
// SIGHUP and applied: the node that reloaded first refuses its peer's
// old-key frames, and once both reloaded they hear each other again. The
// standby is in maintenance meanwhile, as the runbook says, so the window
// with different keys cannot make two masters.
func TestReloadRotatesKeyInPlace(t *testing.T) {
	c := startElected(t, cluster.Options{})
	ctx := context.Background()
	maint := func(on string) {
		t.Helper()
		if out, err := exec.Command(hbdBin, "maintenance", on, "-s", c.Nodes["pc02"].Socket).CombinedOutput(); err != nil {
			t.Fatalf("maintenance %s: %v\n%s", on, err, out)
		}
	}
	badTags := func(node string) uint64 {
		st, err := c.Status(ctx, node)
		must(t, err)
		return st.Rejected["udp"]["bad_tag"] + st.Rejected["tcp"]["bad_tag"]
	}
	waitLog := func(node, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(c.Nodes[node].Hbd.LogPath())
			if strings.Contains(string(b), what) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s logged no %q:\n%s", node, what, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	maint("on")
	if n := badTags("pc01"); n != 0 {
		t.Fatalf("bad_tag before the rotation: %d", n)
	}
	key := make([]byte, 32)
	_, err := rand.Read(key)
	must(t, err)
	must(t, os.WriteFile(c.Key, []byte(hex.EncodeToString(key)+"\n"), 0o600))

	must(t, c.Nodes["pc01"].Hbd.Signal(syscall.SIGHUP))
	waitLog("pc01", "shared key changed")
	waitLog("pc01", `changed="auth key"`)
	deadline := time.Now().Add(5 * time.Second)
	for badTags("pc01") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("pc01 still accepts frames signed with the old key after reloading the new one")
		}
		time.Sleep(20 * time.Millisecond)
	}

	must(t, c.Nodes["pc02"].Hbd.Signal(syscall.SIGHUP))
	waitLog("pc02", "shared key changed")
	deadline = time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(ctx, "pc01")
		must(t, err)
		if len(st.Peers) == 1 && st.Peers[0].Alive && st.Peers[0].State == "MAINTENANCE" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pc01 does not hear pc02 after both reloaded the new key: %+v", st.Peers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Both on the new key: no more refusals.
	n := badTags("pc01")
	time.Sleep(300 * time.Millisecond)
	if m := badTags("pc01"); m != n {
		t.Errorf("pc01 still refuses pc02's frames: bad_tag %d → %d", n, m)
	}
	maint("off")
	time.Sleep(500 * time.Millisecond)
	if h := c.Holders(); len(h) != 1 || h[0] != "pc01" {
		t.Errorf("holders after the rotation: %v", h)
	}
}
