// Package control is the small JSON protocol that `hbd status`, `hbd
// handover` and `hbd maintenance` speak to a running daemon over a unix
// socket (mode 0600): one request and one response per connection. There is
// deliberately no TCP listener for control.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Commands.
const (
	CmdStatus      = "status"
	CmdHandover    = "handover"
	CmdMaintenance = "maintenance"
)

// Request is what a client asks.
type Request struct {
	Cmd     string   `json:"cmd"`
	To      string   `json:"to,omitempty"`      // handover: target node, empty for the best ready standby
	Group   string   `json:"group,omitempty"`   // handover: the VIP group to move, empty for every group this node is master of
	Timeout Duration `json:"timeout,omitempty"` // handover: bound on the whole handover
	On      bool     `json:"on,omitempty"`      // maintenance: on or off
	Force   bool     `json:"force,omitempty"`   // maintenance on: even when no standby can take over
}

// Response is what the daemon answers.
type Response struct {
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
	Steps  []Step  `json:"steps,omitempty"`
}

// Step is one step of a handover, with how long it took.
type Step struct {
	Name   string   `json:"name"`
	Took   Duration `json:"took"`
	OK     bool     `json:"ok"`
	Detail string   `json:"detail,omitempty"`
}

// Status is the daemon's state for `hbd status`.
type Status struct {
	Node              string         `json:"node"`
	Version           string         `json:"version"`
	State             string         `json:"state"`
	Epoch             uint64         `json:"epoch"`
	Priority          int            `json:"priority"`
	EffectivePriority int            `json:"effective_priority"`
	Penalties         map[string]int `json:"penalties,omitempty"` // failing weight checks: name → weight subtracted
	Faults            []string       `json:"faults,omitempty"`
	Degraded          bool           `json:"degraded,omitempty"` // only checks fail, link up: may hold the VIP while no healthy node can
	Ready             bool           `json:"ready"`
	LinkUp            bool           `json:"link_up"`
	Maintenance       bool           `json:"maintenance"`
	Interface         string         `json:"interface"`
	VIPs              []string       `json:"vips"`
	Held              []string       `json:"held"` // VIPs on the interface now
	LastTransition    time.Time      `json:"last_transition"`
	LastReason        string         `json:"last_reason"`
	YieldingTo        string         `json:"yielding_to,omitempty"`
	HoldDownLeft      Duration       `json:"hold_down_left"` // no preemption until it runs out (flap damping)
	Started           time.Time      `json:"started"`
	Peers             []Peer         `json:"peers"`
	Checks            []Check        `json:"checks,omitempty"`
	Witness           *Witness       `json:"witness,omitempty"`
	Quorum            *Quorum        `json:"quorum,omitempty"` // three or more nodes only
	BGP               *BGP           `json:"bgp,omitempty"`    // with a bgp section
	// Groups are the VIP groups, in the config's order, with a config that
	// has groups. The node's own fields above then sum them up: State is
	// the best group's (MASTER while it holds any), VIPs and Held cover
	// every group, Epoch is the highest.
	Groups []Group `json:"groups,omitempty"`
	// Rejected counts refused frames by path ("udp", "tcp") and reason
	// ("bad_tag", "replay", "duplicate", ...).
	Rejected map[string]map[string]uint64 `json:"rejected"`
}

// Group is one VIP group's election.
type Group struct {
	Name              string         `json:"name"`
	ID                int            `json:"id"`
	State             string         `json:"state"`
	Epoch             uint64         `json:"epoch"`
	Priority          int            `json:"priority"`
	EffectivePriority int            `json:"effective_priority"`
	Penalties         map[string]int `json:"penalties,omitempty"`
	Faults            []string       `json:"faults,omitempty"`
	Degraded          bool           `json:"degraded,omitempty"`
	Ready             bool           `json:"ready"`
	VIPs              []string       `json:"vips"`
	Held              []string       `json:"held"`
	LastTransition    time.Time      `json:"last_transition"`
	LastReason        string         `json:"last_reason"`
	YieldingTo        string         `json:"yielding_to,omitempty"`
	HoldDownLeft      Duration       `json:"hold_down_left"`
	Peers             []GroupPeer    `json:"peers"`
}

