package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// Tools compared, in the order they appear in tables and plots.
const (
	ToolHBD        = "hbd"
	ToolKeepalived = "keepalived"
)

// Settings: each tool's defaults, both at a matched 100 ms heartbeat, and
// each tool's fastest setting that survived the loss soak.
const (
	SettingDefaults = "defaults"
	SettingMatched  = "matched"
	SettingFastest  = "fastest"
	// SettingCost (in --settings) runs only the idle cost, at three
	// heartbeats; its samples carry one of the CostSettings.
	SettingCost = "cost"
)

// CostSettings are the idle-cost runs: hbd at its 5 ms default, and both
// tools at a 10 ms and a 100 ms heartbeat (keepalived's fastest advert is
// 10 ms, so it runs at 10 ms next to hbd's 5 ms default).
var CostSettings = []string{"cost 5ms", "cost 10ms", "cost 100ms"}

// Scenarios.
const (
	ScenarioCablePull  = "cable_pull"
	ScenarioFailback   = "failback"
	ScenarioSwitchover = "switchover"
	ScenarioCrash      = "crash"
	ScenarioCost       = "cost"
	ScenarioLossSoak   = "loss_soak"
	ScenarioProfile    = "profile"
	ScenarioHandovers  = "handovers"
	// Three nodes (hbd alone: keepalived has no quorum): a cable pull of
	// the master, and a 2/1 partition that cuts the master off.
	ScenarioThreeCablePull = "three_cable_pull"
	ScenarioPartition      = "partition_2_1"
	// ScenarioBGPCablePull is a cable pull in BGP mode (hbd only: the
	// client behind an FRR router, the VIP announced over eBGP).
	ScenarioBGPCablePull = "bgp_cable_pull"
)

// Sample is one measured value: a row of samples.csv.
type Sample struct {
	Tool     string
	Setting  string
	Scenario string
	Run      int
	Metric   string
	Value    float64
}

// csvHeader is the first line of samples.csv.
var csvHeader = []string{"tool", "setting", "scenario", "run", "metric", "value"}

// WriteCSV writes samples as CSV with a header line.
func WriteCSV(w io.Writer, samples []Sample) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, s := range samples {
		rec := []string{s.Tool, s.Setting, s.Scenario, strconv.Itoa(s.Run), s.Metric,
			strconv.FormatFloat(s.Value, 'f', -1, 64)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadCSV reads what WriteCSV wrote.
func ReadCSV(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(csvHeader)
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("bench: reading samples CSV: %w", err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], csvHeader) {
		return nil, fmt.Errorf("bench: reading samples CSV: want header %v", csvHeader)
	}
	out := make([]Sample, 0, len(recs)-1)
	for i, rec := range recs[1:] {
		run, err := strconv.Atoi(rec[3])
		if err != nil {
			return nil, fmt.Errorf("bench: samples CSV line %d: run %q: %w", i+2, rec[3], err)
		}
		v, err := strconv.ParseFloat(rec[5], 64)
		if err != nil {
			return nil, fmt.Errorf("bench: samples CSV line %d: value %q: %w", i+2, rec[5], err)
		}
		out = append(out, Sample{Tool: rec[0], Setting: rec[1], Scenario: rec[2], Run: run, Metric: rec[4], Value: v})
	}
	return out, nil
}

// Values returns, in order, the values of the samples matching the key.
func Values(samples []Sample, tool, setting, scenario, metric string) []float64 {
	var vs []float64
	for _, s := range samples {
		if s.Tool == tool && s.Setting == setting && s.Scenario == scenario && s.Metric == metric {
			vs = append(vs, s.Value)
		}
	}
	return vs
}

// Summary is the min, median and max of some values.
type Summary struct {
	N                int
	Min, Median, Max float64
	Capped           bool // some value reached the measurement cap
}

// Summarize computes a Summary; the median of an even count is the mean of
// the two middle values. Values at or above capAt (if > 0) mark it Capped.
func Summarize(vs []float64, capAt float64) Summary {
	if len(vs) == 0 {
		return Summary{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{N: len(s), Min: s[0], Median: m, Max: s[len(s)-1], Capped: capAt > 0 && s[len(s)-1] >= capAt}
}

// Ratio is a/b, NaN when b is 0 or either side is empty.
func Ratio(a, b Summary) float64 {
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return math.NaN()
	}
	return a.Median / b.Median
}

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
