// Package bgp announces VIPs as host routes (/32 and /128) to upstream
// routers over BGP-4 (RFC 4271), with GoBGP embedded as a library: the
// second announcer beside the vip package's L2 one, for routed networks
// where no two hosts share a segment.
//
// A Speaker holds one eBGP session per configured neighbour and a role per
// node: Primary while this node is master, Demoted during a hand-off
// (announce-before-withdraw: the new master's path wins, this one keeps
// the traffic that is still on its way), Standby while backup when standby
// announcing is on, Withdrawn otherwise. The addresses themselves live on
// a dummy interface and are held by a vip.Manager; this package only
// speaks BGP. It does not decide who is master: the election core does.
//
// Path attributes (Attributes, a pure function):
//   - ORIGIN IGP; AS_PATH: the local AS, once by GoBGP for every eBGP
//     neighbour plus Config.Prepend copies (Config.StandbyPrepend more
//     for Demoted and Standby paths);
//   - MULTI_EXIT_DISC (RFC 4271 §5.1.4): fixed when configured, else
//     derived from the election epoch (MaxMED − epoch), so that among
//     paths of equal length the newest master's is best: a dead master
//     whose session has not yet timed out does not keep the traffic;
//   - COMMUNITIES (RFC 1997) per route;
//   - NEXT_HOP / MP_REACH_NLRI (RFC 4760): the configured next hop of
//     the route's family, else the session's local address.
package bgp
