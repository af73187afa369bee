// Package bench measures hbd against keepalived side by side in the lab's
// network namespaces: `hbd-lab bench` (Main).
//
// Each tool gets its own lab — the same topology, the same web app
// (`hbd webapp`) on pc01 and pc02 behind the VIP, Redis, a client — with hbd
// (lab/cluster) in one and keepalived (VRRP, unicast, its config written
// into the lab's directory) in the other. Runs alternate between the two
// (A B A B) so drift on a shared machine hits both alike.
//
// Scenarios, per tool:
//
//   - cable pull on the master → first good HTTP response through the VIP,
//     at each tool's defaults, at a matched 100 ms heartbeat with the same
//     detection time, and at each tool's fastest setting that survives a
//     soak under 5% loss (a ladder of candidates, fastest first);
//   - fail-back: the cable plugged in again, holders followed from address events;
//   - planned switchover (hbd handover; keepalived stopped with SIGTERM)
//     under a new-connection and a keep-alive request stream;
//   - kill -9 of the master's daemon: time to the standby's first answer,
//     and how long the dead host keeps the VIP;
//   - idle cost: CPU (utime + stime of the process tree), context switches
//     and peak RSS (VmHWM).
//
// The client opens a new connection every 5 ms: a fleet of lab.Probers,
// each one request at a time with a 150 ms timeout, started 5 ms apart.
//
// The pure parts — statistics, the table and its targets, CSV, keepalived
// configs, /proc parsing, outage analysis, plots — are unit-tested without
// namespaces; TestSmoke runs Main --smoke as root.
package bench
