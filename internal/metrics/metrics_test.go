package metrics

import (
	"bufio"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestTextFormat(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("t_events_total", "Events.")
	c.Inc()
	c.Add(2.5)
	g := r.NewGaugeVec("t_state", "1 for the state, 0 for the others.", "state")
	g.With("MASTER").Set(1)
	g.With("BACKUP").Set(0)
	cv := r.NewCounterVec("t_frames_total", "Frames by path\nand \\ direction.", "path", "direction")
	cv.With("udp", "sent").Add(3)
	cv.With("tcp", `a "quoted"`+"\n"+`\ value`).Inc()
	h := r.NewHistogramVec("t_seconds", "Durations.", []float64{0.001, 0.01, 0.1}, "phase")
	h.With("detect").Observe(0.0005)
	h.With("detect").Observe(0.01) // on a bound: counts in that bucket
	h.With("detect").Observe(5)
	r.NewGaugeFunc("t_func", "From a function.", func() float64 { return math.Inf(1) })
	var b strings.Builder
	n, err := r.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo: %d, %v (wrote %d)", n, err, b.Len())
	}
	want := `# HELP t_events_total Events.
# TYPE t_events_total counter
t_events_total 3.5
# HELP t_frames_total Frames by path\nand \\ direction.
# TYPE t_frames_total counter
t_frames_total{direction="a \"quoted\"\n\\ value",path="tcp"} 1
t_frames_total{direction="sent",path="udp"} 3
# HELP t_func From a function.
# TYPE t_func gauge
t_func +Inf
# HELP t_seconds Durations.
# TYPE t_seconds histogram
t_seconds_bucket{phase="detect",le="0.001"} 1
t_seconds_bucket{phase="detect",le="0.01"} 2
t_seconds_bucket{phase="detect",le="0.1"} 2
t_seconds_bucket{phase="detect",le="+Inf"} 3
t_seconds_sum{phase="detect"} 5.0105
t_seconds_count{phase="detect"} 3
# HELP t_state 1 for the state, 0 for the others.
# TYPE t_state gauge
t_state{state="BACKUP"} 0
t_state{state="MASTER"} 1
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if _, err := parse(b.String()); err != nil {
		t.Error(err)
	}
	if !cv.Delete("udp", "sent") || cv.Delete("udp", "sent") {
		t.Error("Delete")
	}
}

// TestProcessAndGo checks the series operators expect from every exporter
// and that the whole output parses.
func TestProcessAndGo(t *testing.T) {
	r := NewRegistry()
	r.RegisterProcess()
	r.RegisterGo()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("content type %q", ct)
	}
	fams, err := parse(rec.Body.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func(float64) bool{
		"process_cpu_seconds_total":     func(v float64) bool { return v >= 0 },
		"process_resident_memory_bytes": func(v float64) bool { return v > 1<<20 },
		"process_start_time_seconds":    func(v float64) bool { return v > 1.5e9 },
		"process_open_fds":              func(v float64) bool { return v >= 3 },
		"process_max_fds":               func(v float64) bool { return v > 0 },
		"go_goroutines":                 func(v float64) bool { return v >= 1 },
		"go_threads":                    func(v float64) bool { return v >= 1 },
		"go_memstats_alloc_bytes":       func(v float64) bool { return v > 0 },
		"go_memstats_sys_bytes":         func(v float64) bool { return v > 0 },
		"go_memstats_heap_inuse_bytes":  func(v float64) bool { return v > 0 },
	} {
		f, ok := fams[name]
		if !ok {
			if _, err := os.Stat("/proc/self/stat"); err != nil && strings.HasPrefix(name, "process_") {
				continue
			}
			t.Errorf("no %s", name)
			continue
		}
		if len(f.values) != 1 || !check(f.values[0]) {
			t.Errorf("%s = %v", name, f.values)
		}
	}
}

type parsed struct {
	typ    string
	values []float64
}

var (
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelRe  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)`)
)

// parse reads the text exposition format strictly enough to catch what a
// Prometheus server would refuse: every sample belongs to the family
// announced by the HELP and TYPE lines before it, labels are well formed,
// values parse, and histogram buckets are cumulative up to _count.
func parse(text string) (map[string]*parsed, error) {
	fams := map[string]*parsed{}
	var cur string
	var buckets []float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if fams[name] != nil {
				return nil, fmt.Errorf("line %d: %s twice", ln, name)
			}
			cur, buckets = name, nil
			fams[name] = &parsed{}
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if name != cur {
				return nil, fmt.Errorf("line %d: TYPE of %s after HELP of %s", ln, name, cur)
			}
			switch typ {
			case "counter", "gauge", "histogram":
			default:
				return nil, fmt.Errorf("line %d: type %q", ln, typ)
			}
			fams[name].typ = typ
		default:
			m := sampleRe.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: %q is not a sample", ln, line)
			}
			name, labels, val := m[1], m[3], m[4]
			f := fams[cur]
			if f == nil || f.typ == "" {
				return nil, fmt.Errorf("line %d: sample before HELP/TYPE", ln)
			}
			base := name
			if f.typ == "histogram" {
				base = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			}
			if base != cur {
				return nil, fmt.Errorf("line %d: sample %s in family %s", ln, name, cur)
			}
			for rest := labels; rest != ""; {
				lm := labelRe.FindStringSubmatch(rest)
				if lm == nil {
					return nil, fmt.Errorf("line %d: bad labels %q", ln, rest)
				}
				rest = rest[len(lm[0]):]
			}
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q", ln, val)
			}
			switch {
			case strings.HasSuffix(name, "_bucket"):
				if len(buckets) > 0 && v < buckets[len(buckets)-1] {
					return nil, fmt.Errorf("line %d: bucket not cumulative", ln)
				}
				buckets = append(buckets, v)
			case f.typ == "histogram" && strings.HasSuffix(name, "_count"):
				if len(buckets) == 0 || buckets[len(buckets)-1] != v {
					return nil, fmt.Errorf("line %d: _count %v ≠ +Inf bucket %v", ln, v, buckets)
				}
				buckets = nil
			}
			f.values = append(f.values, v)
		}
	}
	return fams, sc.Err()
}

// An empty label value is left out, as Prometheus reads it: a series with
// an optional label (the daemon's group) reads the same without it.
func TestEmptyLabelIsLeftOut(t *testing.T) {
	r := NewRegistry()
	g := r.NewGaugeVec("t_state", "State.", "group", "state")
	g.With("", "MASTER").Set(1)
	g.With("web1", "BACKUP").Set(1)
	h := r.NewHistogramVec("t_seconds", "Durations.", []float64{1}, "group")
	h.With("").Observe(0.5)
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`t_state{state="MASTER"} 1`, `t_state{group="web1",state="BACKUP"} 1`,
		`t_seconds_bucket{le="1"} 1`, "t_seconds_sum 0.5", "t_seconds_count 1"} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("no line %q in:\n%s", want, b.String())
		}
	}
}
