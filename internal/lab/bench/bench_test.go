package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
	"github.com/hbdproject/hbd/internal/testenv"
)

// hbdBin is the hbd binary TestMain builds for the smoke test.
var hbdBin string

func TestMain(m *testing.M) { testenv.MainWithHBD(m, &hbdBin) }

// TestSmoke runs the whole benchmark in its CI size (--smoke: 2 runs of each
// scenario, a 10 s loss soak with one candidate per tool, a 5 s cost
// window) and checks that it completes, that no run failed, that every row
// of the table has data from both tools, and that it writes its outputs.
// Timings on a small shared machine are the benchmark's business, not a
// test's.
func TestSmoke(t *testing.T) {
	testenv.RequireRoot(t)
	for _, p := range lab.Prereqs {
		testenv.RequireCommand(t, p.Command, p.Package)
	}
	testenv.RequireCommand(t, "keepalived", "keepalived")
	if testing.Short() && !testenv.InCI() {
		t.Skip("the benchmark smoke takes minutes")
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := Main(ctx, []string{"--smoke", "--out", out, "--bin", hbdBin}, &stdout, &stderr)
	t.Logf("bench --smoke took %s; progress:\n%s", time.Since(start).Round(time.Second), stderr.String())
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stdout.String())
	}
	table := stdout.String()
	t.Logf("table:\n%s", table)
	for _, want := range []string{"| figure", "cable pull → first good response", "BGP mode cable pull", "hbd min / med / max", "planned switchover", "idle CPU"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	for _, f := range []string{"failover.png", "timeline.png"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG", f)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "samples.csv"))
	if err != nil {
		t.Fatal(err)
	}
	samples, err := ReadCSV(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("samples.csv: %v", err)
	}
	if strings.Contains(table, "failed and were left out") {
		t.Errorf("runs failed:\n%s", table[strings.Index(table, "failed and were left out"):])
	}
	for _, p := range incomplete(samples, 2) {
		t.Error(p)
	}
}

// incomplete lists the rows of the table that lack some of their runs from
// either tool: a failed run leaves a row short, and a row with no data at
// all would print "—" and look fine.
func incomplete(samples []Sample, runs int) []string {
	var out []string
	for _, d := range rowDefs(crashCapMS) {
		want := runs
		tools := []string{ToolHBD, ToolKeepalived}
		switch d.scenario {
		case ScenarioCost:
			want = 1
		case ScenarioCrash:
			want = max(2, runs/4)
		case ScenarioHandovers:
			// one series, hbd's alone: keepalived has no handover command
			want, tools = 1, []string{ToolHBD}
		case ScenarioThreeCablePull, ScenarioPartition:
			tools = []string{ToolHBD} // keepalived has no quorum
		case ScenarioBGPCablePull:
			tools = []string{ToolHBD} // keepalived cannot announce over BGP
		}
		for _, tool := range tools {
			if n := len(Values(samples, tool, d.setting, d.scenario, d.metric)); n != want {
				out = append(out, fmt.Sprintf("%s, %s, %s: %d samples, want %d", tool, d.setting, strings.TrimSpace(d.figure), n, want))
			}
		}
	}
	return out
}

// The completeness check has teeth: a run left out or a row with no data
// fails it.
func TestIncompleteCatchesMissingRuns(t *testing.T) {
	var full []Sample
	for _, d := range rowDefs(crashCapMS) {
		n, tools := 2, []string{ToolHBD, ToolKeepalived}
		switch d.scenario {
		case ScenarioCost:
			n = 1
		case ScenarioHandovers:
			n, tools = 1, []string{ToolHBD}
		case ScenarioThreeCablePull, ScenarioPartition, ScenarioBGPCablePull:
			tools = []string{ToolHBD}
		}
		for _, tool := range tools {
			for i := 1; i <= n; i++ {
				full = append(full, Sample{Tool: tool, Setting: d.setting, Scenario: d.scenario, Run: i, Metric: d.metric, Value: 1})
			}
		}
	}
	if p := incomplete(full, 2); len(p) != 0 {
		t.Errorf("complete samples rejected: %v", p)
	}
	if p := incomplete(full[1:], 2); len(p) != 1 {
		t.Errorf("one run left out: %v", p)
	}
	var noRow []Sample
	for _, x := range full {
		if x.Metric != "failed_keepalive" {
			noRow = append(noRow, x)
		}
	}
	if p := incomplete(noRow, 2); len(p) != 2 {
		t.Errorf("a row without data: %v", p)
	}
}
