package daemon

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/hbdproject/hbd/heartbeat"
)

// A peer still on frame version 1 gets one clear log line a minute, not
// one per frame and not a silent debug line.
func TestOldPeerVersionLogged(t *testing.T) {
	var buf bytes.Buffer
	d := &Daemon{log: slog.New(slog.NewTextHandler(&buf, nil))}
	old := []byte("HB\x01\x01" + strings.Repeat("\x00", 80))
	rx := heartbeat.NewReceiver([]byte(strings.Repeat("k", 32)), 0, "pc01", 1)
	from := netip.MustParseAddrPort("198.51.100.12:8707")
	for range 3 {
		_, err := rx.Accept(old, from)
		if heartbeat.Reason(err) != "version" {
			t.Fatalf("version 1 frame: %v", err)
		}
		d.warnVersion(from, err)
	}
	if n := strings.Count(buf.String(), "peer speaks another heartbeat frame version"); n != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "frame version 1, this hbd speaks versions 2 and 3") || !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("log line does not say which versions:\n%s", buf.String())
	}
}
