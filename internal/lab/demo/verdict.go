package demo

import (
	"fmt"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/control"
)

// Expect is what the demo expects of one scenario.
type Expect struct {
	From       string        // node serving before the event; "" = any
	To         string        // node serving, and alone holding the VIP, at the end
	MaxGap     time.Duration // the longest gap between good responses must be shorter; 0 = no bound
	NoFailures bool          // no request may fail (a planned handover)
	Session    string        // the name the session must read back at the end; "" = not checked
	Version    string        // the app version of the last answer; "" = not checked
}

// SessionRead is one read of the session through the VIP.
type SessionRead struct {
	Name    string
	Node    string // X-Served-By
	Version string // X-App-Version
	Err     string // "" if the read succeeded
}

// Outcome is what one scenario measured.
type Outcome struct {
	Before     string        // node of the last good response before the event
	After      string        // node of the last good response at the end
	Holders    []string      // VIP holders at the end
	Moved      time.Duration // from the event until To alone held the VIP (0: not measured)
	Gap        time.Duration // longest interval between consecutive good responses
	Slowest    time.Duration // the slowest good response
	Requests   int           // probe requests that finished in the scenario
	Failures   int           // of them, not answered with a 2xx
	Errors     []ErrorCount  // the failures by kind, most frequent first
	MaxHolders int           // most hosts holding the VIP at one sample
	DoubleFor  time.Duration // how long two or more hosts held it
	Session    *SessionRead  // the read at the end, if any
	Steps      []control.Step
	Err        error // a step of the scenario failed or timed out
}

// ErrorCount is how many failed requests failed one way.
type ErrorCount struct {
	What  string // e.g. "connection refused", "status 503"
	Count int
}

// Verdict is a scenario's pass or fail, with the reason in one line.
type Verdict struct {
	Pass   bool
	Reason string
}

func (v Verdict) String() string {
	if v.Pass {
		return "PASS  " + v.Reason
	}
	return "FAIL  " + v.Reason
}

// Judge applies the demo's rules to one scenario: the expected node serves
// (and alone holds the VIP) at the end, the gap is under MaxGap, no request
// failed where none may, the session and version read back as expected, and
// never did two hosts hold the VIP at once.
func Judge(e Expect, o Outcome) Verdict {
	var bad, good []string
	if o.Err != nil {
		bad = append(bad, o.Err.Error())
	}
	if e.From != "" && o.Before != e.From {
		bad = append(bad, fmt.Sprintf("%s served before the event, want %s", orNone(o.Before), e.From))
	}
	switch {
	case e.To == "":
	case o.After != e.To:
		bad = append(bad, fmt.Sprintf("%s serves at the end, want %s", orNone(o.After), e.To))
	case len(o.Holders) != 1 || o.Holders[0] != e.To:
		bad = append(bad, fmt.Sprintf("VIP held by %s at the end, want %s alone", holderList(o.Holders), e.To))
	case e.From != "" && e.From != e.To:
		good = append(good, fmt.Sprintf("VIP moved %s → %s", e.From, e.To))
	default:
		good = append(good, "served by "+e.To)
	}
	if e.MaxGap > 0 {
		if o.Gap >= e.MaxGap {
			bad = append(bad, fmt.Sprintf("gap %s ≥ %s", Millis(o.Gap), e.MaxGap))
		} else {
			good = append(good, fmt.Sprintf("gap %s < %s", Millis(o.Gap), e.MaxGap))
		}
	}
	if e.NoFailures {
		if o.Failures > 0 {
			bad = append(bad, fmt.Sprintf("%d failed request(s) in a planned handover", o.Failures))
		} else {
			good = append(good, fmt.Sprintf("0 failed of %d", o.Requests))
		}
	}
	if e.Session != "" || e.Version != "" {
		switch s := o.Session; {
		case s == nil:
			bad = append(bad, "the session was not read back")
		case s.Err != "":
			bad = append(bad, "reading the session: "+s.Err)
		default:
			if e.Session != "" {
				if s.Name != e.Session {
					bad = append(bad, fmt.Sprintf("session lost: name %q, want %q", s.Name, e.Session))
				} else {
					good = append(good, "session intact")
				}
			}
			if e.Version != "" {
				if s.Version != e.Version {
					bad = append(bad, fmt.Sprintf("answers carry %q, want %q", s.Version, e.Version))
				} else {
					good = append(good, "answers carry "+e.Version)
				}
			}
		}
	}
	if o.MaxHolders > 1 {
		bad = append(bad, fmt.Sprintf("%d hosts held the VIP at once for %s", o.MaxHolders, Millis(o.DoubleFor)))
	} else {
		good = append(good, "never two holders")
	}
	if len(bad) > 0 {
		return Verdict{Pass: false, Reason: strings.Join(bad, "; ")}
	}
	return Verdict{Pass: true, Reason: strings.Join(good, ", ")}
}

// Millis formats d in whole milliseconds, e.g. "356 ms".
func Millis(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}

func orNone(node string) string {
	if node == "" {
		return "no one"
	}
	return node
}

func holderList(hs []string) string {
	if len(hs) == 0 {
		return "no one"
	}
	return strings.Join(hs, "+")
}
