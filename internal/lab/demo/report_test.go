package demo

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const ms = time.Millisecond

func TestJudge(t *testing.T) {
	failover := Expect{From: "pc01", To: "pc02", MaxGap: 2 * time.Second, Session: "小潘"}
	handover := Expect{From: "pc01", To: "pc02", NoFailures: true}
	good := func() Outcome {
		return Outcome{Before: "pc01", After: "pc02", Holders: []string{"pc02"}, Gap: 300 * ms, Requests: 100, Failures: 12,
			MaxHolders: 1, Session: &SessionRead{Name: "小潘", Node: "pc02", Version: "v1"}}
	}
	tests := []struct {
		name   string
		expect Expect
		mod    func(*Outcome)
		pass   bool
		reason string // substring of the reason
	}{
		{"failover passes", failover, func(*Outcome) {}, true, "VIP moved pc01 → pc02, gap 300 ms < 2s, session intact, never two holders"},
		{"failover with failures still passes", failover, func(o *Outcome) { o.Failures = 90 }, true, "gap 300 ms"},
		{"gap too long", failover, func(o *Outcome) { o.Gap = 2 * time.Second }, false, "gap 2000 ms ≥ 2s"},
		{"VIP did not move", failover, func(o *Outcome) { o.After = "pc01"; o.Holders = []string{"pc01"} }, false, "pc01 serves at the end, want pc02"},
		{"nobody serves", failover, func(o *Outcome) { o.After = "" }, false, "no one serves at the end"},
		{"served but two hold at the end", failover, func(o *Outcome) { o.Holders = []string{"pc01", "pc02"} }, false, "VIP held by pc01+pc02 at the end"},
		{"wrong node before", failover, func(o *Outcome) { o.Before = "pc02" }, false, "pc02 served before the event, want pc01"},
		{"session lost", failover, func(o *Outcome) { o.Session.Name = "" }, false, `session lost: name "", want "小潘"`},
		{"session unread", failover, func(o *Outcome) { o.Session = nil }, false, "the session was not read back"},
		{"session read failed", failover, func(o *Outcome) { o.Session.Err = "status 503" }, false, "reading the session: status 503"},
		{"two holders", failover, func(o *Outcome) { o.MaxHolders, o.DoubleFor = 2, 20*ms }, false, "2 hosts held the VIP at once for 20 ms"},
		{"step error", failover, func(o *Outcome) { o.Err = errors.New("pc02 does not hold the VIP alone") }, false, "pc02 does not hold the VIP alone"},
		{"handover clean", handover, func(o *Outcome) { o.Failures = 0; o.Session = nil }, true, "VIP moved pc01 → pc02, 0 failed of 100, never two holders"},
		{"handover with a failure", handover, func(o *Outcome) { o.Failures = 1 }, false, "1 failed request(s) in a planned handover"},
		{"version", Expect{To: "pc01", Version: "v2"}, func(o *Outcome) {
			o.After, o.Holders, o.Session.Version = "pc01", []string{"pc01"}, "v2"
		}, true, "served by pc01, answers carry v2"},
		{"old version", Expect{To: "pc01", Version: "v2"}, func(o *Outcome) {
			o.After, o.Holders = "pc01", []string{"pc01"}
		}, false, `answers carry "v1", want "v2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good()
			tt.mod(&o)
			v := Judge(tt.expect, o)
			if v.Pass != tt.pass || !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("Judge = %v, want pass=%v with %q", v, tt.pass, tt.reason)
			}
			if prefix := map[bool]string{true: "PASS  ", false: "FAIL  "}[tt.pass]; !strings.HasPrefix(v.String(), prefix) {
				t.Errorf("String() = %q", v.String())
			}
		})
	}
}

func TestStamp(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "[  0.000s]",
		3214 * ms:               "[  3.214s]",
		61*time.Second + 5*ms:   "[ 61.005s]",
		100*time.Second + 1*ms:  "[100.001s]",
		1234*time.Second + 0*ms: "[1234.000s]",
	} {
		if got := Stamp(d); got != want {
			t.Errorf("Stamp(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNarrator(t *testing.T) {
	var b bytes.Buffer
	t0 := time.Unix(1000, 0)
	now := t0.Add(3214 * ms)
	n := &narrator{w: &b, t0: t0, now: func() time.Time { return now }, width: 40}
	n.say("pc02 holds the VIP, 165ms after the kill: pc01 is FAULT")
	n.detail("  1. check standby    ok")
	want := "" +
		"[  3.214s] pc02 holds the VIP, 165ms\n" +
		"             after the kill: pc01 is\n" +
		"             FAULT\n" +
		"             1. check standby    ok\n"
	if b.String() != want {
		t.Errorf("narration:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWrapWords(t *testing.T) {
	tests := []struct {
		text, first, rest string
		width             int
		want              []string
	}{
		{"a bb ccc dddd", "> ", "  ", 8, []string{"> a bb", "  ccc", "  dddd"}},
		{"keep  two  spaces", "", "", 80, []string{"keep  two  spaces"}},
		{"aligned  columns wrap here", "", "", 16, []string{"aligned  columns", "wrap here"}},
		{"averyveryverylongword x", "", "..", 8, []string{"averyveryverylongword", "..x"}},
		{"no wrap at all here", "- ", "", 0, []string{"- no wrap at all here"}},
		{"", "- ", "", 10, []string{"-"}},
		{"小潘小潘 小潘", "", "", 5, []string{"小潘小潘", "小潘"}},
	}
	for _, tt := range tests {
		got := WrapWords(tt.text, tt.width, tt.first, tt.rest)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("WrapWords(%q, %d) = %q, want %q", tt.text, tt.width, got, tt.want)
		}
	}
}

func TestWrapTimeline(t *testing.T) {
	tl := strings.Repeat("1", 45) + strings.Repeat("x", 16) + strings.Repeat(".", 30) + strings.Repeat("2", 59)
	lines := WrapTimeline(tl, 10*ms, 80, "  ")
	want := []string{
		"    +0.00s " + tl[:60],
		"    +0.60s " + tl[60:120],
		"    +1.20s " + tl[120:],
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line of %d columns > 80: %q", n, l)
		}
	}

	// A long steady stretch folds into one line.
	tl = strings.Repeat("1", 50) + strings.Repeat("2", 60*5) + "22x2"
	lines = WrapTimeline(tl, 10*ms, 80, "  ")
	want = []string{
		"    +0.00s " + strings.Repeat("1", 50) + strings.Repeat("2", 10),
		"    +0.60s " + strings.Repeat("2", 60),
		"    +1.20s ⋯ 2 for 1.80s ⋯",
		"    +3.00s " + strings.Repeat("2", 50) + "22x2",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// One repeat is not worth a fold.
	tl = strings.Repeat("1", 120) + "x"
	if lines := WrapTimeline(tl, 10*ms, 80, "  "); len(lines) != 3 {
		t.Errorf("no fold expected: %q", lines)
	}
	if lines := WrapTimeline("", 10*ms, 80, ""); lines != nil {
		t.Errorf("empty timeline: %q", lines)
	}
	// A narrow terminal still gets at least ten characters a line.
	if lines := WrapTimeline(strings.Repeat("1", 25), 10*ms, 5, ""); len(lines) != 3 || !strings.HasSuffix(lines[2], " 11111") {
		t.Errorf("narrow: %q", lines)
	}
}

func TestFormatSteps(t *testing.T) {
	got := FormatSteps([]StepLine{
		{Name: "check standby", OK: true, Took: 0, Detail: "pc02 is ready"},
		{Name: "undrain local app", OK: true, Took: 500 * time.Microsecond, Detail: "ready as standby"},
		{Name: "standby claims", OK: false, Took: 3 * time.Second},
	})
	want := []string{
		"1. check standby     ok           0s  pc02 is ready",
		"2. undrain local app ok        500µs  ready as standby",
		"3. standby claims    FAILED       3s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func sampleScenarios() []*Scenario {
	kill := &Scenario{N: 1, Title: "kill -9 pc01's app", Expect: Expect{From: "pc01", To: "pc02", MaxGap: 2 * time.Second},
		Outcome: Outcome{Before: "pc01", After: "pc02", Holders: []string{"pc02"}, Moved: 165 * ms, Gap: 1184 * ms, Slowest: 1020 * ms,
			Requests: 90, Failures: 16, MaxHolders: 1},
		Timeline: strings.Repeat("1", 41) + strings.Repeat("x", 16) + strings.Repeat(".", 60) + strings.Repeat("2", 30)}
	kill.Verdict = Judge(kill.Expect, kill.Outcome)
	hand := &Scenario{N: 2, Title: "handover pc01 → pc02", Expect: Expect{From: "pc02", To: "pc01", NoFailures: true},
		Outcome: Outcome{Before: "pc02", After: "pc01", Holders: []string{"pc01"}, Moved: 11 * ms, Gap: 12 * ms, Slowest: 2 * ms,
			Requests: 71, Failures: 1, MaxHolders: 2, DoubleFor: 20 * ms},
		Timeline: "2222x1111"}
	hand.Verdict = Judge(hand.Expect, hand.Outcome)
	return []*Scenario{kill, hand}
}

func TestWriteScenarioReport(t *testing.T) {
	scs := sampleScenarios()
	var b bytes.Buffer
	WriteScenarioReport(&b, scs[0], []string{"pc01", "pc02"}, 80)
	out := b.String()
	for _, want := range []string{
		"  served by    pc01 → pc02\n",
		"  VIP moved    165 ms after the event (held by pc02 at the end)\n",
		"  gap          1184 ms",
		"  slowest      1020 ms: a SYN sent to the old holder while the VIP moved was lost",
		"  requests     90, 16 failed\n",
		"  two holders  never",
		"  timeline     10 ms each: 1 = pc01, 2 = pc02, x = failed, . = none finished\n",
		"    +0.00s " + strings.Repeat("1", 41) + strings.Repeat("x", 16) + "...\n",
		"    +1.20s " + strings.Repeat("2", 27) + "\n",
		"  PASS  VIP moved pc01 → pc02, gap 1184 ms < 2s, never two holders\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "    +") && utf8.RuneCountInString(l) > 80 {
			t.Errorf("timeline line wider than 80: %q", l)
		}
	}

	b.Reset()
	WriteScenarioReport(&b, scs[1], []string{"pc01", "pc02"}, 80)
	out = b.String()
	for _, want := range []string{"  two holders  YES, for 20 ms\n", "  slowest      2 ms\n", "  FAIL  1 failed request(s) in a planned handover; 2 hosts held the VIP at once for 20 ms\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteSummary(t *testing.T) {
	scs := sampleScenarios()
	var b bytes.Buffer
	WriteSummary(&b, scs, 21340*ms)
	out := b.String()
	for _, want := range []string{
		"== summary ==\n",
		"#  scenario              served by  moved   gap      failed  2 holders  verdict\n",
		"1  kill -9 pc01's app    pc01→pc02  165 ms  1184 ms  16/90   never      PASS\n",
		"2  handover pc01 → pc02  pc02→pc01  11 ms   12 ms    1/71    20 ms      FAIL\n",
		"161 requests through the VIP, 17 failed (1 in planned handovers)\n",
		"FAILED: 1 of 2 scenarios (verdicts above); 21.3s in all\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if utf8.RuneCountInString(l) > 80 {
			t.Errorf("summary line wider than 80: %q", l)
		}
	}

	b.Reset()
	WriteSummary(&b, scs[:1], 6*time.Second)
	if !strings.Contains(b.String(), "all 1 scenarios passed in 6s\n") {
		t.Errorf("summary:\n%s", b.String())
	}
}

func TestReportPassed(t *testing.T) {
	var r *Report
	if r.Passed() {
		t.Error("nil report passed")
	}
	r = &Report{}
	if r.Passed() {
		t.Error("empty report passed")
	}
	for range script {
		r.Scenarios = append(r.Scenarios, &Scenario{Verdict: Verdict{Pass: true}})
	}
	if !r.Passed() {
		t.Error("all-pass report failed")
	}
	r.Scenarios[2].Verdict.Pass = false
	if r.Passed() {
		t.Error("report with a failure passed")
	}
}
