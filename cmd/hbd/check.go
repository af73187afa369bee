package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/daemon"
	"go.yaml.in/yaml/v3"
)

func init() {
	register(command{name: "check", summary: "validate a config file (like nginx -t) and print the effective config", run: runCheck})
	register(command{name: "keygen", summary: "make a new shared key (hbd keygen --write /etc/hbd/key: mode 0600, owner hbd)", run: runKeygen})
}

const defaultConfig = "/etc/hbd/hbd.yaml"

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "Usage: hbd check [-c FILE] [-q]\n\nValidates FILE: prints the effective config (defaults filled in), or every\nerror with its line and field, and exits 1 on error. A missing interface is\na warning here (the file may be meant for another host) and an error for\nhbd run.\n")
	path := fs.String("c", defaultConfig, "config `file` to check")
	quiet := fs.Bool("q", false, "print only errors and warnings: nothing when the config is valid")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q (the file goes after -c)", pos[0])
	}
	res, err := config.Load(*path, config.Options{InterfaceMayBeMissing: true, NoBGP: daemon.NoBGP})
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
		}
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintf(stderr, "%s: %s\n", *path, e)
		}
		fmt.Fprintf(stderr, "%s: %d error(s); configuration is NOT valid\n", *path, len(errs))
		return exitError{1}
	}
	if err != nil {
		return err
	}
	if *quiet {
		return nil
	}
	out, err := yaml.Marshal(res.Config)
	if err != nil {
		return fmt.Errorf("printing the effective config: %w", err)
	}
	fmt.Fprintf(stdout, "# effective configuration of %s\n%s", *path, out)
	fmt.Fprintf(stderr, "%s: configuration is valid\n", *path)
	return nil
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "Usage: hbd keygen [--write FILE [--owner USER] [--force]]\n\n"+
		"Makes 32 random bytes, as 64 hex digits: the shared key every node of a\n"+
		"cluster must have in its auth_key_file. Without --write it prints the key.\n"+
		"With --write it creates FILE with mode 0600, owned by USER (the daemon's\n"+
		"user, which must read it): run it as root on one host, then copy the file\n"+
		"to the others keeping owner and mode.\n")
	write := fs.String("write", "", "create `file` holding the key (mode 0600) instead of printing it")
	owner := fs.String("owner", "hbd", "with --write: the `user` (and that user's group) owning the file")
	force := fs.Bool("force", false, "with --write: replace an existing file (the other nodes then need the new key)")
	pos, err := parse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("reading random bytes: %w", err)
	}
	key := hex.EncodeToString(b) + "\n"
	if *write == "" {
		_, err := io.WriteString(stdout, key)
		return err
	}
	if err := writeKey(*write, []byte(key), *owner, *force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a new key to %s (mode 0600, owner %s); copy it to the other nodes keeping owner and mode\n", *write, *owner)
	return nil
}

// writeKey creates path with data, mode 0600 and owner, all at once: the key
// is never readable by anyone else, not even for a moment, and an existing
// key is replaced only with force.
func writeKey(path string, data []byte, owner string, force bool) error {
	u, err := user.Lookup(owner)
	if err != nil {
		return fmt.Errorf("looking up the key's owner %q (the package creates the user hbd; or pass --owner): %w", owner, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%s exists: every node must keep the same key; pass --force to replace it", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hbd-key-*")
	if err != nil {
		return fmt.Errorf("writing the key: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		err = tmp.Chown(uid, gid)
	}
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing the key to %s: %w", path, err)
	}
	return nil
}
