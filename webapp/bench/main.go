// Command bench runs the web app benchmark (BenchmarkSessionRead in package
// webapp): GET /api/session against a real Redis next to the bare
// GET /api/whoami, driven by the separate load-generator process in
// ./loadgen, and prints requests/s, p50, p99 and their ratio.
//
//	go run ./webapp/bench            # from the module root (make bench-webapp)
//	HBD_BENCH_DURATION=10s HBD_BENCH_CONCURRENCY=32 go run ./webapp/bench
//
// It needs redis-server (Debian package redis-server) and the go command.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		fmt.Fprintln(os.Stderr, "bench: run it inside the hbd module (go env GOMOD failed)")
		os.Exit(1)
	}
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkSessionRead$",
		"-benchtime", "1x", "-count", "1", "./webapp/")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
