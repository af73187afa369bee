package bench

import (
	"bytes"
	"io"
	"math"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in    []float64
		capAt float64
		want  Summary
	}{
		{nil, 0, Summary{}},
		{[]float64{3}, 0, Summary{N: 1, Min: 3, Median: 3, Max: 3}},
		{[]float64{5, 1, 3}, 0, Summary{N: 3, Min: 1, Median: 3, Max: 5}},
		{[]float64{4, 1, 2, 3}, 0, Summary{N: 4, Min: 1, Median: 2.5, Max: 4}},
		{[]float64{10000, 10000}, 10000, Summary{N: 2, Min: 10000, Median: 10000, Max: 10000, Capped: true}},
		{[]float64{1, 9999}, 10000, Summary{N: 2, Min: 1, Median: 5000, Max: 9999}},
	} {
		if got := Summarize(tc.in, tc.capAt); got != tc.want {
			t.Errorf("Summarize(%v, %v) = %+v, want %+v", tc.in, tc.capAt, got, tc.want)
		}
	}
	in := []float64{3, 1, 2}
	Summarize(in, 0)
	if !reflect.DeepEqual(in, []float64{3, 1, 2}) {
		t.Errorf("Summarize sorted its input: %v", in)
	}
}

func TestRatio(t *testing.T) {
	if r := Ratio(Summary{N: 1, Median: 30}, Summary{N: 1, Median: 300}); r != 0.1 {
		t.Errorf("ratio = %v, want 0.1", r)
	}
	for _, b := range []Summary{{}, {N: 1, Median: 0}} {
		if r := Ratio(Summary{N: 1, Median: 1}, b); !math.IsNaN(r) {
			t.Errorf("Ratio(_, %+v) = %v, want NaN", b, r)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	in := []Sample{
		{ToolHBD, SettingDefaults, ScenarioCablePull, 1, "gap_ms", 301.25},
		{ToolKeepalived, "advert 0.05s", ScenarioLossSoak, 1, "false_failovers", 0},
		{ToolKeepalived, SettingMatched, ScenarioCost, 1, "cpu_master_pct", 0.0166666},
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, in); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "tool,setting,scenario,run,metric,value\n") {
		t.Errorf("no header: %q", b.String())
	}
	out, err := ReadCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	if _, err := ReadCSV(strings.NewReader("a,b,c,d,e,f\n")); err == nil {
		t.Error("a wrong header was accepted")
	}
	if _, err := ReadCSV(strings.NewReader("tool,setting,scenario,run,metric,value\nhbd,x,y,one,m,1\n")); err == nil {
		t.Error("a bad run number was accepted")
	}
}

func TestTimelineCSVRoundTrip(t *testing.T) {
	in := []TimelinePoint{{ToolHBD, SettingDefaults, -5, "pc01"}, {ToolHBD, SettingDefaults, 10.5, ""}, {ToolKeepalived, SettingDefaults, 3000.125, "pc02"}}
	var b bytes.Buffer
	if err := WriteTimelineCSV(&b, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadTimelineCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

// fixture is a small but complete set of samples.
func fixture() []Sample {
	var s []Sample
	add := func(tool, set, sc, m string, vs ...float64) {
		for i, v := range vs {
			s = append(s, Sample{tool, set, sc, i + 1, m, v})
		}
	}
	add(ToolHBD, SettingDefaults, ScenarioCablePull, "gap_ms", 300, 310, 305)
	add(ToolKeepalived, SettingDefaults, ScenarioCablePull, "gap_ms", 3000, 3500, 3300)
	add(ToolHBD, SettingMatched, ScenarioCablePull, "gap_ms", 320, 330)
	add(ToolKeepalived, SettingMatched, ScenarioCablePull, "gap_ms", 300, 310)
	add(ToolHBD, SettingFastest, ScenarioCablePull, "gap_ms", 60, 70)
	add(ToolKeepalived, SettingFastest, ScenarioCablePull, "gap_ms", 150, 160)
	add(ToolHBD, SettingMatched, ScenarioSwitchover, "failed_new", 0, 0)
	add(ToolKeepalived, SettingMatched, ScenarioSwitchover, "failed_new", 12, 11)
	add(ToolHBD, SettingMatched, ScenarioCrash, "dead_host_vip_ms", 1700, 1800)
	add(ToolKeepalived, SettingMatched, ScenarioCrash, "dead_host_vip_ms", 10000, 10000)
	add(ToolKeepalived, SettingMatched, ScenarioCrash, "dead_host_vip_cap_ms", 10000)
	add(ToolHBD, "cost 10ms", ScenarioCost, "cpu_backup_pct", 0.4)
	add(ToolKeepalived, "cost 10ms", ScenarioCost, "cpu_backup_pct", 0.05)
	add(ToolHBD, "cost 5ms", ScenarioCost, "cpu_master_pct", 0.8)
	add(ToolKeepalived, "cost 5ms", ScenarioCost, "cpu_master_pct", 0.3)
	add(ToolHBD, "cost 5ms", ScenarioCost, "rss_master_mb", 14)
	add(ToolHBD, "cost 5ms", ScenarioCost, "rss_backup_mb", 16)
	add(ToolHBD, SettingDefaults, "config", "interval_ms", 50)
	add(ToolHBD, SettingDefaults, "config", "detect_ms", 300)
	add(ToolKeepalived, SettingDefaults, "config", "interval_ms", 1000)
	add(ToolKeepalived, SettingDefaults, "config", "detect_ms", 3609)
	add(ToolKeepalived, SettingDefaults, "config", "vrrp_version", 2)
	add(ToolKeepalived, "advert 0.01s", ScenarioLossSoak, "false_failovers", 1)
	add(ToolKeepalived, "advert 0.01s", ScenarioLossSoak, "observed_s", 12.5)
	add(ToolHBD, SettingDefaults, ScenarioProfile, "count", 20)
	add(ToolHBD, SettingDefaults, ScenarioProfile, "detect_mean_ms", 290)
	add(ToolHBD, SettingDefaults, ScenarioProfile, "total_mean_ms", 291)
	return s
}

func seen(m map[string]*bool, k string) bool { _, ok := m[k]; return ok }

func TestEvaluateTargets(t *testing.T) {
	got := map[string]*bool{}
	for _, r := range Evaluate(fixture()) {
		if k := r.Setting + "/" + r.Metric; !seen(got, k) {
			got[k] = r.Met // the first row of the setting with the metric (the pair's, not the three nodes')
		}
	}
	for key, want := range map[string]string{
		"defaults/gap_ms":          "yes",  // 305 ≤ 3300/10
		"matched/gap_ms":           "no",   // 325 > 305
		"fastest/gap_ms":           "yes",  // 65 ≤ 155/2
		"matched/failed_new":       "yes",  // hbd 0
		"matched/failed_keepalive": "none", // no data
		"matched/dead_host_vip_ms": "yes",
		"cost 10ms/cpu_backup_pct": "no",  // 0.4 > 0.05
		"cost 5ms/cpu_master_pct":  "yes", // 0.8% ≤ 1% of a core, whatever keepalived costs
		"cost 5ms/rss_master_mb":   "yes",
		"cost 5ms/rss_backup_mb":   "no",   // 16 > 15 MB
		"matched/failed_probes":    "none", // no target
	} {
		m := got[key]
		s := "none"
		if m != nil {
			s = map[bool]string{true: "yes", false: "no"}[*m]
		}
		if s != want {
			t.Errorf("%s: met = %s, want %s", key, s, want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, fixture()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| figure", "300 / 305 / 310", "3000 / 3300 / 3500", "0.092",
		"**MISSED**", "≥10000 / ≥10000 / ≥10000", "hbd ≤ 1/10 × keepalived",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(rowDefs(crashCapMS))+2 {
		t.Errorf("%d lines, want %d rows + header + rule", len(lines), len(rowDefs(crashCapMS)))
	}
	for _, l := range lines {
		if len([]rune(l)) != len([]rune(lines[0])) {
			t.Errorf("ragged line %q", l)
		}
	}
	for _, fn := range []func(io.Writer, []Sample) error{WriteSettings, WriteLossLadder, WriteProfile} {
		b.Reset()
		if err := fn(&b, fixture()); err != nil {
			t.Fatal(err)
		}
		if strings.Count(b.String(), "\n") < 3 {
			t.Errorf("short table:\n%s", b.String())
		}
	}
}

func TestFmtNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 12: "12", 0.456: "0.46", 12.34: "12.3", 3609.4: "3609", math.NaN(): "—"} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestKeepalivedRender(t *testing.T) {
	c := KeepalivedConf{
		RouterID: "pc01", Interface: "eth0", Priority: 150,
		Self:   netip.MustParseAddr("198.51.100.11"),
		Peers:  []netip.Addr{netip.MustParseAddr("198.51.100.12")},
		VIP:    netip.MustParsePrefix("198.51.100.10/24"),
		Timing: KeepalivedTiming{Version: 3, Advert: 50 * time.Millisecond},
	}
	got, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"router_id pc01", "vrrp_version 3", "state BACKUP", "interface eth0", "virtual_router_id 51",
		"priority 150", "advert_int 0.05", "unicast_src_ip 198.51.100.11", "unicast_peer {\n        198.51.100.12\n    }",
		"198.51.100.10/24 dev eth0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "{") != strings.Count(got, "}") {
		t.Errorf("unbalanced braces:\n%s", got)
	}
	c.Timing = KeepalivedTiming{Version: 2, Advert: time.Second}
	if got, err := c.Render(); err != nil || !strings.Contains(got, "advert_int 1\n") || !strings.Contains(got, "vrrp_version 2") {
		t.Errorf("VRRPv2 defaults: %v\n%s", err, got)
	}
	for name, bad := range map[string]func(*KeepalivedConf){
		"v2 sub-second": func(c *KeepalivedConf) { c.Timing = KeepalivedTiming{Version: 2, Advert: 100 * time.Millisecond} },
		"v4":            func(c *KeepalivedConf) { c.Timing.Version = 4 },
		"5ms advert":    func(c *KeepalivedConf) { c.Timing = KeepalivedTiming{Version: 3, Advert: 5 * time.Millisecond} },
		"priority 255":  func(c *KeepalivedConf) { c.Priority = 255 },
		"no peers":      func(c *KeepalivedConf) { c.Peers = nil },
		"no VIP":        func(c *KeepalivedConf) { c.VIP = netip.Prefix{} },
	} {
		c2 := c
		c2.Timing = KeepalivedTiming{Version: 3, Advert: 100 * time.Millisecond}
		bad(&c2)
		if _, err := c2.Render(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMasterDown(t *testing.T) {
	for _, tc := range []struct {
		t    KeepalivedTiming
		prio int
		want time.Duration
	}{
		{KeepalivedTiming{2, time.Second}, 100, 3*time.Second + 609375*time.Microsecond},
		{KeepalivedTiming{3, 100 * time.Millisecond}, 100, 360937500 * time.Nanosecond},
		{KeepalivedTiming{3, 10 * time.Millisecond}, 100, 36093750 * time.Nanosecond},
	} {
		if got := tc.t.MasterDown(tc.prio); got != tc.want {
			t.Errorf("%v MasterDown(%d) = %v, want %v", tc.t, tc.prio, got, tc.want)
		}
	}
	if hbdMatched.DeadAfter != 361*time.Millisecond || hbdMatched.Interval != kaMatched.Advert {
		t.Errorf("matched hbd timing %v does not match keepalived's %v", hbdMatched, kaMatched)
	}
}

func TestKeepalivedArgs(t *testing.T) {
	got := strings.Join(KeepalivedArgs("/usr/sbin/keepalived", "/d/k.conf", "/d/k.pid", "/d/v.pid"), " ")
	want := "/usr/sbin/keepalived -n -l -G -P -f /d/k.conf -p /d/k.pid -r /d/v.pid"
	if got != want {
		t.Errorf("args %q, want %q", got, want)
	}
}

func TestParseProc(t *testing.T) {
	stat := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 17 23 0 0 20 0 9 0 100 12345678 3000 18446744073709551615"
	if got, err := parseStatCPU(stat); err != nil || got != 40 {
		t.Errorf("parseStatCPU = %d, %v; want 40", got, err)
	}
	if _, err := parseStatCPU("12 (x) S 1 2"); err == nil {
		t.Error("short stat accepted")
	}
	status := "Name:\thbd\nVmPeak:\t 1000 kB\nVmHWM:\t   16384 kB\nVmRSS:\t 12000 kB\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t3\n"
	if got, err := parseVmHWM(status); err != nil || got != 16384 {
		t.Errorf("parseVmHWM = %d, %v; want 16384", got, err)
	}
	if got, err := parseCtxSwitches(status); err != nil || got != 123 {
		t.Errorf("parseCtxSwitches = %d, %v; want 123", got, err)
	}
	if _, err := parseVmHWM("Name:\tx\n"); err == nil {
		t.Error("status without VmHWM accepted")
	}
	rollup := "55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:               10240 kB\nPss:                6144 kB\nPss_Anon:           4096 kB\n"
	if got, err := parsePss(rollup); err != nil || got != 6144 {
		t.Errorf("parsePss = %d, %v; want 6144", got, err)
	}
	if _, err := parsePss("Rss: 1 kB\n"); err == nil {
		t.Error("smaps_rollup without Pss accepted")
	}
}

// results builds probe results: each entry is start offset, duration (ms),
// node ("" = failed).
func results(t0 time.Time, rows ...any) lab.ProbeResults {
	var rs lab.ProbeResults
	for i := 0; i < len(rows); i += 3 {
		r := lab.ProbeResult{
			Start:    t0.Add(time.Duration(rows[i].(int)) * time.Millisecond),
			Duration: time.Duration(rows[i+1].(int)) * time.Millisecond,
		}
		if n := rows[i+2].(string); n != "" {
			r.Status, r.ServedBy = 200, n
		} else {
			r.Err = "timeout"
		}
		rs = append(rs, r)
	}
	return rs
}

func TestOutage(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rs := results(t0,
		-10, 1, "pc01", // ends -9
		-5, 1, "pc01", // ends -4
		-1, 2, "pc01", // in flight at t0, ends +1: still an answer
		0, 150, "", // ends 150
		5, 150, "", // ends 155
		150, 150, "", // ends 300, after the outage: started in it, so it counts
		290, 1, "pc02", // ends 291: first from the standby
		292, 150, "", // started after the outage: not one of its failures
		295, 1, "pc02",
		300, 1, "pc01", // a late straggler after recovery is ignored
	)
	g, ok := outage(rs, t0, "pc02")
	if !ok {
		t.Fatal("no outage")
	}
	if g.Duration() != 290*time.Millisecond || g.Failures != 3 {
		t.Errorf("outage %v with %d failures, want 290ms with 3 (every failed request that started in it)", g.Duration(), g.Failures)
	}
	if _, ok := outage(results(t0, -5, 1, "pc01", 5, 1, "pc01"), t0, "pc02"); ok {
		t.Error("outage found although the standby never answered")
	}
	if n := failuresBetween(rs, t0, time.Time{}); n != 4 {
		t.Errorf("failuresBetween = %d, want 4", n)
	}
	if d := longestGapAfter(rs, t0); d != 290*time.Millisecond {
		t.Errorf("longestGapAfter = %v, want 290ms", d)
	}
	f, ok := firstGoodFrom(rs, t0, "pc02")
	if !ok || f.End() != t0.Add(291*time.Millisecond) {
		t.Errorf("firstGoodFrom = %v, %v", f.End().Sub(t0), ok)
	}
}

func TestTimelinePointsAndMedianRun(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pts := timelinePoints(ToolHBD, SettingDefaults, results(t0, 10, 1, "", -5, 1, "pc01", 20, 1, "pc02"), t0)
	want := []TimelinePoint{{ToolHBD, SettingDefaults, -5, "pc01"}, {ToolHBD, SettingDefaults, 10, ""}, {ToolHBD, SettingDefaults, 20, "pc02"}}
	if !reflect.DeepEqual(pts, want) {
		t.Errorf("points %+v, want %+v", pts, want)
	}
	runs := []timelineRun{{gap: 3}, {gap: 1}, {gap: 2}, {gap: 4}}
	if m, ok := medianRun(runs); !ok || m.gap != 2 {
		t.Errorf("medianRun = %v, %v; want gap 2", m.gap, ok)
	}
	if _, ok := medianRun(nil); ok {
		t.Error("medianRun of nothing")
	}
}

func TestStandbyHeld(t *testing.T) {
	s := lab.HolderSamples{
		{Holders: []string{"pc01"}}, {Holders: []string{"pc01", "pc02"}}, {Holders: []string{"pc02"}},
		{Holders: []string{"pc01"}}, {Holders: []string{"pc02"}},
	}
	if n := standbyHeld(s); n != 2 {
		t.Errorf("standbyHeld = %d, want 2", n)
	}
}

func TestParsePhases(t *testing.T) {
	text := `# HELP hbd_failover_phase_seconds Failover phases
# TYPE hbd_failover_phase_seconds histogram
hbd_failover_phase_seconds_bucket{phase="detect",le="0.1"} 0
hbd_failover_phase_seconds_sum{phase="detect"} 6.02
hbd_failover_phase_seconds_count{phase="detect"} 20
hbd_failover_phase_seconds_sum{phase="claim"} 0.01
hbd_failover_phase_seconds_count{phase="claim"} 25
hbd_other_sum{phase="x"} 1
`
	got := parsePhases(text)
	want := map[string]phaseStats{"detect": {6.02, 20}, "claim": {0.01, 25}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsePhases = %+v, want %+v", got, want)
	}
}

func TestPlots(t *testing.T) {
	var b bytes.Buffer
	if err := PlotFailover(&b, fixture()); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
		t.Error("failover plot is not a PNG")
	}
	if err := PlotFailover(io.Discard, nil); err == nil {
		t.Error("a box plot of nothing")
	}
	b.Reset()
	pts := []TimelinePoint{
		{ToolHBD, SettingDefaults, -10, "pc01"}, {ToolHBD, SettingDefaults, 5, ""}, {ToolHBD, SettingDefaults, 300, "pc02"},
		{ToolKeepalived, SettingDefaults, -10, "pc01"}, {ToolKeepalived, SettingDefaults, 3000, "pc02"},
	}
	if err := PlotTimeline(&b, pts); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
		t.Error("timeline plot is not a PNG")
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--smoke", "--bin", "/x/hbd"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Runs != 2 || o.Soak != 10*time.Second || o.Cost != 5*time.Second || o.Out != "docs/benchmarks" || o.Bin != "/x/hbd" || len(o.Settings) != 4 {
		t.Errorf("smoke options %+v", o)
	}
	o, err = parseFlags([]string{"--smoke", "--runs", "3", "--settings", "matched", "--bin", "hbd"}, io.Discard)
	if err != nil || o.Runs != 3 || !reflect.DeepEqual(o.Settings, []string{"matched"}) || !filepath.IsAbs(o.Bin) {
		t.Errorf("options %+v, %v", o, err)
	}
	if o, err := parseFlags([]string{"--replot"}, io.Discard); err != nil || !o.Replot {
		t.Errorf("--replot without --bin: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"--runs", "0"}, {"--settings", "fast"}, {"extra"}, {"--soak", "-1s"}, {"--smoke"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestHBDDefaultTiming(t *testing.T) {
	d, err := hbdDefaultTiming()
	if err != nil {
		t.Fatal(err)
	}
	if d.Interval <= 0 || d.DeadAfter < 2*d.Interval {
		t.Errorf("hbd defaults %v", d)
	}
}
