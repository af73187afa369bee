package control

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// FuzzServe writes arbitrary bytes to a real control socket: whatever comes,
// the server answers one well-formed Response (an error for anything that
// is not one JSON request) and goes on serving.
func FuzzServe(f *testing.F) {
	path := filepath.Join(f.TempDir(), "hbd.sock")
	srv, err := Listen(path, func(ctx context.Context, req Request) Response {
		if req.Cmd == CmdStatus {
			return Response{OK: true, Status: &Status{Node: "pc01", State: "MASTER"}}
		}
		return Response{Error: "unknown command " + req.Cmd}
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	f.Cleanup(func() { cancel(); <-done })

	f.Add([]byte(`{"cmd":"status"}`))
	f.Add([]byte(`{"cmd":"handover","to":"pc02","timeout":"10s"}`))
	f.Add([]byte(`{"cmd":"maintenance","on":true,"force":true}`))
	f.Add([]byte(`{"cmd":"handover","timeout":-1}`))
	f.Add([]byte(`{"cmd":`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, req []byte) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Write(req) // a request over the size limit is cut off by the server
		c.(*net.UnixConn).CloseWrite()
		var resp Response
		if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
			t.Fatalf("no well-formed answer to %q: %v", req, err)
		}
		if !resp.OK && resp.Error == "" {
			t.Fatalf("a failed answer without an error: %+v", resp)
		}
	})
}
