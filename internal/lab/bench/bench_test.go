package bench

import (
	"bytes"
	"context"
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
// window) and checks only that it completes and writes its outputs: timings
// on a small shared machine are the benchmark's business, not a test's.
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
	for _, want := range []string{"| figure", "cable pull → first good response", "hbd min / med / max", "planned switchover", "idle CPU"} {
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
	if _, err := ReadCSV(bytes.NewReader(b)); err != nil {
		t.Errorf("samples.csv: %v", err)
	}
}
