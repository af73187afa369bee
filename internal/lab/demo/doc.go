// Package demo plays hbd's failover story — the `hbd-lab` command — in a
// throw-away lab of network namespaces and narrates it with timestamps.
//
// Run builds the lab (hosts pc01, pc02, redis, client), starts the real
// `hbd run` and `hbd webapp` on pc01 and pc02 and a real redis-server, and
// plays six scenarios while the client sends a request through the VIP every
// 10 ms on a new connection (an open loop: a hung request holds back no
// later one) and the VIP's holders are followed from address events:
//
//  1. kill -9 pc01's web app: pc02 serves, the session saved on pc01 intact;
//  2. restart it: pc01 preempts, pc02 hands the VIP back;
//  3. pull pc01's cable: pc02 serves;
//  4. plug it back: pc01 takes the VIP back by handover;
//  5. `hbd handover` pc01 → pc02;
//  6. update pc01 to v2 and hand back: answers carry v2.
//
// Each scenario gets a report (who served before and after, the longest gap
// between good responses, failed requests, two holders or not, a timeline of
// 10 ms buckets) and a verdict by Judge; a summary table ends the run.
//
// The pure parts — Judge, the report and timeline formatting, the state file —
// are unit-tested; the runner needs root and is tested by running it whole.
//
// With Options.Keep the lab stays up after the story, its processes detached,
// and a state file (StateFile in the lab's directory under StateDir) lists
// the exact namespace names and PIDs that Down later removes. Forward serves
// the page on a loopback port of the host by dialling the VIP from inside
// the client namespace.
package demo
