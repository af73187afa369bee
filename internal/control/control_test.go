package control

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeAndCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "hbd.sock")
	srv, err := Listen(path, func(ctx context.Context, req Request) Response {
		switch req.Cmd {
		case CmdStatus:
			return Response{OK: true, Status: &Status{Node: "pc01", State: "MASTER"}}
		case CmdHandover:
			return Response{OK: true, Steps: []Step{{Name: "check standby", Took: Duration(time.Millisecond), OK: true, Detail: req.To + " " + time.Duration(req.Timeout).String()}}}
		}
		return Response{Error: "unknown command " + req.Cmd}
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %04o, want 0600", perm)
	}
	if _, err := Listen(path, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second daemon took a live socket: %v", err)
	}

	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	r, err := Call(cctx, path, Request{Cmd: CmdStatus})
	if err != nil || !r.OK || r.Status.Node != "pc01" || r.Status.State != "MASTER" {
		t.Fatalf("status: %+v, %v", r, err)
	}
	r, err = Call(cctx, path, Request{Cmd: CmdHandover, To: "pc02", Timeout: Duration(3 * time.Second)})
	if err != nil || !r.OK || len(r.Steps) != 1 || r.Steps[0].Detail != "pc02 3s" || time.Duration(r.Steps[0].Took) != time.Millisecond {
		t.Fatalf("handover: %+v, %v", r, err)
	}
	r, err = Call(cctx, path, Request{Cmd: "nonsense"})
	if err != nil || r.OK || !strings.Contains(r.Error, "unknown command") {
		t.Fatalf("unknown command: %+v, %v", r, err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Serve returned: %v", err)
	}
	// A stale socket file (a crashed daemon) is replaced.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv2, err := Listen(path, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	srv2.ln.Close()
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	for in, want := range map[string]time.Duration{`"1.5s"`: 1500 * time.Millisecond, `2000000`: 2 * time.Millisecond} {
		if err := d.UnmarshalJSON([]byte(in)); err != nil || time.Duration(d) != want {
			t.Errorf("%s → %v, %v", in, time.Duration(d), err)
		}
	}
	if err := d.UnmarshalJSON([]byte(`"soon"`)); err == nil {
		t.Error("a bad duration was accepted")
	}
}
