//go:build !linux

package heartbeat

import (
	"io"
	"net"
)

func streamIO(conn net.Conn) io.ReadWriter { return conn }
