package config

import (
	"fmt"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ServiceUser is the user the packaged systemd unit runs hbd as; a key file
// and the directories above it may belong to it, to root, or to whoever
// runs hbd.
const ServiceUser = "hbd"

// minKeyEntropyBits is the least a key's byte frequencies may suggest it
// holds: 32 copies of one character hold none, and hbd keygen's 64 hex
// digits about 230.
const minKeyEntropyBits = 64

// ReadKey reads a shared key file with checks like OpenSSH's StrictModes:
// the file is a regular file that neither group nor others may access,
// owned by root, the service user or the user running hbd; no directory on
// its path may be written by group or others (a root-owned sticky one such
// as /tmp excepted) or belong to another user, since whoever can write there
// can swap the key; the key is at least MinKeyLen bytes and not almost
// without entropy. Each refusal says what to run. Surrounding white space
// is not part of the key.
func ReadKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %04o: group or others may access it; run chmod 600 %s", path, perm, path)
	}
	if uid, ok := owner(fi); ok && !trustedOwner(uid) {
		return nil, fmt.Errorf("key file %s belongs to %s: it must belong to root or %s; run chown %s: %s", path, userName(uid), ServiceUser, ServiceUser, path)
	}
	if err := checkKeyDirs(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("key in %s is %d bytes; at least %d are needed (hbd keygen writes 64)", path, len(key), MinKeyLen)
	}
	if bits := entropyBits(key); bits < minKeyEntropyBits {
		return nil, fmt.Errorf("key in %s has almost no entropy (about %.0f bits in %d bytes); make a random one: hbd keygen > %s", path, bits, len(key), path)
	}
	return key, nil
}

// checkKeyDirs walks the directories above the key file up to /.
func checkKeyDirs(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("key file %s: %w", path, err)
		}
		uid, known := owner(fi)
		perm := fi.Mode().Perm()
		sticky := fi.Mode()&os.ModeSticky != 0 && known && uid == 0
		if perm&0o022 != 0 && !sticky {
			return fmt.Errorf("key file %s: directory %s has mode %04o: group or others may write there and swap the key; run chmod go-w %s", path, dir, perm, dir)
		}
		if known && !trustedOwner(uid) {
			return fmt.Errorf("key file %s: directory %s belongs to %s, who could swap the key; run chown root: %s", path, dir, userName(uid), dir)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

func owner(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// trustedOwner reports whether uid is root, the user running hbd or the
// service user.
func trustedOwner(uid uint32) bool {
	if uid == 0 || int(uid) == os.Geteuid() {
		return true
	}
	u, err := user.Lookup(ServiceUser)
	return err == nil && u.Uid == strconv.FormatUint(uint64(uid), 10)
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// entropyBits estimates the entropy of key from its byte frequencies
// (Shannon), times its length: a crude bound that catches keys of one
// repeated character or two, not a weak passphrase.
func entropyBits(key []byte) float64 {
	var counts [256]int
	for _, c := range key {
		counts[c]++
	}
	h := 0.0
	for _, n := range counts {
		if n > 0 {
			p := float64(n) / float64(len(key))
			h -= p * math.Log2(p)
		}
	}
	return h * float64(len(key))
}
