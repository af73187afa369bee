package demo

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/hbdproject/hbd/internal/lab"
)

// Bucket is the time one timeline character stands for: the probe interval.
const Bucket = 10 * time.Millisecond

// SynRetry is the kernel's initial TCP retransmission timeout, less a
// margin: a good response this slow had its SYN resent.
const SynRetry = 900 * time.Millisecond

// DefaultWidth is the terminal width timelines wrap to when none is known.
const DefaultWidth = 80

// Scenario is one act of the story with its measurements and verdict.
type Scenario struct {
	N        int
	Title    string // e.g. "kill -9 pc01's web app"
	Expect   Expect
	Outcome  Outcome
	Verdict  Verdict
	Timeline string        // one character per Bucket from the scenario's start
	Took     time.Duration // wall time of the scenario
}

// Stamp formats an elapsed time for the narration, e.g. "[  3.214s]".
func Stamp(d time.Duration) string { return fmt.Sprintf("[%7.3fs]", d.Seconds()) }

// narrator writes timestamped lines, elapsed since its start, wrapped to
// width columns.
type narrator struct {
	w     io.Writer
	t0    time.Time
	now   func() time.Time
	width int
}

var stampPad = strings.Repeat(" ", len(Stamp(0)))

func (n *narrator) say(format string, args ...any) {
	n.write(Stamp(n.now().Sub(n.t0))+" ", stampPad+"   ", fmt.Sprintf(format, args...))
}

// raw writes an indented line under the last narrated one, unwrapped.
func (n *narrator) raw(text string) { fmt.Fprintln(n.w, stampPad+" "+text) }

// detail writes an indented line under the last narrated one.
func (n *narrator) detail(format string, args ...any) {
	n.write(stampPad+" ", stampPad+"   ", fmt.Sprintf(format, args...))
}

func (n *narrator) write(first, rest, text string) {
	for _, l := range WrapWords(text, n.width, first, rest) {
		fmt.Fprintln(n.w, l)
	}
}

// WrapWords breaks text at spaces into lines of at most width columns
// (counting runes), the first led by first and the others by rest. Runs of
// spaces inside a line are kept (aligned columns stay aligned); a word
// longer than a line stays whole. width <= 0 means no wrapping.
func WrapWords(text string, width int, first, rest string) []string {
	runes := utf8.RuneCountInString
	var lines []string
	lead, line, fresh := first, "", true
	for _, w := range strings.Split(text, " ") {
		switch {
		case fresh:
			if w == "" && len(lines) > 0 {
				continue // no leading spaces on a continuation line
			}
			line, fresh = w, false
		case width > 0 && runes(lead)+runes(line)+1+runes(w) > width && strings.TrimSpace(line) != "":
			lines = append(lines, strings.TrimRight(lead+line, " "))
			lead, line, fresh = rest, w, w == ""
		default:
			line += " " + w
		}
	}
	return append(lines, strings.TrimRight(lead+line, " "))
}

// FormatSteps renders a handover's steps the way `hbd handover` prints them.
// (numbered, name, ok or FAILED, duration, detail), with the names padded
// to the longest.
func FormatSteps(steps []StepLine) []string {
	width := 16
	for _, s := range steps {
		width = max(width, len(s.Name))
	}
	out := make([]string, 0, len(steps))
	for i, s := range steps {
		mark := "ok"
		if !s.OK {
			mark = "FAILED"
		}
		out = append(out, strings.TrimRight(fmt.Sprintf("%d. %-*s %-6s %8s  %s", i+1, width, s.Name, mark, s.Took.Round(100*time.Microsecond), s.Detail), " "))
	}
	return out
}

// StepLine is one handover step to print.
type StepLine struct {
	Name   string
	OK     bool
	Took   time.Duration
	Detail string
}

// WrapTimeline cuts a timeline of one character per bucket into lines of at
// most width columns, each led by its offset from the start ("   +0.60s ").
// A line holds a whole number of tenths of a second when bucket is 10ms. Runs
// of two or more full lines of one repeated character after the first such
// line fold into a single "⋯ c for 1.20s ⋯" line, so a long steady stretch
// takes two lines however long it is.
func WrapTimeline(tl string, bucket time.Duration, width int, indent string) []string {
	if tl == "" || bucket <= 0 {
		return nil
	}
	label := func(i int) string { return fmt.Sprintf("%s%+7.2fs ", indent, (time.Duration(i) * bucket).Seconds()) }
	per := width - len(label(len(tl)))
	if per >= 20 {
		per -= per % 10
	}
	per = max(per, 10)
	var lines []string
	uniform := func(s string) bool { return len(s) == per && strings.Count(s, s[:1]) == per }
	for i := 0; i < len(tl); {
		end := min(i+per, len(tl))
		line := tl[i:end]
		if uniform(line) {
			// Fold the full lines of the same character that follow.
			j := end
			for j+per <= len(tl) && tl[j:j+per] == line {
				j += per
			}
			lines = append(lines, label(i)+line)
			if j-end >= 2*per {
				lines = append(lines, fmt.Sprintf("%s⋯ %c for %.2fs ⋯", label(end), line[0], (time.Duration(j-end)*bucket).Seconds()))
				i = j
				continue
			}
			i = end
			continue
		}
		lines = append(lines, label(i)+line)
		i = end
	}
	return lines
}

