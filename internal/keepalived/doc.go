// Package keepalived turns a keepalived.conf with one VRRP instance into an
// hbd configuration: `hbd import-keepalived` is its command.
//
// It reads the keepalived.conf(5) syntax (keywords and arguments, { blocks },
// comments from # or !, double-quoted strings) and maps the vrrp_instance
// settings of a unicast VRRP (RFC 5798) pair onto hbd's config fields,
// writing YAML whose comments say which keepalived line each value came
// from. What has no hbd counterpart is an error naming the line and the
// keyword (several VRRP instances, sync groups, LVS virtual servers,
// multicast without unicast peers, scripts that need a shell), or a warning
// where leaving it out is safe (gratuitous ARP tuning, global_defs).
package keepalived
