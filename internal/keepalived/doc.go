// Package keepalived turns a keepalived.conf into an hbd configuration:
// `hbd import-keepalived` is its command.
//
// It reads the keepalived.conf(5) syntax (keywords and arguments, { blocks },
// comments from # or !, double-quoted strings) and maps the vrrp_instance
// settings of a unicast VRRP (RFC 5798) cluster onto hbd's config fields,
// writing YAML whose comments say which keepalived line each value came
// from. One instance becomes a plain config; several (up to
// config.MaxGroups) become VIP groups, one per instance, sharing the
// heartbeat settings, which the instances must therefore agree on. What
// has no hbd counterpart is an error naming the line and the keyword
// (sync groups, instances that disagree on the interface or the peers, LVS
// virtual servers, multicast without unicast peers, scripts that need a
// shell), or a warning where leaving it out is safe (gratuitous ARP
// tuning, global_defs).
package keepalived
