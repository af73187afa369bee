package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/internal/testenv"
)

const goodKey = "3f1c9a7e5b2d4c6a8e0f1b3d5c7a9e2f4b6d8c0a1e3f5b7d9c2a4e6f8b0d1c3e"

// TestKeyFileStrictModes is finding 4 of the security review: a key owned
// by nobody, a 0600 key in a 0777 directory and a key of 32 ASCII zeros
// were all accepted.
func TestKeyFileStrictModes(t *testing.T) {
	write := func(t *testing.T, dir, content string) string {
		t.Helper()
		p := filepath.Join(dir, "key")
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("good key", func(t *testing.T) {
		if _, err := ReadKey(write(t, t.TempDir(), goodKey)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("sticky root directory like /tmp is fine", func(t *testing.T) {
		testenv.RequireRoot(t)
		dir := t.TempDir()
		if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKey(write(t, dir, goodKey)); err != nil {
			t.Fatal(err)
		}
	})
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T) string
		want  []string // in the message: what is wrong and what to run
	}{
		{"owned by nobody", func(t *testing.T) string {
			testenv.RequireRoot(t)
			p := write(t, t.TempDir(), goodKey)
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"uid 65534", "chown hbd: "}},
		{"0600 key in a 0777 directory", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "open")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			return write(t, dir, goodKey)
		}, []string{"mode 0777", "chmod go-w "}},
		{"a directory on the path owned by another user", func(t *testing.T) string {
			testenv.RequireRoot(t)
			dir := filepath.Join(t.TempDir(), "theirs")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return write(t, dir, goodKey)
		}, []string{"uid 65534", "chown root: "}},
		{"32 ASCII zeros", func(t *testing.T) string {
			return write(t, t.TempDir(), strings.Repeat("0", 32))
		}, []string{"almost no entropy", "hbd keygen >"}},
		{"two characters repeated", func(t *testing.T) string {
			return write(t, t.TempDir(), strings.Repeat("ab", 24))
		}, []string{"almost no entropy"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadKey(tt.setup(t))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestEntropyBits(t *testing.T) {
	for _, tt := range []struct {
		key      string
		min, max float64
	}{
		{strings.Repeat("0", 32), 0, 0},
		{strings.Repeat("ab", 16), 32, 32},
		{goodKey, 200, 256},
	} {
		if got := entropyBits([]byte(tt.key)); got < tt.min || got > tt.max {
			t.Errorf("entropyBits(%q) = %.1f, want %.0f..%.0f", tt.key, got, tt.min, tt.max)
		}
	}
}
