// Package journal sends log/slog records to the systemd journal with their
// priority and structured fields, over the journal's native protocol
// (systemd's "Native Journal Protocol" document and systemd.journal-
// fields(7)): each record is one datagram of FIELD=value lines. The attrs
// become fields with an HBD_ prefix (state → HBD_STATE, peer → HBD_PEER),
// so `journalctl HBD_STATE=MASTER` and `journalctl -p warning` work.
//
// When the native socket cannot be reached, NewPrefixHandler writes lines
// with sd-daemon(3) priority prefixes ("<4>") to standard error instead,
// which journald also understands.
package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Socket is where journald listens for native entries.
const Socket = "/run/systemd/journal/socket"

// StderrIsJournal reports whether standard error is connected to the
// journal: systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the stream it
// gave the service, and a process whose stderr is still that stream (not
// redirected by a wrapper) may log natively instead.
func StderrIsJournal() bool {
	return isStream(os.Getenv("JOURNAL_STREAM"), os.Stderr)
}

func isStream(env string, f *os.File) bool {
	dev, ino, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return strconv.FormatUint(st.Dev, 10) == dev && strconv.FormatUint(st.Ino, 10) == ino
}

// Priority is the syslog priority of a slog level: debug 7, info 6,
// warn 4, error 3 (levels between round down to the more severe).
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// Handler is a slog.Handler that writes each record to a sink: native
// journal entries (NewHandler) or priority-prefixed lines (NewPrefixHandler).
// It is safe for concurrent use.
type Handler struct {
	out   sink
	level slog.Leveler
	scope
}

// sink writes one record with all its attrs, keys qualified by their groups.
type sink interface {
	write(r slog.Record, attrs []slog.Attr) error
}

// scope is what WithAttrs and WithGroup add to a handler.
type scope struct {
	attrs  []slog.Attr // keys already qualified by their groups
	groups string      // "a.b." for WithGroup("a").WithGroup("b")
}

// native sends entries to the journal's socket.
type native struct {
	mu    sync.Mutex
	sock  *net.UnixConn
	addr  *net.UnixAddr
	ident string
}

// NewHandler connects to the journal at socket (Socket in production) and
// returns a handler that logs records at level and above, tagged with
// SYSLOG_IDENTIFIER=ident.
func NewHandler(socket, ident string, level slog.Leveler) (*Handler, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"}) // unbound: we only send
	if err != nil {
		return nil, fmt.Errorf("journal: opening a datagram socket: %w", err)
	}
	return &Handler{out: &native{sock: sock, addr: &net.UnixAddr{Name: socket, Net: "unixgram"}, ident: ident}, level: level}, nil
}

// Close closes the handler's socket, if it has one.
func (h *Handler) Close() error {
	if n, ok := h.out.(*native); ok {
		return n.sock.Close()
	}
	return nil
}

func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), qualify(h.groups, as)...)
	return &n
}

func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.groups = h.groups + name + "."
	return &n
}

func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, qualify(h.groups, []slog.Attr{a})...)
		return true
	})
	return h.out.write(r, attrs)
}

func qualify(groups string, as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			continue
		}
		if a.Value.Kind() == slog.KindGroup {
			out = append(out, qualify(groups+a.Key+".", a.Value.Group())...)
			continue
		}
		a.Key = groups + a.Key
		out = append(out, a)
	}
	return out
}

func (n *native) write(r slog.Record, attrs []slog.Attr) error {
	var b bytes.Buffer
	field(&b, "MESSAGE", Text(r.Message, attrs))
	field(&b, "PRIORITY", strconv.Itoa(Priority(r.Level)))
	field(&b, "SYSLOG_IDENTIFIER", n.ident)
	if !r.Time.IsZero() {
		// The journal stamps its own receive time; this keeps the time the
		// record was made.
		field(&b, "HBD_TIME", r.Time.UTC().Format(time.RFC3339Nano))
	}
	for _, a := range attrs {
		field(&b, FieldName(a.Key), value(a.Value))
	}
	return n.send(b.Bytes())
}

