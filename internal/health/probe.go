package health

import (
	"context"
	"errors"
	"fmt"
	"github.com/hbdproject/hbd/internal/proc"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"time"
)

// Limits on what a run reads, so a misbehaving target cannot make the
// daemon buffer much.
const (
	maxBody    = 64 << 10 // bytes of an http response body read (and dropped) so the connection closes cleanly
	maxStderr  = 256      // bytes of an exec check's stderr kept for Detail
	waitDelay  = 100 * time.Millisecond
	detailTrim = 120 // characters of stderr shown in Detail
)

// httpProbe GETs a URL and expects one status.
type httpProbe struct {
	url    string
	expect int
	client *http.Client
}

func newHTTPProbe(target string, expect int, timeout time.Duration) httpProbe {
	return httpProbe{
		url:    target,
		expect: expect,
		client: &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				// A fresh connection per run: a reused connection that the
				// app closed would fail a run for nothing, and a check should
				// see what a new client sees.
				DisableKeepAlives: true,
				// No proxy from the environment: checks target this host.
				Proxy: nil,
			},
			// The status of the URL itself is what is checked, so a 301
			// can be expected; redirects are not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

func (p httpProbe) probe(ctx context.Context, timeout time.Duration) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", p.url, err)
	}
	req.Header.Set("User-Agent", "hbd-health")
	resp, err := p.client.Do(req)
	if err != nil {
		if isTimeout(ctx, err) {
			return false, fmt.Sprintf("GET %s: timeout after %s", p.url, timeout)
		}
		return false, fmt.Sprintf("GET %s: %v", p.url, unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	detail := fmt.Sprintf("GET %s: status %d", p.url, resp.StatusCode)
	if resp.StatusCode != p.expect {
		return false, fmt.Sprintf("%s, want %d", detail, p.expect)
	}
	return true, detail
}

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURLError drops url.Error's "Get \"…\": " prefix, which Detail
// already carries.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// execProbe runs a program without a shell; exit status 0 passes.
type execProbe struct {
	argv []string
}

func (p execProbe) probe(ctx context.Context, timeout time.Duration) (bool, string) {
	if len(p.argv) == 0 {
		return false, "no command"
	}
	// Its own process group, so that on timeout the whole group goes,
	// including anything a script started.
	cmd := proc.Command(ctx, p.argv, waitDelay)
	stderr := &proc.Capped{Max: maxStderr}
	cmd.Stderr = stderr
	err := proc.Run(cmd)
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return false, fmt.Sprintf("timeout after %s", timeout)
	case err == nil:
		return true, "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		detail := ee.ProcessState.String() // "exit status 1", "signal: killed"
		if s := trimDetail(stderr.OneLine()); s != "" {
			detail += ": " + s
		}
		return false, detail
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		return true, "exit status 0"
	}
	return false, err.Error()
}

// trimDetail shortens captured output for Detail.
func trimDetail(s string) string {
	if len(s) > detailTrim {
		s = s[:detailTrim] + "…"
	}
	return s
}

// ifaceProbe passes while an interface is administratively up and has
// carrier.
//
// It asks the kernel over netlink (net.InterfaceByName) rather than reading
// /sys/class/net/NAME/{operstate,carrier}: netlink answers for the network
// namespace the daemon runs in, while sysfs shows the namespace it was
// mounted in, which differs for a process moved with setns (as in tests and
// the lab). FlagRunning is the kernel's IFF_RUNNING, set while the link is
// operationally up (carrier present and not dormant); loopback counts as
// running too, where its sysfs operstate reads "unknown".
type ifaceProbe struct {
	name string
}

func (p ifaceProbe) probe(context.Context, time.Duration) (bool, string) {
	ifi, err := net.InterfaceByName(p.name)
	if err != nil {
		return false, fmt.Sprintf("interface %s: %v", p.name, unwrapOpError(err))
	}
	switch {
	case ifi.Flags&net.FlagUp == 0:
		return false, "link down (administratively)"
	case ifi.Flags&net.FlagRunning == 0:
		return false, "link down (no carrier)"
	}
	return true, "link up"
}

// unwrapOpError drops net.OpError's "route ip+net: " prefix.
func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
