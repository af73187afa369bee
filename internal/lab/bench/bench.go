package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/config"
	"github.com/hbdproject/hbd/internal/lab"
)

// Options are Main's flags.
type Options struct {
	Runs       int           // cable-pull runs per tool and setting
	Out        string        // output directory
	Smoke      bool          // CI: 2 runs of each scenario, short soak and cost windows
	Bin        string        // the hbd binary
	LogDir     string        // keep the labs' process logs here
	Settings   []string      // settings to run; default all three
	Soak       time.Duration // loss soak per candidate
	Cost       time.Duration // idle CPU window
	CrashCap   time.Duration // how long the crashed host's VIP is watched
	Replot     bool          // only redraw table and plots from Out's CSVs
	Keepalived string        // the keepalived binary
	Handovers  int           // planned handovers in the handover series (hbd only); 0 skips it
}

// Fixed parameters of the runs.
const (
	lossPercent     = 5
	preFault        = 300 * time.Millisecond // probing before the fault
	postFirstGood   = 200 * time.Millisecond // probing after the first good answer
	failoverLimit   = 15 * time.Second       // a standby that has not answered by then failed the run
	stableLimit     = 30 * time.Second
	failbackSettle  = 500 * time.Millisecond
	switchoverAfter = 300 * time.Millisecond
)

// Main runs the benchmark: `hbd-lab bench`. It needs root, the lab's
// commands and keepalived (Debian package keepalived). The table goes to
// stdout, progress to stderr, samples.csv, timeline.csv, table.md,
// failover.png and timeline.png to --out.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.Replot {
		return replot(o, stdout)
	}
	if os.Geteuid() != 0 {
		return errors.New("bench: needs root (network namespaces)")
	}
	if err := lab.CheckPrereqs(); err != nil {
		return err
	}
	if o.Keepalived, err = exec.LookPath(o.Keepalived); err != nil {
		return fmt.Errorf("bench: keepalived not found (apt-get install keepalived): %w", err)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("bench: creating %s: %w", o.Out, err)
	}
	r := &runner{o: o, log: stderr, timelines: map[string][]timelineRun{}}
	start := time.Now()
	runErr := r.run(ctx)
	r.logf("benchmark took %s", time.Since(start).Round(time.Second))
	if len(r.samples) == 0 {
		return errors.Join(runErr, errors.New("bench: no samples"))
	}
	if err := r.write(stdout); err != nil {
		return errors.Join(runErr, err)
	}
	if len(r.warnings) > 0 {
		fmt.Fprintf(stdout, "\n%d run(s) failed and were left out:\n", len(r.warnings))
		for _, w := range r.warnings {
			fmt.Fprintf(stdout, "  - %s\n", w)
		}
	}
	return runErr
}