// FieldName makes a journal field name of an attr key: HBD_ and the key in
// upper case, with anything but letters, digits and _ turned into _.
func FieldName(key string) string {
	var b strings.Builder
	b.WriteString("HBD_")
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 64 { // journald's limit on field names
		s = s[:64]
	}
	return s
}

func value(v slog.Value) string {
	if v.Kind() == slog.KindTime {
		return v.Time().Format(time.RFC3339Nano)
	}
	return v.String()
}

// field appends one field: NAME=value, or, when the value holds a newline,
// NAME, a newline, its length as 64-bit little endian, the value, newline.
func field(b *bytes.Buffer, name, val string) {
	if !strings.Contains(val, "\n") {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(val)
		b.WriteByte('\n')
		return
	}
	b.WriteString(name)
	b.WriteByte('\n')
	binary.Write(b, binary.LittleEndian, uint64(len(val)))
	b.WriteString(val)
	b.WriteByte('\n')
}

// send writes one entry; one too large for a datagram goes in a sealed
// memfd passed along with an empty datagram, as libsystemd does.
func (c *native) send(entry []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.sock.WriteToUnix(entry, c.addr)
	if err == nil || !(errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS)) {
		if err != nil {
			return fmt.Errorf("journal: sending an entry: %w", err)
		}
		return nil
	}
	fd, err := unix.MemfdCreate("hbd-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("journal: entry of %d bytes too large, and no memfd: %w", len(entry), err)
	}
	f := os.NewFile(uintptr(fd), "hbd-journal")
	defer f.Close()
	if _, err := f.Write(entry); err != nil {
		return fmt.Errorf("journal: writing a large entry: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return fmt.Errorf("journal: sealing a large entry: %w", err)
	}
	if _, _, err := c.sock.WriteMsgUnix(nil, unix.UnixRights(fd), c.addr); err != nil {
		return fmt.Errorf("journal: sending a large entry: %w", err)
	}
	return nil
}

// Text is a record's message with its attrs as key=value pairs, quoted
// where needed: the MESSAGE field, and a prefixed line.
func Text(msg string, attrs []slog.Attr) string {
	var b strings.Builder
	b.WriteString(msg)
	for _, a := range attrs {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		s := value(a.Value)
		if s == "" || strings.ContainsAny(s, " \t\n\"=") || !strconv.CanBackquote(s) {
			s = strconv.Quote(s)
		}
		b.WriteString(s)
	}
	return b.String()
}

// prefix writes one line per record, "<N>message key=value …", N being
// the record's syslog priority: journald reads the prefix from a service's
// standard error (SyslogLevelPrefix=yes, the default).
type prefix struct {
	mu sync.Mutex
	w  io.Writer
}

// NewPrefixHandler writes priority-prefixed lines to w (standard error
// under systemd).
func NewPrefixHandler(w io.Writer, level slog.Leveler) *Handler {
	return &Handler{out: &prefix{w: w}, level: level}
}

func (p *prefix) write(r slog.Record, attrs []slog.Attr) error {
	// One line per record: a newline inside would start an info line.
	line := "<" + strconv.Itoa(Priority(r.Level)) + ">" + strings.ReplaceAll(Text(r.Message, attrs), "\n", `\n`) + "\n"
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := io.WriteString(p.w, line)
	return err
}

// New picks the handler for a daemon's logs: native journal entries when
// standard error is the journal and its socket answers, else priority-
// prefixed lines when standard error is the journal, else text on stderr.
func New(level slog.Leveler) slog.Handler {
	if !StderrIsJournal() {
		return slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	}
	if h, err := NewHandler(Socket, "hbd", level); err == nil {
		return h
	}
	return NewPrefixHandler(os.Stderr, level)
}

var (
	_ slog.Handler = (*Handler)(nil)
	_ sink         = (*native)(nil)
	_ sink         = (*prefix)(nil)
)
