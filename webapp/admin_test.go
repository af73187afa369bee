package webapp_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/drain"
	"github.com/hbdproject/hbd/webapp"
)

// TestAdminNotOpenToEveryLocalUser is finding 5 of the security review:
// any local user could POST http://127.0.0.1:8081/admin/drain and force a
// failover (on both hosts: no VIP anywhere). The admin API is now a unix
// socket of mode 0660 by default, and TCP needs a token.
func TestAdminNotOpenToEveryLocalUser(t *testing.T) {
	if _, ok := webapp.AdminSocket(webapp.DefaultAdmin); !ok {
		t.Fatalf("default admin address %q is not a unix socket", webapp.DefaultAdmin)
	}
	_, err := webapp.New(webapp.Config{Node: "pc01", Admin: "127.0.0.1:8081"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("TCP admin without a token: %v, want a refusal naming the token", err)
	}
}

func TestAdminSocketAndDrainThroughIt(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	srv, err := webapp.New(webapp.Config{Node: "pc01", Listen: "127.0.0.1:0", Admin: "unix:" + sock}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	eventually(t, wait, "the admin socket", func() error {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err
	})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Fatalf("admin socket mode %04o, want 0660", perm)
	}
	cfg := config.Drain{Socket: sock, URL: "http://localhost/admin/drain",
		InflightURL: "http://localhost/admin/inflight", UndrainURL: "http://localhost/admin/undrain"}
	if _, err := drain.Drain(context.Background(), cfg, nil); err != nil {
		t.Fatalf("drain through the socket: %v", err)
	}
	if !srv.Draining() {
		t.Fatal("not draining after a drain through the socket")
	}
	if err := drain.Undrain(context.Background(), cfg, nil); err != nil || srv.Draining() {
		t.Fatalf("undrain through the socket: %v (draining %v)", err, srv.Draining())
	}
}

func TestAdminTokenOverTCP(t *testing.T) {
	token := "s3cr3t-admin-token-0123456789"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := webapp.New(webapp.Config{Node: "pc01", Admin: aln.Addr().String(), AdminToken: token}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, aln) }()
	t.Cleanup(func() { cancel(); <-done })
	base := "http://" + aln.Addr().String()
	res, err := http.Post(base+"/admin/drain", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || srv.Draining() {
		t.Fatalf("drain without the token: status %d, draining %v", res.StatusCode, srv.Draining())
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Drain{TokenFile: tokenFile, URL: base + "/admin/drain", Timeout: config.Duration(5 * time.Second)}
	if _, err := drain.Drain(context.Background(), cfg, nil); err != nil || !srv.Draining() {
		t.Fatalf("drain with the token: %v (draining %v)", err, srv.Draining())
	}
}
