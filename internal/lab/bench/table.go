package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// target is a goal a row of the table is checked against.
type target struct {
	text   string
	needsK bool                    // the check compares with keepalived
	met    func(h, k Summary) bool // h: hbd, k: keepalived
}

// rowDef is one line of the results table: a metric of one scenario at one
// setting, for both tools.
type rowDef struct {
	figure   string
	setting  string
	scenario string
	metric   string
	unit     string
	capAt    float64 // values at the cap are shown as "≥cap"
	target   *target
}

// crashCapMS is the default cap on how long the crashed host's VIP is
// watched, in ms; Options.CrashCap overrides it. The table reads the cap from
// the samples (scenario crash, metric dead_host_vip_cap_ms).
const crashCapMS = 10000

func ratioAtMost(f float64, text string) *target {
	return &target{text: text, needsK: true, met: func(h, k Summary) bool { return h.Median <= f*k.Median }}
}

func hbdMaxAtMost(v float64, text string) *target {
	return &target{text: text, met: func(h, _ Summary) bool { return h.Max <= v }}
}

// rowDefs lists the table's rows in order.
func rowDefs(capMS float64) []rowDef {
	rows := []rowDef{
		{"cable pull → first good response", SettingDefaults, ScenarioCablePull, "gap_ms", "ms", 0, ratioAtMost(0.1, "hbd ≤ 1/10 × keepalived")},
		{"  failed probes", SettingDefaults, ScenarioCablePull, "failed_probes", "", 0, nil},
		{"BGP mode cable pull → first good response (hbd only)", SettingDefaults, ScenarioBGPCablePull, "gap_ms", "ms", 0, nil},
		{"  failed probes", SettingDefaults, ScenarioBGPCablePull, "failed_probes", "", 0, nil},
		{"cable pull → first good response", SettingMatched, ScenarioCablePull, "gap_ms", "ms", 0, ratioAtMost(1, "hbd ≤ keepalived")},
		{"  failed probes", SettingMatched, ScenarioCablePull, "failed_probes", "", 0, nil},
		{"cable pull → first good response", SettingFastest, ScenarioCablePull, "gap_ms", "ms", 0, ratioAtMost(0.5, "hbd ≤ 1/2 × keepalived")},
		{"  failed probes", SettingFastest, ScenarioCablePull, "failed_probes", "", 0, nil},
		{"planned switchover: failed requests, new connections", SettingMatched, ScenarioSwitchover, "failed_new", "", 0, hbdMaxAtMost(0, "hbd 0")},
		{"planned switchover: failed requests, keep-alive", SettingMatched, ScenarioSwitchover, "failed_keepalive", "", 0, hbdMaxAtMost(0, "hbd 0")},
		{"planned switchover: longest gap, new connections", SettingMatched, ScenarioSwitchover, "gap_new_ms", "ms", 0, nil},
		{"planned switchover: longest gap, keep-alive", SettingMatched, ScenarioSwitchover, "gap_keepalive_ms", "ms", 0, nil},
		{"planned handovers under load (half hbd handover, half SIGTERM)", SettingDefaults, ScenarioHandovers, "handovers", "", 0, nil},
		{"  failed requests", SettingDefaults, ScenarioHandovers, "failed_requests", "", 0, hbdMaxAtMost(0, "hbd 0")},
		{"  max concurrent holders (address events)", SettingDefaults, ScenarioHandovers, "max_holders", "", 0, hbdMaxAtMost(1, "hbd never 2")},
		{"three nodes: cable pull → first good response", SettingDefaults, ScenarioThreeCablePull, "gap_ms", "ms", 0, nil},
		{"  failed probes", SettingDefaults, ScenarioThreeCablePull, "failed_probes", "", 0, nil},
		{"three nodes, 2/1 partition: cut-off master releases after", SettingDefaults, ScenarioPartition, "release_ms", "ms", 0, hbdMaxAtMost(300, "hbd ≤ dead_after")},
		{"  → first good response from the majority", SettingDefaults, ScenarioPartition, "gap_ms", "ms", 0, nil},
		{"  both sides hold the VIP for", SettingDefaults, ScenarioPartition, "double_holder_ms", "ms", 0, hbdMaxAtMost(0, "hbd 0")},
		{"fail-back: max concurrent holders", SettingMatched, ScenarioFailback, "max_holders", "", 0, hbdMaxAtMost(1, "hbd never 2")},
		{"fail-back: two holders for", SettingMatched, ScenarioFailback, "double_holder_ms", "ms", 0, hbdMaxAtMost(0, "hbd 0")},
		{"kill -9 master daemon → first answer from the standby", SettingMatched, ScenarioCrash, "failover_ms", "ms", 0, nil},
		{"  failed probes", SettingMatched, ScenarioCrash, "failed_probes", "", 0, nil},
		{"kill -9: dead host keeps the VIP for", SettingMatched, ScenarioCrash, "dead_host_vip_ms", "ms", capMS, hbdMaxAtMost(3000, "hbd ≤ 3 s")},
	}
	return append(rows, costRows()...)
}

