package resp

import (
	"bytes"
	"strings"
	"testing"
)

// conn is a fake connection: it records what is written and replies with
// a canned answer.
type conn struct {
	out   bytes.Buffer
	reply *strings.Reader
}

func (c *conn) Write(b []byte) (int, error) { return c.out.Write(b) }
func (c *conn) Read(b []byte) (int, error)  { return c.reply.Read(b) }

func TestDo(t *testing.T) {
	for _, tt := range []struct {
		reply, want, err string
	}{
		{"+OK\r\n", "OK", ""},
		{":42\r\n", "42", ""},
		{"$5\r\nhello\r\n", "hello", ""},
		{"$-1\r\n", "", ""},
		{"*2\r\n$1\r\na\r\n:7\r\n", "a\n7", ""},
		{"-ERR wrong\r\n", "", "redis: ERR wrong"},
		{"?x\r\n", "", "unknown reply type"},
		{"$x\r\n", "", "bad bulk length"},
		{strings.Repeat("*1\r\n", 12) + "+deep\r\n", "", "nested too deeply"},
	} {
		c := &conn{reply: strings.NewReader(tt.reply)}
		got, err := Do(c, "GET", "k")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("reply %q: err %v, want %q", tt.reply, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("reply %q: got %q, %v; want %q", tt.reply, got, err, tt.want)
		}
		if c.out.String() != "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" {
			t.Errorf("wrote %q", c.out.String())
		}
	}
}
