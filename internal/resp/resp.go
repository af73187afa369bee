// Package resp speaks just enough of Redis's RESP protocol for the lab and
// the tests to send one command over a connection and read its reply,
// without a Redis client library.
package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxDepth bounds nested arrays in a reply.
const maxDepth = 8

// Do writes one command (a RESP array of bulk strings) to rw and returns
// the reply as text: simple strings, integers and bulk strings as they are,
// arrays as their elements joined by newlines. An error reply is returned
// as an error prefixed "redis: ". The caller sets rw's deadlines.
func Do(rw io.ReadWriter, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(rw, b.String()); err != nil {
		return "", err
	}
	return read(bufio.NewReader(rw), 0)
}

func read(r *bufio.Reader, depth int) (string, error) {
	if depth > maxDepth {
		return "", errors.New("resp: reply nested too deeply")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("resp: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("resp: bad bulk length %q", line[1:])
		}
		if n < 0 {
			return "", nil // a nil bulk string
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("resp: bad array length %q", line[1:])
		}
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := read(r, depth+1)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("resp: unknown reply type %q", line[0])
}
