package bgp

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
)

// Role is what this node announces for its VIPs.
type Role int

const (
	// Withdrawn announces nothing.
	Withdrawn Role = iota
	// Standby announces a worse path while backup (StandbyPrepend extra
	// AS_PATH copies, the worst MED), so the router already knows the
	// next hop when the master's path goes.
	Standby
	// Demoted is the old master's path during a hand-off: as long as the
	// standby's and prepended as standby's, but with the epoch's MED, so
	// it beats a standby path and loses to the new master's.
	Demoted
	// Primary is the master's path.
	Primary
)

func (r Role) String() string {
	switch r {
	case Withdrawn:
		return "withdrawn"
	case Standby:
		return "standby"
	case Demoted:
		return "demoted"
	case Primary:
		return "primary"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// MaxMED is the largest MULTI_EXIT_DISC; a Standby path carries it, and a
// master's derived MED is MaxMED minus its epoch.
const MaxMED = math.MaxUint32

// DefaultStandbyPrepend is how many extra copies of the local AS make a
// Standby or Demoted path worse than a Primary one.
const DefaultStandbyPrepend = 3

// Attrs are the path attributes of one announcement, before GoBGP adds
// the local AS once and fills in an unset next hop.
type Attrs struct {
	ASPath      []uint32 // extra copies of the local AS (prepends)
	MED         uint32
	Communities []uint32
	NextHop     netip.Addr // unspecified (0.0.0.0 or ::): the session's local address
}

// Attributes computes the attributes of route r for role (not
// Withdrawn) at the election epoch.
func Attributes(c *Config, r Route, role Role, epoch uint64) Attrs {
	a := Attrs{Communities: r.Communities, NextHop: c.NextHop4}
	if r.Prefix.Addr().Is6() {
		a.NextHop = c.NextHop6
	}
	if !a.NextHop.IsValid() {
		a.NextHop = netip.IPv4Unspecified()
		if r.Prefix.Addr().Is6() {
			a.NextHop = netip.IPv6Unspecified()
		}
	}
	prepend := c.Prepend
	if role != Primary {
		prepend += c.standbyPrepend()
	}
	for range prepend {
		a.ASPath = append(a.ASPath, c.LocalAS)
	}
	switch {
	case role == Standby:
		a.MED = MaxMED
	case c.MED != nil:
		a.MED = *c.MED
	default:
		a.MED = epochMED(epoch)
	}
	return a
}

// epochMED is MaxMED − epoch, never MaxMED itself (the standby's) and
// never below 0: a later claim has a higher epoch and so a lower, better
// MED. Epochs start at 1 and grow by one a claim; 4 billion claims are out
// of reach.
func epochMED(epoch uint64) uint32 {
	switch {
	case epoch == 0:
		return MaxMED - 1
	case epoch >= MaxMED:
		return 0
	}
	return uint32(MaxMED - epoch)
}

// FormatCommunity writes a standard community (RFC 1997) as AS:VALUE.
func FormatCommunity(c uint32) string { return fmt.Sprintf("%d:%d", c>>16, c&0xFFFF) }
