package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in YAML as Go duration text ("50ms",
// "2s"). A bare number is refused: a unit must always be written.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a duration, naming the line on error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "want a duration such as 50ms or 2s")
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		if _, nerr := strconv.ParseFloat(n.Value, 64); nerr == nil {
			return lineErr(n, "duration %q has no unit: write e.g. %sms or %ss", n.Value, n.Value, n.Value)
		}
		return lineErr(n, "invalid duration %q: want e.g. 50ms or 2s", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Prefix is an address with its prefix length, written in CIDR form
// ("198.51.100.10/24", "2001:db8::10/64").
type Prefix struct{ netip.Prefix }

// UnmarshalYAML parses CIDR text, naming the line on error.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "want an address in CIDR form such as 198.51.100.10/24")
	}
	v, err := netip.ParsePrefix(strings.TrimSpace(n.Value))
	if err != nil {
		return lineErr(n, "bad CIDR %q: want an address with its prefix length, e.g. 198.51.100.10/24 or 2001:db8::10/64", n.Value)
	}
	p.Prefix = v
	return nil
}

// MarshalYAML writes the prefix in CIDR form.
func (p Prefix) MarshalYAML() (any, error) { return p.Prefix.String(), nil }

// Endpoint is an IP address with an optional port ("198.51.100.12",
// "198.51.100.12:8707", "[2001:db8::12]:8707"). A missing port is 0 and is
// filled in from the listen port.
type Endpoint struct{ netip.AddrPort }

// UnmarshalYAML parses an address with an optional port.
func (e *Endpoint) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n, "want an address such as 198.51.100.12 or 198.51.100.12:8707")
	}
	v, err := ParseEndpoint(n.Value)
	if err != nil {
		return lineErr(n, "%v", err)
	}
	*e = v
	return nil
}

// MarshalYAML writes the endpoint as address:port.
func (e Endpoint) MarshalYAML() (any, error) { return e.String(), nil }

func (e Endpoint) String() string {
	if e.Port() == 0 {
		return e.Addr().String()
	}
	return e.AddrPort.String()
}

// ParseEndpoint parses "addr", "addr:port" or "[v6]:port".
func ParseEndpoint(s string) (Endpoint, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return Endpoint{ap}, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return Endpoint{netip.AddrPortFrom(a, 0)}, nil
	}
	return Endpoint{}, fmt.Errorf("bad address %q: want an IP address with an optional port, e.g. 198.51.100.12:8707 or [2001:db8::12]:8707", s)
}

// lineErr is an error raised while decoding one YAML node. It is a
// *yaml.TypeError so that the decoder goes on and reports every bad field,
// not only the first; Load turns it back into a FieldError.
func lineErr(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, fmt.Sprintf(format, args...))}}
}
