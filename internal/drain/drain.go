// Package drain empties the local app of in-flight requests before a
// planned handover releases the VIP, and puts it back in service when the
// handover fails.
//
// The app side is webapp's admin listener (a unix socket: Drain.Socket): POST /admin/drain,
// POST /admin/undrain and GET /admin/inflight answering
// {"inflight":N,"draining":bool}. A command can stand in for the URLs, or
// follow them.
package drain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/proc"

	"github.com/hbdproject/hbd/internal/config"
)

// ErrTimeout is wrapped by the error of a drain (or undrain) that did not
// finish within the configured timeout, so the caller can tell "the app is
// slow" from "the drain is broken".
var ErrTimeout = errors.New("drain timed out")

const (
	// pollEvery is the in-flight polling period: a loopback GET costs well
	// under a millisecond, and every 10ms wasted here is 10ms the handover
	// keeps clients waiting.
	pollEvery = 10 * time.Millisecond
	// defaultTimeout is config's default, for a Drain built by hand.
	defaultTimeout = 5 * time.Second
	// maxBody bounds what is read of an admin response.
	maxBody = 64 << 10
	// maxOutput is how much of the drain command's output is kept.
	maxOutput = 512
	// waitDelay bounds the wait for a grandchild of the command that left
	// its process group and still holds the output pipe.
	waitDelay = 200 * time.Millisecond
)

// The names of the steps, as Step.Name.
const (
	StepRequest  = "drain request"
	StepInflight = "wait for in-flight requests"
	StepCommand  = "drain command"
)

// Step is one finished (or failed) part of a drain, for printing with its
// duration.
type Step struct {
	Name   string        // StepRequest, StepInflight or StepCommand
	Took   time.Duration // how long it ran
	Detail string        // what it saw, e.g. "POST …: status 200", "in flight 3 → 0 after 3 polls"
}

// Drain puts the local app in drain mode and waits until it has no request
// in flight: it POSTs cfg.URL (expecting 2xx), then polls cfg.InflightURL
// every 10ms until it reports {"inflight":0}, then runs cfg.Command (exit
// status 0 means drained); each part only when configured. The whole drain
// is bounded by cfg.Timeout (zero: 5s); an error on expiry wraps ErrTimeout
// and says how many requests were still in flight. The steps run so far
// are returned with or without an error, the failed one last. An empty cfg
// drains nothing and returns no steps and no error. log may be nil.
func Drain(ctx context.Context, cfg config.Drain, log *slog.Logger) ([]Step, error) {
	if cfg.URL == "" && cfg.InflightURL == "" && len(cfg.Command) == 0 {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := timeoutOf(cfg)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %s", ErrTimeout, timeout))
	defer cancel()
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}

	var steps []Step
	do := func(name string, f func() (string, error)) error {
		start := time.Now()
		detail, err := f()
		st := Step{Name: name, Took: time.Since(start), Detail: detail}
		steps = append(steps, st)
		if err != nil {
			log.Warn("drain step failed", "step", name, "took", st.Took, "detail", detail, "err", err)
			return err
		}
		log.Info("drain step done", "step", name, "took", st.Took, "detail", detail)
		return nil
	}
	if cfg.URL != "" {
		if err := do(StepRequest, func() (string, error) { return post(ctx, client, cfg.URL) }); err != nil {
			return steps, fmt.Errorf("drain: requesting drain: %w", err)
		}
	}
	if cfg.InflightURL != "" {
		if err := do(StepInflight, func() (string, error) { return waitIdle(ctx, client, cfg.InflightURL) }); err != nil {
			return steps, fmt.Errorf("drain: waiting for in-flight requests: %w", err)
		}
	}
	if len(cfg.Command) > 0 {
		if err := do(StepCommand, func() (string, error) { return runCommand(ctx, cfg.Command) }); err != nil {
			return steps, fmt.Errorf("drain: running %s: %w", cfg.Command[0], err)
		}
	}
	return steps, nil
}

