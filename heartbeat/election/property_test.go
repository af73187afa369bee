package election

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// propertyChecks is how many scenarios rapid plays per property in this
// package unless -rapid.checks or RAPID_CHECKS says otherwise (rapid's own
// default is 100). Measured with TestPropertyCatchesBrokenCores over 130
// seeds: the worst case was 141 scenarios to find the preempting backup
// (mean 21), 104 for the unresolved split brain (mean 20), 75 for the
// lease ignored (mean 12). 600 is four times the worst seen; at a mean of
// about 21 the chance to miss is below e^-28. It costs about 7 s, a minute
// under the race detector on two loaded cores.
const propertyChecks = 600

// checksGiven is set when -rapid.checks or RAPID_CHECKS chose the number
// of scenarios: then every property plays that many.
var checksGiven bool

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	_, env := os.LookupEnv("RAPID_CHECKS")
	checksGiven = set || env
	if !checksGiven {
		if err := flag.Set("rapid.checks", strconv.Itoa(propertyChecks)); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// TestPropertySafetyAndConvergence drives 2 or 3 nodes, with or without a
// witness, through random faults, then heals everything and checks that
// they agree on exactly one master. All along it checks the safety rule
// (network.safety) and that no node in FAULT or MAINTENANCE, or with its
// link down, holds the VIP.
func TestPropertySafetyAndConvergence(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { playScenario(rt, breakage{}) })
}

// playScenario is one random scenario; br is a deliberately broken rule,
// or none.
func playScenario(rt *rapid.T, br breakage) {
	size := rapid.IntRange(2, 3).Draw(rt, "nodes")
	witness := size == 2 && rapid.Bool().Draw(rt, "witness")
	var cfgs []Config
	for i := 0; i < size; i++ {
		name := fmt.Sprintf("n%d", i)
		prio := rapid.IntRange(1, 255).Draw(rt, fmt.Sprintf("prio%d", i))
		c := cfgFor(name, prio, size-1)
		if witness {
			c = witnessCfg(name, prio, false)
		}
		c.Preempt = rapid.Bool().Draw(rt, fmt.Sprintf("preempt%d", i))
		cfgs = append(cfgs, c)
	}
	n := newNetwork(nil, cfgs...)
	n.broken = br
	var w *simWitness
	if witness {
		w = n.attachWitness(simTTL)
	}
	grace := simDeadAfter + simInterval // dead_after plus the claim
	invariant := func() {
		for _, name := range n.names {
			node := n.nodes[name]
			if s := node.m.State(); (s == Fault || s == Maintenance) && node.held {
				rt.Fatalf("%s holds the VIP in %s; log %v", name, s, node.log)
			}
			if !node.link && node.held {
				rt.Fatalf("%s holds the VIP with its link down", name)
			}
		}
		if err := n.safety(witness, grace); err != nil {
			rt.Fatalf("at %s: %v", n.now.Sub(t0), err)
		}
	}
	steps := rapid.IntRange(1, 30).Draw(rt, "steps")
	for i := 0; i < steps; i++ {
		name := n.names[rapid.IntRange(0, size-1).Draw(rt, "node")]
		node := n.nodes[name]
		switch rapid.IntRange(0, 9).Draw(rt, "event") {
		case 0: // cut the path to another node
			other := n.names[(indexOf(n.names, name)+rapid.IntRange(1, size-1).Draw(rt, "other"))%size]
			n.cut[[2]string{name, other}], n.cut[[2]string{other, name}] = true, true
		case 1:
			n.recover()
		case 2:
			if !node.down {
				n.cable(name, !node.link)
			}
		case 3:
			if !node.down {
				n.apply(node, node.m.SetCheck(n.now, "app", rapid.IntRange(0, 100).Draw(rt, "weight"), rapid.Bool().Draw(rt, "fault"), rapid.Bool().Draw(rt, "healthy")))
			}
		case 4:
			if !node.down {
				n.apply(node, node.m.SetMaintenance(n.now, rapid.Bool().Draw(rt, "maint")))
			}
		case 5:
			if !node.down {
				if to, err := node.m.Candidate(n.now, ""); err == nil {
					acts, err := node.m.Release(n.now, to)
					if err != nil {
						rt.Fatalf("release after a good candidate: %v", err)
					}
					n.apply(node, acts)
				}
			}
		case 6: // crash, or restart a crashed node
			if node.down {
				node.m, node.down, node.held = New(cfgs[indexOf(n.names, name)], n.now), false, false
				n.apply(node, node.m.SetLink(n.now, node.link))
			} else {
				node.down = true
			}
		case 7: // freeze and thaw (SIGSTOP/SIGCONT) keep the machine
			node.down = !node.down
		case 8: // the node loses or regains the witness (its uplink)
			if w != nil {
				w.reach[name] = !w.reach[name]
			}
		}
		wait := 800 // ms; sometimes long enough for leases and kernel lifetimes to run out
		if rapid.IntRange(0, 9).Draw(rt, "long") == 0 {
			wait = 6000
		}
		d := time.Duration(rapid.IntRange(1, wait).Draw(rt, "wait")) * time.Millisecond
		for end := n.now.Add(d); n.now.Before(end); {
			n.run(simStep)
			invariant()
		}
	}
	// Heal everything.
	n.recover()
	for i, name := range n.names {
		node := n.nodes[name]
		if w != nil {
			w.reach[name] = true
		}
		if node.down {
			node.m, node.down, node.held = New(cfgs[i], n.now), false, false
		}
		if !node.link {
			n.cable(name, true)
		}
		n.apply(node, node.m.SetLink(n.now, true))
		n.apply(node, node.m.SetCheck(n.now, "app", 10, false, true))
		n.apply(node, node.m.SetMaintenance(n.now, false))
	}
	settle := 6 * time.Second
	if witness {
		settle += simTTL // a lease held by a dead node must expire first
	}
	for end := n.now.Add(settle); n.now.Before(end); {
		n.run(simStep)
		invariant()
	}
	var masters []string
	for _, name := range n.names {
		if n.nodes[name].m.State() == Master {
			masters = append(masters, name)
		}
	}
	if len(masters) != 1 {
		rt.Fatalf("after healing, masters %v; %s", masters, n.states())
	}
	if h := n.holders(); len(h) != 1 || h[0] != masters[0] {
		rt.Fatalf("holders %v, master %v", h, masters)
	}
	for _, name := range n.names {
		st := n.nodes[name].m.Status(n.now)
		for _, p := range st.Peers {
			if !p.Alive || (p.State == Master) != (p.Node == masters[0]) {
				rt.Fatalf("%s sees %s as %s (alive %v); master is %s", name, p.Node, p.State, p.Alive, masters[0])
			}
		}
	}
}