// costRows are the idle-cost rows, per CostSettings: CPU at most
// keepalived's at the same heartbeat, and at most 1% of a core at hbd's
// 5 ms default (keepalived cannot beat that fast); RSS at most 15 MB.
func costRows() []rowDef {
	var rows []rowDef
	for i, set := range CostSettings {
		cpu := ratioAtMost(1, "hbd ≤ keepalived")
		if i == 0 {
			cpu = hbdMaxAtMost(1, "hbd ≤ 1% of a core")
		}
		for _, role := range []string{"master", "backup"} {
			rows = append(rows,
				rowDef{"idle CPU as " + role, set, ScenarioCost, "cpu_" + role + "_pct", "% core", 0, cpu},
				rowDef{"  context switches (wakeups) as " + role, set, ScenarioCost, "wakeups_" + role + "_per_s", "/s", 0, nil})
		}
	}
	for _, role := range []string{"master", "backup"} {
		set := CostSettings[0]
		rows = append(rows,
			rowDef{"peak RSS as " + role + " (VmHWM)", set, ScenarioCost, "rss_" + role + "_mb", "MB", 0, hbdMaxAtMost(15, "hbd ≤ 15 MB")},
			rowDef{"PSS as " + role, set, ScenarioCost, "pss_" + role + "_mb", "MB", 0, nil})
	}
	return rows
}

// RowResult is one evaluated row, for callers that want the verdicts.
type RowResult struct {
	Figure, Setting, Metric string
	HBD, Keepalived         Summary
	Ratio                   float64
	Target                  string
	Met                     *bool // nil: no target or no data
}

// Evaluate computes every row of the results table.
func Evaluate(samples []Sample) []RowResult {
	capMS := float64(crashCapMS)
	if v := Values(samples, ToolKeepalived, SettingMatched, ScenarioCrash, "dead_host_vip_cap_ms"); len(v) > 0 {
		capMS = v[0]
	}
	var out []RowResult
	for _, d := range rowDefs(capMS) {
		h := Summarize(Values(samples, ToolHBD, d.setting, d.scenario, d.metric), d.capAt)
		k := Summarize(Values(samples, ToolKeepalived, d.setting, d.scenario, d.metric), d.capAt)
		r := RowResult{Figure: d.figure, Setting: d.setting, Metric: d.metric, HBD: h, Keepalived: k, Ratio: Ratio(h, k)}
		if k.Capped && !h.Capped && k.N > 0 && h.N > 0 {
			r.Ratio = math.NaN() // keepalived's median is a lower bound only
			if h.Max < k.Min {
				r.Ratio = -1 // shown as "< h/cap"
			}
		}
		if d.target != nil {
			r.Target = d.target.text
			if h.N > 0 && (k.N > 0 || !d.target.needsK) {
				met := d.target.met(h, k)
				r.Met = &met
			}
		}
		out = append(out, r)
	}
	return out
}

// fmtNum prints a value with a precision that suits its size.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a == math.Trunc(a) && a < 1e6:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtSummary(s Summary, capAt float64) string {
	if s.N == 0 {
		return "—"
	}
	f := func(v float64) string {
		if capAt > 0 && v >= capAt {
			return "≥" + fmtNum(capAt)
		}
		return fmtNum(v)
	}
	return fmt.Sprintf("%s / %s / %s", f(s.Min), f(s.Median), f(s.Max))
}

