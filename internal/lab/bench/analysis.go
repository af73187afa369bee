package bench

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hbdproject/hbd/internal/lab"
)

// goodByEnd returns the good results sorted by finish time.
func goodByEnd(rs lab.ProbeResults) lab.ProbeResults {
	var g lab.ProbeResults
	for _, r := range rs {
		if r.OK() {
			g = append(g, r)
		}
	}
	slices.SortStableFunc(g, func(a, b lab.ProbeResult) int { return a.End().Compare(b.End()) })
	return g
}

// firstGoodFrom is the first good response from node that finished after t.
func firstGoodFrom(rs lab.ProbeResults, t time.Time, node string) (lab.ProbeResult, bool) {
	for _, r := range goodByEnd(rs) {
		if r.End().After(t) && r.ServedBy == node {
			return r, true
		}
	}
	return lab.ProbeResult{}, false
}

// failuresBetween counts the failed requests of an outage from..to: every
// failed request that was in flight at any moment of it, that is, started
// before to and finished after from, whenever it finished. A request that
// started in the outage and timed out after the first good answer counts
// (it failed because of the outage); so does one in flight at from. A zero
// to leaves the end open.
func failuresBetween(rs lab.ProbeResults, from, to time.Time) int {
	n := 0
	for _, r := range rs {
		if !r.OK() && r.End().After(from) && (to.IsZero() || r.Start.Before(to)) {
			n++
		}
	}
	return n
}

// outage is the outage a fault at t0 caused: the longest interval between
// two consecutive good responses (by finish time) that ends after t0 and no
// later than the first good response from the standby. That is
// last-good → first-good even when an answer already in flight at t0 still
// arrived from the old master. ok is false if the standby never answered or
// nothing answered before t0.
func outage(rs lab.ProbeResults, t0 time.Time, standby string) (lab.Gap, bool) {
	first, ok := firstGoodFrom(rs, t0, standby)
	if !ok {
		return lab.Gap{}, false
	}
	g := goodByEnd(rs)
	var best lab.Gap
	found := false
	for i := 1; i < len(g); i++ {
		to := g[i].End()
		if to.After(first.End()) {
			break
		}
		if !to.After(t0) {
			continue
		}
		cand := lab.Gap{From: g[i-1].End(), To: to}
		if !found || cand.Duration() > best.Duration() {
			best, found = cand, true
		}
	}
	if !found {
		return lab.Gap{}, false
	}
	best.Failures = failuresBetween(rs, best.From, best.To)
	return best, true
}

// longestGapAfter is the longest interval between consecutive good
// responses that ends after t (zero if there is none).
func longestGapAfter(rs lab.ProbeResults, t time.Time) time.Duration {
	g := goodByEnd(rs)
	var best time.Duration
	for i := 1; i < len(g); i++ {
		if g[i].End().After(t) {
			best = max(best, g[i].End().Sub(g[i-1].End()))
		}
	}
	return best
}

// TimelinePoint is one probe of the run drawn in timeline.png: when it
// started relative to the cable pull and who answered ("" for a failure).
type TimelinePoint struct {
	Tool     string
	Setting  string
	OffsetMS float64
	Node     string
}

// timelinePoints converts a run's probe results, relative to t0.
func timelinePoints(tool, setting string, rs lab.ProbeResults, t0 time.Time) []TimelinePoint {
	out := make([]TimelinePoint, 0, len(rs))
	for _, r := range rs {
		p := TimelinePoint{Tool: tool, Setting: setting, OffsetMS: ms(r.Start.Sub(t0))}
		if r.OK() {
			p.Node = r.ServedBy
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b TimelinePoint) int {
		switch {
		case a.OffsetMS < b.OffsetMS:
			return -1
		case a.OffsetMS > b.OffsetMS:
			return 1
		}
		return 0
	})
	return out
}

var timelineHeader = []string{"tool", "setting", "offset_ms", "served_by"}

// WriteTimelineCSV writes timeline points as CSV with a header; a failed
// probe has an empty served_by.
func WriteTimelineCSV(w io.Writer, pts []TimelinePoint) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(timelineHeader); err != nil {
		return err
	}
	for _, p := range pts {
		if err := cw.Write([]string{p.Tool, p.Setting, strconv.FormatFloat(p.OffsetMS, 'f', 3, 64), p.Node}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadTimelineCSV reads what WriteTimelineCSV wrote.
func ReadTimelineCSV(r io.Reader) ([]TimelinePoint, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(timelineHeader)
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("bench: reading timeline CSV: %w", err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], timelineHeader) {
		return nil, fmt.Errorf("bench: reading timeline CSV: want header %v", timelineHeader)
	}
	var out []TimelinePoint
	for i, rec := range recs[1:] {
		v, err := strconv.ParseFloat(rec[2], 64)
		if err != nil {
			return nil, fmt.Errorf("bench: timeline CSV line %d: %w", i+2, err)
		}
		out = append(out, TimelinePoint{Tool: rec[0], Setting: rec[1], OffsetMS: v, Node: rec[3]})
	}
	return out, nil
}

// phaseStats is the sum (seconds) and count of one phase of
// hbd_failover_phase_seconds.
type phaseStats struct {
	Sum   float64
	Count float64
}

// parsePhases reads the _sum and _count series of hbd_failover_phase_seconds
// from Prometheus text exposition, by phase label.
func parsePhases(text string) map[string]phaseStats {
	out := map[string]phaseStats{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		var isSum bool
		switch name {
		case "hbd_failover_phase_seconds_sum":
			isSum = true
		case "hbd_failover_phase_seconds_count":
		default:
			continue
		}
		labels, val, ok := strings.Cut(rest, "}")
		if !ok {
			continue
		}
		phase := ""
		for _, l := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "phase="); ok {
				phase = strings.Trim(v, `"`)
			}
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if phase == "" || err != nil {
			continue
		}
		s := out[phase]
		if isSum {
			s.Sum = f
		} else {
			s.Count = f
		}
		out[phase] = s
	}
	return out
}
