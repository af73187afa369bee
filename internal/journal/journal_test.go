package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeJournal is a datagram socket that reads entries as journald does.
type fakeJournal struct {
	t    *testing.T
	path string
	c    *net.UnixConn
}

func newFakeJournal(t *testing.T) *fakeJournal {
	path := filepath.Join(t.TempDir(), "socket")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeJournal{t: t, path: path, c: c}
}

// next reads one entry: from the datagram, or from the memfd passed with
// an empty one.
func (j *fakeJournal) next() map[string]string {
	j.t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, 64)
	j.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := j.c.ReadMsgUnix(buf, oob)
	if err != nil {
		j.t.Fatalf("reading an entry: %v", err)
	}
	data := buf[:n]
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			j.t.Fatal(err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil {
			j.t.Fatal(err)
		}
		f := os.NewFile(uintptr(fds[0]), "memfd")
		defer f.Close()
		seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
		if err != nil || seals&unix.F_SEAL_WRITE == 0 {
			j.t.Errorf("memfd seals %#x, %v: journald refuses an unsealed memfd", seals, err)
		}
		var st syscall.Stat_t
		syscall.Fstat(int(f.Fd()), &st)
		data = make([]byte, st.Size)
		if _, err := f.ReadAt(data, 0); err != nil {
			j.t.Fatal(err)
		}
	}
	return parseEntry(j.t, data)
}

// parseEntry parses the native protocol: NAME=value lines, or NAME, a
// newline, a 64-bit little-endian length, the value and a newline.
func parseEntry(t *testing.T, b []byte) map[string]string {
	t.Helper()
	m := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			t.Fatalf("entry ends without a newline: %q", b)
		}
		line := b[:nl]
		if name, val, ok := bytes.Cut(line, []byte("=")); ok {
			m[string(name)] = string(val)
			b = b[nl+1:]
			continue
		}
		b = b[nl+1:]
		if len(b) < 8 {
			t.Fatalf("binary field %s without its length", line)
		}
		n := binary.LittleEndian.Uint64(b)
		if uint64(len(b)) < 8+n+1 || b[8+n] != '\n' {
			t.Fatalf("binary field %s: bad length %d", line, n)
		}
		m[string(line)] = string(b[8 : 8+n])
		b = b[8+n+1:]
	}
	return m
}

func TestNativeEntries(t *testing.T) {
	j := newFakeJournal(t)
	h, err := NewHandler(j.path, "hbd", slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	log := slog.New(h).With("node", "pc01")

	cases := []struct {
		log  func()
		prio string
		msg  string
	}{
		{func() { log.Debug("frame", "peer", "pc02") }, "7", "frame node=pc01 peer=pc02"},
		{func() { log.Info("state changed", "state", "MASTER", "reason", "no master: pc02 silent") }, "6", `state changed node=pc01 state=MASTER reason="no master: pc02 silent"`},
		{func() { log.Warn("link down", "interface", "eth0") }, "4", "link down node=pc01 interface=eth0"},
		{func() { log.Error("claiming the VIPs", "err", fmt.Errorf("netlink: %w", os.ErrPermission)) }, "3", `claiming the VIPs node=pc01 err="netlink: permission denied"`},
	}
	for _, c := range cases {
		c.log()
		e := j.next()
		if e["PRIORITY"] != c.prio || e["MESSAGE"] != c.msg || e["SYSLOG_IDENTIFIER"] != "hbd" || e["HBD_NODE"] != "pc01" {
			t.Errorf("entry %v; want PRIORITY=%s MESSAGE=%q", e, c.prio, c.msg)
		}
	}

	log.Info("state changed", "state", "MASTER", "peer", "pc02", "reason", "handover from pc02")
	e := j.next()
	for k, v := range map[string]string{"HBD_STATE": "MASTER", "HBD_PEER": "pc02", "HBD_REASON": "handover from pc02"} {
		if e[k] != v {
			t.Errorf("%s = %q, want %q (entry %v)", k, e[k], v, e)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, e["HBD_TIME"]); err != nil {
		t.Errorf("HBD_TIME %q: %v", e["HBD_TIME"], err)
	}

	// A value with a newline takes the binary form; groups prefix keys.
	log.WithGroup("check").Warn("check fails", "detail", "line one\nline two")
	e = j.next()
	if e["HBD_CHECK_DETAIL"] != "line one\nline two" || e["PRIORITY"] != "4" {
		t.Errorf("multi-line field: %v", e)
	}

	// An entry larger than a datagram goes in a sealed memfd.
	big := strings.Repeat("x", 600<<10)
	log.Error("big", "detail", big)
	e = j.next()
	if e["HBD_DETAIL"] != big || e["PRIORITY"] != "3" {
		t.Errorf("large entry: %d bytes of detail, priority %q", len(e["HBD_DETAIL"]), e["PRIORITY"])
	}

	// Below the level: nothing is sent.
	h2, _ := NewHandler(j.path, "hbd", slog.LevelWarn)
	defer h2.Close()
	slog.New(h2).Info("quiet")
	slog.New(h2).Warn("loud")
	if e := j.next(); e["MESSAGE"] != "loud" {
		t.Errorf("level filter: got %v", e)
	}
}

func TestPrefixHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(NewPrefixHandler(&b, slog.LevelDebug))
	log.Debug("d")
	log.Info("i", "state", "BACKUP")
	log.Warn("w", "detail", "two\nlines")
	log.Error("e")
	want := "<7>d\n<6>i state=BACKUP\n<4>w detail=\"two\\nlines\"\n<3>e\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"state": "HBD_STATE", "peer": "HBD_PEER", "hold_down": "HBD_HOLD_DOWN", "check.detail": "HBD_CHECK_DETAIL", "Ünï": "HBD__N_"} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStderrIsJournal: JOURNAL_STREAM names a stream by device and inode;
// only a matching stderr counts.
func TestStderrIsJournal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if !isStream(fmt.Sprintf("%d:%d", st.Dev, st.Ino), f) {
		t.Error("matching JOURNAL_STREAM not recognised")
	}
	for _, env := range []string{"", "garbage", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)} {
		if isStream(env, f) {
			t.Errorf("JOURNAL_STREAM %q taken for the stream", env)
		}
	}
}