// Undrain puts the local app back in service by POSTing cfg.UndrainURL
// (expecting 2xx), bounded by cfg.Timeout (zero: 5s). Without an
// UndrainURL it does nothing. log may be nil.
func Undrain(ctx context.Context, cfg config.Drain, log *slog.Logger) error {
	if cfg.UndrainURL == "" {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := timeoutOf(cfg)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %s", ErrTimeout, timeout))
	defer cancel()
	client, err := newClient(cfg)
	if err != nil {
		return err
	}
	detail, err := post(ctx, client, cfg.UndrainURL)
	if err != nil {
		log.Warn("undrain failed", "detail", detail, "err", err)
		return fmt.Errorf("drain: requesting undrain: %w", err)
	}
	log.Info("undrained", "detail", detail)
	return nil
}

func timeoutOf(cfg config.Drain) time.Duration {
	if cfg.Timeout <= 0 {
		return defaultTimeout
	}
	return cfg.Timeout.D()
}

// newClient returns the client of the admin requests: through cfg.Socket
// when set, with cfg.TokenFile's token when set.
func newClient(cfg config.Drain) (*http.Client, error) {
	tr := &http.Transport{
		DisableKeepAlives: true, // a few requests per handover: no idle connections left behind
		Proxy:             nil,  // the admin listener is on this host: never via a proxy
	}
	if cfg.Socket != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", cfg.Socket)
		}
	}
	var rt http.RoundTripper = tr
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("drain: reading the admin token: %w", err)
		}
		rt = bearer{token: strings.TrimSpace(string(b)), next: tr}
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// bearer adds the admin token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// post POSTs an empty body to url and expects a 2xx status.
func post(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, http.NoBody)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		err = fmt.Errorf("POST %s: %w", url, ctxErr(ctx, bare(err)))
		return err.Error(), err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	detail := fmt.Sprintf("POST %s: status %d", url, resp.StatusCode)
	if resp.StatusCode/100 != 2 {
		if s := oneLine(body); s != "" {
			detail += ": " + s
		}
		return detail, errors.New(detail)
	}
	return detail, nil
}

// badResponse is an in-flight answer that will not get better by asking
// again (a wrong status or body): polling stops at once.
type badResponse struct{ msg string }

func (e *badResponse) Error() string { return e.msg }

// waitIdle polls url until it reports no request in flight.
func waitIdle(ctx context.Context, client *http.Client, url string) (string, error) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	first, last, polls := -1, -1, 0
	var lastErr error
	for {
		n, err := inflight(ctx, client, url)
		polls++
		var bad *badResponse
		switch {
		case err == nil:
			if first < 0 {
				first = n
			}
			last, lastErr = n, nil
			if n == 0 {
				return fmt.Sprintf("in flight %d → 0 after %d polls", first, polls), nil
			}
		case ctx.Err() != nil:
			// Handled below.
		case errors.As(err, &bad):
			return bad.msg, err
		default:
			lastErr = err // the app may be restarting its listener: ask again
		}
		select {
		case <-ctx.Done():
			err := ctxErr(ctx, ctx.Err())
			switch {
			case last >= 0 && lastErr == nil:
				err = fmt.Errorf("%d still in flight (%s after %d polls): %w", last, url, polls, err)
			case lastErr != nil:
				err = fmt.Errorf("in-flight count unknown (%s: %v): %w", url, lastErr, err)
			default:
				err = fmt.Errorf("in-flight count unknown (%s): %w", url, err)
			}
			return err.Error(), err
		case <-tick.C:
		}
	}
}

// inflight GETs url and returns its "inflight" count.
func inflight(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, &badResponse{msg: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, bare(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, &badResponse{msg: fmt.Sprintf("GET %s: status %d: %s", url, resp.StatusCode, oneLine(body))}
	}
	var v struct {
		Inflight *int `json:"inflight"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, &badResponse{msg: fmt.Sprintf("GET %s: decoding %q: %v", url, oneLine(body), err)}
	}
	if v.Inflight == nil || *v.Inflight < 0 {
		return 0, &badResponse{msg: fmt.Sprintf("GET %s: %q has no inflight count", url, oneLine(body))}
	}
	return *v.Inflight, nil
}

// runCommand runs argv without a shell in its own process group, which is
// killed whole when ctx ends; exit status 0 means drained.
func runCommand(ctx context.Context, argv []string) (string, error) {
	cmd := proc.Command(ctx, argv, waitDelay)
	out := &proc.Capped{Max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := proc.Run(cmd)
	detail := "exit status 0"
	if cmd.ProcessState != nil {
		detail = cmd.ProcessState.String()
	}
	if s := trim(out.OneLine()); s != "" {
		detail += ": " + s
	}
	if ctx.Err() != nil {
		err = ctxErr(ctx, ctx.Err())
		return fmt.Sprintf("killed: %v", err), err
	}
	if err != nil && !(errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success()) {
		if cmd.ProcessState == nil {
			detail = err.Error() // did not start
		}
		return detail, err
	}
	return detail, nil
}

// bare drops url.Error's `Get "…":` prefix: the messages name the URL
// already.
func bare(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// ctxErr replaces err by the drain's timeout cause when the drain's
// deadline is what ended ctx.
func ctxErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrTimeout) {
		return cause
	}
	return err
}

// oneLine is b on one line, trimmed for a Detail.
func oneLine(b []byte) string { return trim(proc.OneLine(b)) }

func trim(s string) string {
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