func parseFlags(args []string, stderr io.Writer) (Options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hbd-lab bench [flags]\n\n"+
			"Measures hbd against keepalived in network namespaces, side by side: cable\n"+
			"pull at each tool's defaults, at a matched 100 ms heartbeat and at each\n"+
			"tool's fastest setting that survives 5%% loss; planned switchover; kill -9;\n"+
			"fail-back; idle CPU and RSS. Needs root and keepalived.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var o Options
	var settings string
	fs.IntVar(&o.Runs, "runs", 20, "cable-pull runs per tool and setting")
	fs.StringVar(&o.Out, "out", "docs/benchmarks", "output `dir` for samples.csv, timeline.csv, table.md and the PNGs")
	fs.BoolVar(&o.Smoke, "smoke", false, "CI smoke: 2 runs of each scenario, 10s loss soak with one candidate, 5s cost window")
	fs.StringVar(&o.Bin, "bin", "", "the hbd `binary` run in the lab (hbd-lab passes the hbd next to it)")
	fs.StringVar(&o.LogDir, "logs", "", "keep every lab's process logs and configs under `dir`")
	fs.StringVar(&settings, "settings", "defaults,matched,fastest,cost", "comma-separated settings to run (cost alone: only the idle cost, merged into --out's samples.csv; \"none\": only the handover series)")
	fs.DurationVar(&o.Soak, "soak", 60*time.Second, "loss soak per candidate setting")
	fs.DurationVar(&o.Cost, "cost-window", 60*time.Second, "idle CPU measuring window")
	fs.DurationVar(&o.CrashCap, "crash-cap", 10*time.Second, "how long a killed daemon's host is watched for the VIP")
	fs.BoolVar(&o.Replot, "replot", false, "only redraw the table and plots from --out's CSVs")
	fs.StringVar(&o.Keepalived, "keepalived", "keepalived", "the keepalived `binary`")
	fs.IntVar(&o.Handovers, "handovers", 1000, "planned handovers in hbd's handover series (half hbd handover, half SIGTERM, both ways, under load); 0 skips it")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	for _, f := range []string{"runs", "soak", "cost-window", "crash-cap", "handovers"} {
		set[f] = false
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Smoke {
		if !set["runs"] {
			o.Runs = 2
		}
		if !set["soak"] {
			o.Soak = 10 * time.Second
		}
		if !set["handovers"] {
			o.Handovers = 8
		}
		if !set["cost-window"] {
			o.Cost = 5 * time.Second
		}
		if !set["crash-cap"] {
			o.CrashCap = 5 * time.Second
		}
	}
	if o.Runs < 1 || o.Runs > 1000 {
		return o, fmt.Errorf("bench: --runs %d: want 1..1000", o.Runs)
	}
	if o.Handovers < 0 {
		return o, fmt.Errorf("bench: --handovers %d: want 0 or more", o.Handovers)
	}
	if o.Soak <= 0 || o.Cost <= 0 || o.CrashCap <= 0 {
		return o, errors.New("bench: --soak, --cost-window and --crash-cap must be positive")
	}
	for _, s := range strings.Split(settings, ",") {
		s = strings.TrimSpace(s)
		if s == "none" { // only the handover series
			continue
		}
		if !slices.Contains([]string{SettingDefaults, SettingMatched, SettingFastest, SettingCost}, s) {
			return o, fmt.Errorf("bench: --settings: unknown setting %q", s)
		}
		o.Settings = append(o.Settings, s)
	}
	if o.Bin == "" && !o.Replot {
		return o, errors.New("bench: --bin: the hbd binary to run in the lab is required")
	}
	if o.Bin != "" {
		abs, err := filepath.Abs(o.Bin)
		if err != nil {
			return o, err
		}
		o.Bin = abs
	}
	return o, nil
}

// The settings compared.
var (
	kaDefaults = KeepalivedTiming{Version: 2, Advert: time.Second}
	kaMatched  = KeepalivedTiming{Version: 3, Advert: 100 * time.Millisecond}
	// hbdMatched has keepalived's heartbeat and the same detection time:
	// keepalived's backup (priority 100) declares the master down after
	// 3 × 100 ms + (256 − 100)/256 × 100 ms = 360.9 ms.
	hbdMatched = HBDTiming{Interval: 100 * time.Millisecond, DeadAfter: kaMatched.MasterDown(prioStandby).Round(time.Millisecond)}

	// Loss-soak ladders, fastest first: the first candidate with no false
	// failover in the soak is the tool's "fastest" setting. The last one of
	// each is the matched setting's order of magnitude, so the ladder ends.
	hbdLadder = []HBDTiming{
		{Interval: 5 * time.Millisecond, DeadAfter: 30 * time.Millisecond},
		{Interval: 10 * time.Millisecond, DeadAfter: 60 * time.Millisecond},
		{Interval: 20 * time.Millisecond, DeadAfter: 100 * time.Millisecond},
		{Interval: 50 * time.Millisecond, DeadAfter: 300 * time.Millisecond},
	}
	kaLadder = []KeepalivedTiming{
		{Version: 3, Advert: 10 * time.Millisecond},
		{Version: 3, Advert: 20 * time.Millisecond},
		{Version: 3, Advert: 50 * time.Millisecond},
		kaMatched,
	}
	// The idle-cost runs, by CostSettings: hbd's default 5 ms beside
	// keepalived's fastest 10 ms, then both at 10 ms (hbd with keepalived's
	// master-down time) and both at the matched 100 ms.
	kaFastestAdvert = KeepalivedTiming{Version: 3, Advert: 10 * time.Millisecond}
	costTimings     = []struct {
		hbd HBDTiming // zero: hbd's defaults
		ka  KeepalivedTiming
	}{
		{HBDTiming{}, kaFastestAdvert},
		{HBDTiming{Interval: 10 * time.Millisecond, DeadAfter: kaFastestAdvert.MasterDown(prioStandby).Round(time.Millisecond)}, kaFastestAdvert},
		{hbdMatched, kaMatched},
	}

	// In --smoke, one candidate each.
	hbdSmokeLadder = []HBDTiming{{Interval: 10 * time.Millisecond, DeadAfter: 60 * time.Millisecond}}
	kaSmokeLadder  = []KeepalivedTiming{{Version: 3, Advert: 50 * time.Millisecond}}
)

type timelineRun struct {
	gap time.Duration
	pts []TimelinePoint
}

type runner struct {
	o         Options
	log       io.Writer
	samples   []Sample
	warnings  []string
	timelines map[string][]timelineRun // cable pulls at defaults, by tool

	hbdFastest HBDTiming
	kaFastest  KeepalivedTiming
	phase      time.Duration // the current setting's longest heartbeat interval
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (r *runner) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.warnings = append(r.warnings, msg)
	r.logf("WARNING: %s", msg)
}

func (r *runner) add(tool, setting, scenario string, run int, metric string, v float64) {
	r.samples = append(r.samples, Sample{Tool: tool, Setting: setting, Scenario: scenario, Run: run, Metric: metric, Value: v})
}

func (r *runner) run(ctx context.Context) error {
	var errs []error
	if slices.Contains(r.o.Settings, SettingFastest) {
		if err := r.lossLadder(ctx); err != nil {
			return err
		}
	}
	for _, set := range r.o.Settings {
		if err := ctx.Err(); err != nil {
			return err
		}
		if set == SettingCost {
			if err := r.costSettings(ctx); err != nil {
				r.warn("cost: %v", err)
				errs = append(errs, fmt.Errorf("cost: %w", err))
			}
			continue
		}
		if err := r.setting(ctx, set); err != nil {
			r.warn("setting %s: %v", set, err)
			errs = append(errs, fmt.Errorf("setting %s: %w", set, err))
		}
	}
	if slices.Contains(r.o.Settings, SettingDefaults) && ctx.Err() == nil {
		if err := r.threeNodeSeries(ctx); err != nil {
			r.warn("three nodes: %v", err)
			errs = append(errs, fmt.Errorf("three nodes: %w", err))
		}
		if err := r.bgpCablePulls(ctx); err != nil {
			r.warn("BGP cable pulls: %v", err)
			errs = append(errs, fmt.Errorf("BGP cable pulls: %w", err))
		}
	}
	if r.o.Handovers > 0 && ctx.Err() == nil {
		if err := r.handoverSeries(ctx); err != nil {
			r.warn("handover series: %v", err)
			errs = append(errs, fmt.Errorf("handover series: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (r *runner) pairConfig(set string, hbd HBDTiming, ka KeepalivedTiming) pairConfig {
	return pairConfig{bin: r.o.Bin, logDir: r.o.LogDir, name: set, hbd: hbd, ka: ka, metrics: true}
}

// startPairs starts both tools' pairs for a setting and waits until each
// is stable.
func (r *runner) startPairs(ctx context.Context, c pairConfig) ([]pair, error) {
	hc := c
	hc.name = c.name + "-hbd"
	h, err := startHBD(ctx, hc)
	if err != nil {
		return nil, fmt.Errorf("starting the hbd pair: %w", err)
	}
	kc := c
	kc.name = c.name + "-keepalived"
	k, err := startKeepalived(ctx, kc, r.o.Keepalived)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("starting the keepalived pair: %w", err), h.close())
	}
	ps := []pair{h, k}
	for _, p := range ps {
		if err := waitStable(ctx, p, stableLimit); err != nil {
			return nil, errors.Join(err, closeAll(ps))
		}
	}
	return ps, nil
}

func closeAll(ps []pair) error {
	var errs []error
	for _, p := range ps {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

func (r *runner) setting(ctx context.Context, set string) error {
	// At defaults hbd's config names no timing at all; hbd is what the
	// config package (the binary's source) fills in.
	var run HBDTiming
	hbd, err := hbdDefaultTiming()
	if err != nil {
		return err
	}
	ka := kaDefaults
	switch set {
	case SettingMatched:
		hbd, ka = hbdMatched, kaMatched
		run = hbd
	case SettingFastest:
		hbd, ka = r.hbdFastest, r.kaFastest
		run = hbd
	}
	r.phase = max(hbd.Interval, ka.Advert)
	r.add(ToolHBD, set, "config", 0, "interval_ms", ms(hbd.Interval))
	r.add(ToolHBD, set, "config", 0, "detect_ms", ms(hbd.DeadAfter))
	r.add(ToolKeepalived, set, "config", 0, "interval_ms", ms(ka.Advert))
	r.add(ToolKeepalived, set, "config", 0, "detect_ms", ms(ka.MasterDown(prioStandby)))
	r.add(ToolKeepalived, set, "config", 0, "vrrp_version", float64(ka.Version))
	r.logf("setting %s: hbd %s; keepalived %s (master down %s)", set, hbd, ka, ka.MasterDown(prioStandby).Round(time.Millisecond))

	ps, err := r.startPairs(ctx, r.pairConfig(set, run, ka))
	if err != nil {
		return err
	}
	defer func() {
		if err := closeAll(ps); err != nil {
			r.warn("closing the %s labs: %v", set, err)
		}
	}()

	// Cable pulls, alternating A B A B.
	for i := 1; i <= r.o.Runs; i++ {
		for _, p := range ps {
			if err := r.cablePull(ctx, p, set, i); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.warn("%s %s cable pull %d: %v", p.tool(), set, i, err)
				if err := waitStable(ctx, p, stableLimit); err != nil {
					return err
				}
			}
		}
	}
	r.profile(ctx, ps[0], set)
	if set != SettingMatched {
		return nil
	}
	for i := 1; i <= r.o.Runs; i++ {
		for _, p := range ps {
			if err := r.switchover(ctx, p, set, i); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.warn("%s switchover %d: %v", p.tool(), i, err)
				if err := waitStable(ctx, p, stableLimit); err != nil {
					return err
				}
			}
		}
	}
	crashRuns := max(2, r.o.Runs/4)
	for i := 1; i <= crashRuns; i++ {
		for _, p := range ps {
			if err := r.crash(ctx, p, set, i); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.warn("%s crash %d: %v", p.tool(), i, err)
				if err := waitStable(ctx, p, stableLimit); err != nil {
					return err
				}
			}
		}
	}
	r.add(ToolHBD, set, ScenarioCrash, 0, "dead_host_vip_cap_ms", ms(r.o.CrashCap))
	r.add(ToolKeepalived, set, ScenarioCrash, 0, "dead_host_vip_cap_ms", ms(r.o.CrashCap))
	return nil
}

// costSettings measures the idle cost of both tools side by side at each
// of CostSettings, each in a fresh pair of labs.
func (r *runner) costSettings(ctx context.Context) error {
	def, err := hbdDefaultTiming()
	if err != nil {
		return err
	}
	for i, set := range CostSettings {
		hbd, run, ka := costTimings[i].hbd, costTimings[i].hbd, costTimings[i].ka
		if hbd.Interval == 0 {
			hbd = def
		}
		r.add(ToolHBD, set, "config", 0, "interval_ms", ms(hbd.Interval))
		r.add(ToolHBD, set, "config", 0, "detect_ms", ms(hbd.DeadAfter))
		r.add(ToolKeepalived, set, "config", 0, "interval_ms", ms(ka.Advert))
		r.add(ToolKeepalived, set, "config", 0, "detect_ms", ms(ka.MasterDown(prioStandby)))
		r.add(ToolKeepalived, set, "config", 0, "vrrp_version", float64(ka.Version))
		r.logf("setting %s: hbd %s; keepalived %s", set, hbd, ka)
		ps, err := r.startPairs(ctx, r.pairConfig(strings.ReplaceAll(set, " ", "-"), run, ka))
		if err != nil {
			// One more try: a lab's start-up can fail on a busy machine
			// (an IPv6 address not yet usable when Redis binds it).
			r.warn("%s: %v; trying once more", set, err)
			if ps, err = r.startPairs(ctx, r.pairConfig(strings.ReplaceAll(set, " ", "-"), run, ka)); err != nil {
				return err
			}
		}
		err = r.cost(ctx, ps, set)
		if cerr := closeAll(ps); cerr != nil {
			r.warn("closing the %s labs: %v", set, cerr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// write stores the outputs and prints the tables.
func (r *runner) write(stdout io.Writer) error {
	if slices.Equal(r.o.Settings, []string{SettingCost}) {
		return r.writeCostOnly(stdout)
	}
	var pts []TimelinePoint
	for _, tool := range []string{ToolHBD, ToolKeepalived} {
		if t, ok := medianRun(r.timelines[tool]); ok {
			pts = append(pts, t.pts...)
		}
	}
	if err := writeFile(filepath.Join(r.o.Out, "samples.csv"), func(w io.Writer) error { return WriteCSV(w, r.samples) }); err != nil {
		return err
	}
	if len(pts) > 0 {
		if err := writeFile(filepath.Join(r.o.Out, "timeline.csv"), func(w io.Writer) error { return WriteTimelineCSV(w, pts) }); err != nil {
			return err
		}
	}
	return render(r.o.Out, r.samples, pts, stdout)
}

// writeCostOnly merges a cost-only run into --out's samples.csv: the
// earlier cost samples are replaced, everything else is kept, and the
// table and plots are drawn again from the result.
func (r *runner) writeCostOnly(stdout io.Writer) error {
	path := filepath.Join(r.o.Out, "samples.csv")
	var old []Sample
	if f, err := os.Open(path); err == nil {
		old, err = ReadCSV(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("bench: merging into %s: %w", path, err)
		}
	}
	var merged []Sample
	for _, s := range old {
		if s.Scenario != ScenarioCost && !slices.Contains(CostSettings, s.Setting) {
			merged = append(merged, s)
		}
	}
	merged = append(merged, r.samples...)
	if err := writeFile(path, func(w io.Writer) error { return WriteCSV(w, merged) }); err != nil {
		return err
	}
	var pts []TimelinePoint
	if tf, err := os.Open(filepath.Join(r.o.Out, "timeline.csv")); err == nil {
		defer tf.Close()
		if pts, err = ReadTimelineCSV(tf); err != nil {
			return err
		}
	}
	return render(r.o.Out, merged, pts, stdout)
}

// medianRun picks the run whose gap is the median one.
func medianRun(runs []timelineRun) (timelineRun, bool) {
	if len(runs) == 0 {
		return timelineRun{}, false
	}
	s := slices.Clone(runs)
	slices.SortStableFunc(s, func(a, b timelineRun) int { return int(a.gap - b.gap) })
	return s[(len(s)-1)/2], true
}

// render writes table.md and the PNGs and prints the tables.
func render(out string, samples []Sample, pts []TimelinePoint, stdout io.Writer) error {
	var b strings.Builder
	b.WriteString("## Results\n\n")
	if err := WriteTable(&b, samples); err != nil {
		return err
	}
	b.WriteString("\n## Settings\n\n")
	if err := WriteSettings(&b, samples); err != nil {
		return err
	}
	b.WriteString("\n## Loss soak (5% loss on both hosts' ports)\n\n")
	if err := WriteLossLadder(&b, samples); err != nil {
		return err
	}
	var prof strings.Builder
	if err := WriteProfile(&prof, samples); err != nil {
		return err
	}
	if prof.Len() > 0 {
		b.WriteString("\n## hbd failover phases (claiming node, hbd_failover_phase_seconds)\n\n")
		b.WriteString(prof.String())
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "table.md"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("bench: writing table.md: %w", err)
	}
	if err := writeFile(filepath.Join(out, "failover.png"), func(w io.Writer) error { return PlotFailover(w, samples) }); err != nil {
		return err
	}
	if len(pts) > 0 {
		if err := writeFile(filepath.Join(out, "timeline.png"), func(w io.Writer) error { return PlotTimeline(w, pts) }); err != nil {
			return err
		}
	}
	return nil
}

func replot(o Options, stdout io.Writer) error {
	f, err := os.Open(filepath.Join(o.Out, "samples.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	samples, err := ReadCSV(f)
	if err != nil {
		return err
	}
	var pts []TimelinePoint
	if tf, err := os.Open(filepath.Join(o.Out, "timeline.csv")); err == nil {
		defer tf.Close()
		if pts, err = ReadTimelineCSV(tf); err != nil {
			return err
		}
	}
	return render(o.Out, samples, pts, stdout)
}

// writeFile writes a file through a temporary name, so a failed write does
// not leave a truncated output behind.
func writeFile(path string, fn func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("bench: creating %s: %w", path, err)
	}
	if err := fn(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// hbdDefaultTiming is hbd's default heartbeat timing, as the config package
// fills it in for a config that names none.
func hbdDefaultTiming() (HBDTiming, error) {
	res, _ := config.Parse([]byte("node: bench\ninterface: eth0\n"), "defaults.yaml", config.Options{
		InterfaceMayBeMissing: true,
		InterfaceExists:       func(string) bool { return true },
		Hostname:              func() (string, error) { return "bench", nil },
	})
	if res == nil || res.Config == nil || res.Config.Interval <= 0 || res.Config.DeadAfter <= 0 {
		return HBDTiming{}, errors.New("bench: reading hbd's default timing from the config package")
	}
	return HBDTiming{Interval: res.Config.Interval.D(), DeadAfter: res.Config.DeadAfter.D()}, nil
}
