//go:build linux

package heartbeat

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawStream reads and writes a TCP connection with raw system calls,
// waiting in Go's network poller (so deadlines and Close still apply). For
// the same reason as rawUDP: a plain syscall from an idle process wakes the
// runtime's monitor thread, once per frame on each side of the stream.
type rawStream struct {
	rc syscall.RawConn
}

// streamIO returns how to read and write conn: raw for a TCP connection,
// conn itself otherwise.
func streamIO(conn net.Conn) io.ReadWriter {
	if tc, ok := conn.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			return rawStream{rc}
		}
	}
	return conn
}

func (s rawStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := s.rc.Read(func(fd uintptr) bool {
		n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

func (s rawStream) Write(p []byte) (int, error) { return s.write(p, true) }

// writeNow writes what the socket takes at once, without waiting.
func (s rawStream) writeNow(p []byte) (int, error) { return s.write(p, false) }

func (s rawStream) write(p []byte, wait bool) (int, error) {
	written := 0
	var errno syscall.Errno
	err := s.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[written])), uintptr(len(p)-written),
				syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
			switch e {
			case 0:
				written += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return !wait // wait for room in the poller, or give up
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err != nil {
		return written, err
	}
	if errno != 0 {
		return written, &net.OpError{Op: "write", Net: "tcp", Err: errno}
	}
	return written, nil
}