// GroupPeer is a peer's state in one group, as its last frame said.
type GroupPeer struct {
	Node     string `json:"node"`
	State    string `json:"state"`
	Priority int    `json:"priority"`
	Epoch    uint64 `json:"epoch"`
	Ready    bool   `json:"ready"`
}

// BGP is the BGP announcer's state.
type BGP struct {
	Announced  string         `json:"announced"` // primary, demoted, standby or withdrawn
	Neighbours []BGPNeighbour `json:"neighbours"`
}

// BGPNeighbour is one BGP session.
type BGPNeighbour struct {
	Address string `json:"address"`
	State   string `json:"state"` // GoBGP's session state, e.g. SESSION_STATE_ESTABLISHED
}

// Quorum is the majority rule as this node sees it (three or more nodes):
// it may hold the VIP only while Have ≥ Need.
type Quorum struct {
	Size int  `json:"size"` // nodes in the cluster, this one included
	Need int  `json:"need"` // a majority
	Have int  `json:"have"` // this node and its live peers
	Held bool `json:"held"`
}

// Peer is one peer as this node sees it. A configured peer never heard
// has no Node and the state UNHEARD.
type Peer struct {
	Node      string            `json:"node"`
	Address   string            `json:"address"`
	State     string            `json:"state"`
	Alive     bool              `json:"alive"`
	Priority  int               `json:"priority"`
	Epoch     uint64            `json:"epoch"`
	Ready     bool              `json:"ready"`
	LastFrame map[string]Age    `json:"last_frame"` // per path: age of the last authentic frame
	RTT       Duration          `json:"rtt"`        // kernel's smoothed RTT of the TCP path, 0 if unknown
	Received  map[string]uint64 `json:"received"`   // authentic frames per path
	Lost      uint64            `json:"lost"`       // sequence numbers never seen on any path
	MaxGap    Duration          `json:"max_gap"`    // longest wait between two authentic frames (any path) since start
}

// Witness is the state of the witness lease.
type Witness struct {
	Policy    string   `json:"policy"`
	Reachable bool     `json:"reachable"`  // the last call got an answer
	LeaseLeft Duration `json:"lease_left"` // how long we may still believe we hold the lease; 0 if we hold none
}

// Check is one health check's last result.
type Check struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Weight  int    `json:"weight,omitempty"`
	Fault   bool   `json:"fault,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as text ("1.5s").
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads text or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("control: duration %s: %w", b, err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("control: duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Age is how long ago something happened; -1s (written "never") if it
// never did.
type Age = Duration

// Handler answers one request. It may take as long as the request needs
// (a handover takes its timeout at most); ctx ends when the server stops.
type Handler func(ctx context.Context, req Request) Response

// maxRequest bounds a request's size.
const maxRequest = 4096

// Server serves the control socket.
type Server struct {
	ln   *net.UnixListener
	path string
	h    Handler
	log  *slog.Logger
	wg   sync.WaitGroup
}

// Listen creates the socket at path with mode 0600, replacing a stale one
// left by a crash but refusing to steal the socket of a running daemon.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control: %s is in use: is another hbd running?", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: creating the socket's directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control: removing stale socket %s: %w", path, err)
	}
	// Create the socket with no permission for group and others from the
	// start: a chmod after bind would leave a window.
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control: listening on %s: %w", path, err)
	}
	return &Server{ln: ln, path: path, h: h, log: log}, nil
}

// Serve answers requests until ctx is done, then removes the socket.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	defer func() {
		s.wg.Wait()
		os.Remove(s.path)
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control: accepting: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(ctx, c)
		}()
	}
}

func (s *Server) serve(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req Request
	var resp Response
	if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
		resp = Response{Error: "control: bad request: " + err.Error()}
	} else {
		resp = s.h(ctx, req)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewEncoder(c).Encode(resp); err != nil {
		s.log.Warn("control: writing a response", "err", err)
	}
}

// Call sends req to the daemon listening at path and returns its answer.
// The daemon may take as long as the request needs; ctx bounds the wait.
func Call(ctx context.Context, path string, req Request) (*Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: connecting to %s (is hbd running, and may you open its socket?): %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("control: sending: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("control: reading the answer: %w", err)
	}
	return &resp, nil
}