// brokenCores are deliberately broken election rules. The property must
// catch each of them within the number of checks CI runs, or it proves
// nothing.
var brokenCores = []breakage{
	{
		// The copy of the core from issue 13: a backup that outranks the
		// master claims at once instead of asking it to hand over.
		name: "a backup preempts by claiming while the master still holds the VIP",
		step: func(n *network, node *simNode) {
			if m := node.m; m.state == Backup && m.wantMaster {
				m.claim(n.now, CausePreempted, "broken: preempt by claiming")
				n.apply(node, m.flush(n.now))
			}
		},
	},
	{
		name: "a master never resolves a split brain",
		heard: func(to *simNode, h Heard) Heard {
			if to.m.state == Master && h.State == Master {
				h.State = Backup
			}
			return h
		},
	},
	{
		name: "a node with a witness claims and keeps the VIP without the lease",
		step: func(n *network, node *simNode) {
			if m := node.m; m.cfg.Witness && (m.state == Backup || m.state == Master) {
				m.leaseUntil = n.now.Add(time.Hour)
			}
		},
	},
}

// TestPropertyCatchesBrokenCores runs the property as CI does (rapid, the
// package's number of checks, a random seed) against each broken core and
// fails unless rapid finds a violation. It logs after how many scenarios.
func TestPropertyCatchesBrokenCores(t *testing.T) {
	catchBroken(t, playScenario, brokenCores)
}

// catchBroken runs play against each broken rule and fails unless rapid
// finds a violation of every one.
func catchBroken(t *testing.T, play func(*rapid.T, breakage), cores []breakage) {
	// Failing is the point here: no fail files, and little shrinking.
	for name, v := range map[string]string{"rapid.nofailfile": "true", "rapid.shrinktime": "50ms"} {
		old := flag.Lookup(name).Value.String()
		if err := flag.Set(name, v); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = flag.Set(name, old) })
	}
	checks := flag.Lookup("rapid.checks").Value.String()
	for _, br := range cores {
		ft := &failTB{name: t.Name()}
		done := make(chan struct{})
		go func() {
			defer close(done)
			rapid.Check(ft, func(rt *rapid.T) { play(rt, br) })
		}()
		<-done
		if !ft.failed {
			t.Errorf("%s: not caught in %s scenarios", br.name, checks)
			continue
		}
		after := "?"
		if m := failedAfter.FindStringSubmatch(ft.msg); m != nil {
			after = m[1]
		}
		t.Logf("%s: caught after %s of %s scenarios: %s", br.name, after, checks, firstLine(ft.msg))
	}
}

var failedAfter = regexp.MustCompile(`failed after (\d+) tests`)

func firstLine(s string) string {
	if i := strings.Index(s, "\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// failTB is a rapid.TB that records a failure instead of failing the test.
// rapid.Check must run on a goroutine of its own: FailNow ends it.
type failTB struct {
	name   string
	failed bool
	msg    string
}

var _ rapid.TB = (*failTB)(nil)

func (f *failTB) Helper()              {}
func (f *failTB) Name() string         { return f.name }
func (f *failTB) Logf(string, ...any)  {}
func (f *failTB) Log(...any)           {}
func (f *failTB) Skipf(string, ...any) { runtime.Goexit() }
func (f *failTB) Skip(...any)          { runtime.Goexit() }
func (f *failTB) SkipNow()             { runtime.Goexit() }
func (f *failTB) Errorf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
}
func (f *failTB) Error(args ...any) { f.record(fmt.Sprint(args...)) }
func (f *failTB) Fatalf(format string, args ...any) {
	f.record(fmt.Sprintf(format, args...))
	f.FailNow()
}
func (f *failTB) Fatal(args ...any) { f.record(fmt.Sprint(args...)); f.FailNow() }
func (f *failTB) FailNow()          { f.failed = true; runtime.Goexit() }
func (f *failTB) Fail()             { f.failed = true }
func (f *failTB) Failed() bool      { return f.failed }

func (f *failTB) record(msg string) {
	f.failed = true
	if f.msg == "" {
		f.msg = msg
	}
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	panic(name)
}
