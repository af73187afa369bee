package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHasFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		name string
		want bool
	}{
		{[]string{"--bin", "x"}, "bin", true},
		{[]string{"-bin=x"}, "bin", true},
		{[]string{"--binary"}, "bin", false},
		{[]string{"--runs", "5"}, "bin", false},
		{nil, "help", false},
		{[]string{"-h"}, "h", true},
	} {
		if got := hasFlag(tt.args, tt.name); got != tt.want {
			t.Errorf("hasFlag(%q, %q) = %v, want %v", tt.args, tt.name, got, tt.want)
		}
	}
}

func TestHBDBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "hbd")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := hbdBinary(exe); err != nil || got != exe {
		t.Errorf("hbdBinary(%q) = %q, %v", exe, got, err)
	}
	// Without the flag, an hbd on $PATH is found (none sits next to the
	// test binary).
	t.Setenv("PATH", dir)
	if got, err := hbdBinary(""); err != nil || got != exe {
		t.Errorf("hbdBinary from $PATH = %q, %v; want %q", got, err, exe)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := hbdBinary(""); err == nil {
		t.Error("hbdBinary found an hbd where there is none")
	}
}