// legend explains the timeline's characters for the given nodes.
func legend(nodes []string) string {
	parts := []string{}
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%c = %s", lab.DefaultNodeSymbol(n), n))
	}
	parts = append(parts, "x = failed", ". = none finished")
	return strings.Join(parts, ", ")
}

// WriteScenarioReport prints a scenario's measurements, its timeline wrapped
// to width, and its verdict.
func WriteScenarioReport(w io.Writer, s *Scenario, nodes []string, width int) {
	o := s.Outcome
	before, after := orNone(o.Before), orNone(o.After)
	served := before + " → " + after
	if before == after {
		served = before + " throughout"
	}
	fmt.Fprintf(w, "  served by    %s\n", served)
	if o.Moved > 0 {
		fmt.Fprintf(w, "  VIP moved    %s after the event (held by %s at the end)\n", Millis(o.Moved), holderList(o.Holders))
	} else {
		fmt.Fprintf(w, "  VIP          held by %s at the end\n", holderList(o.Holders))
	}
	fmt.Fprintf(w, "  gap          %s (longest time from a good response to the next)\n", Millis(o.Gap))
	if o.Slowest >= SynRetry {
		fmt.Fprintf(w, "  slowest      %s: a SYN sent to the old holder while the VIP moved was lost; TCP resent it after 1 s\n", Millis(o.Slowest))
	} else if o.Slowest > 0 {
		fmt.Fprintf(w, "  slowest      %s\n", Millis(o.Slowest))
	}
	fmt.Fprintf(w, "  requests     %d, %d failed%s\n", o.Requests, o.Failures, errorList(o.Errors))
	if o.MaxHolders > 1 {
		fmt.Fprintf(w, "  two holders  YES, for %s\n", Millis(o.DoubleFor))
	} else {
		fmt.Fprintf(w, "  two holders  never (every address change on both hosts)\n")
	}
	if s.Timeline != "" {
		fmt.Fprintf(w, "  timeline     %d ms each: %s\n", Bucket.Milliseconds(), legend(nodes))
		for _, l := range WrapTimeline(s.Timeline, Bucket, width, "  ") {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintf(w, "  %s\n", s.Verdict)
}

func errorList(es []ErrorCount) string {
	if len(es) == 0 {
		return ""
	}
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%d× %s", e.Count, e.What))
	}
	return ": " + strings.Join(parts, ", ")
}

// ErrorKind shortens a failed request's outcome to its kind: "status 503",
// or the last part of a transport error ("connection refused").
func ErrorKind(status int, err string) string {
	if err == "" {
		return fmt.Sprintf("status %d", status)
	}
	if i := strings.LastIndex(err, ": "); i >= 0 {
		err = err[i+2:]
	}
	if strings.Contains(err, "Client.Timeout") || strings.Contains(err, "deadline exceeded") {
		return "timeout"
	}
	return err
}

// CountErrors groups failures by kind, most frequent first (then by name).
func CountErrors(kinds []string) []ErrorCount {
	m := map[string]int{}
	for _, k := range kinds {
		m[k]++
	}
	var out []ErrorCount
	for k, n := range m {
		out = append(out, ErrorCount{What: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].What < out[j].What
	})
	return out
}

// WriteSummary prints the table of every scenario and the overall result.
func WriteSummary(w io.Writer, scs []*Scenario, took time.Duration) {
	fmt.Fprintln(w, "== summary ==")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tscenario\tserved by\tmoved\tgap\tfailed\t2 holders\tverdict")
	passed, requests, failed, planned := 0, 0, 0, 0
	for _, s := range scs {
		o := s.Outcome
		two := "never"
		if o.MaxHolders > 1 {
			two = Millis(o.DoubleFor)
		}
		v := "FAIL"
		if s.Verdict.Pass {
			v = "PASS"
			passed++
		}
		moved := "-"
		if o.Moved > 0 {
			moved = Millis(o.Moved)
		}
		requests += o.Requests
		failed += o.Failures
		if s.Expect.NoFailures {
			planned += o.Failures
		}
		fmt.Fprintf(tw, "%d\t%s\t%s→%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.N, s.Title, orNone(o.Before), orNone(o.After), moved, Millis(o.Gap), o.Failures, o.Requests, two, v)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d requests through the VIP, %d failed (%d in planned handovers)\n", requests, failed, planned)
	if passed == len(scs) {
		fmt.Fprintf(w, "all %d scenarios passed in %s\n", len(scs), took.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(w, "FAILED: %d of %d scenarios (verdicts above); %s in all\n", len(scs)-passed, len(scs), took.Round(100*time.Millisecond))
	}
}