// WriteTable writes the results table (Markdown, readable as plain text):
// per row the min / median / max of each tool, the ratio of the medians
// (hbd / keepalived), the target and whether hbd met it.
func WriteTable(w io.Writer, samples []Sample) error {
	capMS := float64(crashCapMS)
	if v := Values(samples, ToolKeepalived, SettingMatched, ScenarioCrash, "dead_host_vip_cap_ms"); len(v) > 0 {
		capMS = v[0]
	}
	defs := rowDefs(capMS)
	rows := [][]string{{"figure", "setting", "unit", "runs", "hbd min / med / max", "keepalived min / med / max", "hbd/ka", "target", "met"}}
	for i, r := range Evaluate(samples) {
		d := defs[i]
		ratio := fmtRatio(r.Ratio)
		if r.Ratio == -1 {
			ratio = "< " + fmtNum(r.HBD.Max/capMS)
		}
		met := "—"
		if r.Met != nil {
			met = "yes"
			if !*r.Met {
				met = "**MISSED**"
			}
		}
		runs := fmt.Sprintf("%d+%d", r.HBD.N, r.Keepalived.N)
		rows = append(rows, []string{r.Figure, r.Setting, d.unit, runs, fmtSummary(r.HBD, d.capAt), fmtSummary(r.Keepalived, d.capAt), ratio, orDash(r.Target), met})
	}
	return writeMarkdown(w, rows)
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "—"
	}
	if r < 0.1 {
		return strconv.FormatFloat(r, 'f', 3, 64)
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// WriteSettings writes the timing each tool ran with at each setting, from
// the samples of scenario "config".
func WriteSettings(w io.Writer, samples []Sample) error {
	rows := [][]string{{"setting", "tool", "heartbeat / advert interval", "declared dead after", "notes"}}
	for _, set := range append([]string{SettingDefaults, SettingMatched, SettingFastest}, CostSettings...) {
		for _, tool := range []string{ToolHBD, ToolKeepalived} {
			iv := Values(samples, tool, set, "config", "interval_ms")
			dd := Values(samples, tool, set, "config", "detect_ms")
			if len(iv) == 0 || len(dd) == 0 {
				continue
			}
			note := ""
			if tool == ToolKeepalived {
				if v := Values(samples, tool, set, "config", "vrrp_version"); len(v) > 0 {
					note = fmt.Sprintf("VRRPv%d, master down = 3 × advert + skew", int(v[0]))
				}
			} else {
				note = "dead_after"
			}
			if v := Values(samples, tool, set, "config", "survived_loss"); len(v) > 0 && v[0] == 0 {
				note += "; no candidate survived the loss soak: slowest candidate used"
			}
			rows = append(rows, []string{set, tool, fmtNum(iv[0]) + " ms", fmtNum(dd[0]) + " ms", note})
		}
	}
	return writeMarkdown(w, rows)
}

// WriteLossLadder writes the loss soak: per tool and candidate, the
// false failovers seen and how long the soak ran.
func WriteLossLadder(w io.Writer, samples []Sample) error {
	rows := [][]string{{"tool", "candidate", "declared dead after", "soak", "false failovers", "survived"}}
	type key struct{ tool, setting string }
	var keys []key
	for _, s := range samples {
		k := key{s.Tool, s.Setting}
		if s.Scenario == ScenarioLossSoak && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		ff := Values(samples, k.tool, k.setting, ScenarioLossSoak, "false_failovers")
		obs := Values(samples, k.tool, k.setting, ScenarioLossSoak, "observed_s")
		det := Values(samples, k.tool, k.setting, ScenarioLossSoak, "detect_ms")
		if len(ff) == 0 || len(obs) == 0 {
			continue
		}
		d := "—"
		if len(det) > 0 {
			d = fmtNum(det[0]) + " ms"
		}
		ok := "yes"
		if ff[0] > 0 {
			ok = "no"
		}
		rows = append(rows, []string{k.tool, k.setting, d, fmtNum(obs[0]) + " s", fmtNum(ff[0]), ok})
	}
	return writeMarkdown(w, rows)
}

// profilePhases are the phase labels of hbd_failover_phase_seconds, in
// the order a failover goes through them; "total" spans them all.
var profilePhases = []string{"detect", "claim", "add", "announce", "total"}

// WriteProfile writes hbd's failover phases (means from its
// hbd_failover_phase_seconds histogram on the claiming node).
func WriteProfile(w io.Writer, samples []Sample) error {
	var phases []string
	for _, p := range profilePhases {
		for _, s := range samples {
			if s.Tool == ToolHBD && s.Scenario == ScenarioProfile && s.Metric == p+"_mean_ms" {
				phases = append(phases, p)
				break
			}
		}
	}
	head := []string{"setting", "failovers"}
	for _, p := range phases {
		head = append(head, p+" (mean ms)")
	}
	rows := [][]string{head}
	for _, set := range []string{SettingDefaults, SettingMatched, SettingFastest} {
		n := Values(samples, ToolHBD, set, ScenarioProfile, "count")
		if len(n) == 0 {
			continue
		}
		row := []string{set, fmtNum(n[0])}
		for _, p := range phases {
			v := Values(samples, ToolHBD, set, ScenarioProfile, p+"_mean_ms")
			if len(v) == 0 {
				row = append(row, "—")
				continue
			}
			row = append(row, fmtNum(v[0]))
		}
		rows = append(rows, row)
	}
	if len(rows) == 1 {
		return nil
	}
	return writeMarkdown(w, rows)
}

// writeMarkdown writes rows as a Markdown table, the first row as header,
// padding columns so it also reads as plain text.
func writeMarkdown(w io.Writer, rows [][]string) error {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		b.WriteString("|")
		for i, c := range r {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line(rows[0])
	b.WriteString("|")
	for _, n := range width {
		b.WriteString(strings.Repeat("-", n+2) + "|")
	}
	b.WriteString("\n")
	for _, r := range rows[1:] {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
