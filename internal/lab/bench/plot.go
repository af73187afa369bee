package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	colorHBD        = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	colorKeepalived = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff} // orange
	colorFailed     = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff} // red
	nodeColors      = []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	}
)

func toolColor(tool string) color.Color {
	if tool == ToolHBD {
		return colorHBD
	}
	return colorKeepalived
}

// PlotFailover writes failover.png: a box plot (Tukey: box = quartiles,
// whiskers to 1.5 × IQR, points beyond) of the cable-pull outage
// (last good → first good response) per setting and tool, on a log axis.
func PlotFailover(w io.Writer, samples []Sample) error {
	p := plot.New()
	p.Title.Text = "Cable pull on the master: last good → first good response through the VIP"
	p.Y.Label.Text = "outage (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	var names []string
	lo, hi := math.Inf(1), math.Inf(-1)
	x := 0.0
	for _, set := range []string{SettingDefaults, SettingMatched, SettingFastest} {
		for _, tool := range []string{ToolHBD, ToolKeepalived} {
			var vs plotter.Values
			for _, v := range Values(samples, tool, set, ScenarioCablePull, "gap_ms") {
				if v > 0 {
					vs = append(vs, v)
				}
			}
			if len(vs) == 0 {
				continue
			}
			for _, v := range vs {
				lo, hi = min(lo, v), max(hi, v)
			}
			bp, err := plotter.NewBoxPlot(vg.Points(28), x, vs)
			if err != nil {
				return fmt.Errorf("bench: box plot %s/%s: %w", tool, set, err)
			}
			bp.FillColor = withAlpha(toolColor(tool), 0x80)
			bp.GlyphStyle.Color = toolColor(tool)
			p.Add(bp)
			names = append(names, fmt.Sprintf("%s\n%s (n=%d)", tool, set, len(vs)))
			x++
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("bench: no cable-pull samples to plot")
	}
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = lo/1.5, hi*1.5 // room above and below on the log axis
	p.Add(plotter.NewGrid())
	return writePNG(w, p, 8*vg.Inch, 5*vg.Inch)
}

// PlotTimeline writes timeline.png: one cable pull per tool, each probe (a
// new connection every 5 ms) a point at its start time relative to the pull,
// in the row of the node that answered it or of "failed".
func PlotTimeline(w io.Writer, pts []TimelinePoint) error {
	if len(pts) == 0 {
		return fmt.Errorf("bench: no timeline points to plot")
	}
	type row struct{ tool, node string }
	var tools, nodes []string
	for _, pt := range pts {
		if !slices.Contains(tools, pt.Tool) {
			tools = append(tools, pt.Tool)
		}
		if pt.Node != "" && !slices.Contains(nodes, pt.Node) {
			nodes = append(nodes, pt.Node)
		}
	}
	slices.Sort(nodes)
	slices.SortFunc(tools, func(a, b string) int { return toolOrder(a) - toolOrder(b) })
	var rows []row
	var labels []string
	// Bottom to top: the last tool first, so the first tool is on top.
	for _, tool := range slices.Backward(tools) {
		rows = append(rows, row{tool, ""})
		labels = append(labels, tool+": failed")
		for _, n := range slices.Backward(nodes) {
			rows = append(rows, row{tool, n})
			labels = append(labels, tool+": "+n)
		}
	}
	p := plot.New()
	setting := pts[0].Setting
	p.Title.Text = fmt.Sprintf("One cable pull at %s: who answered each probe (a new connection every 5 ms)", setting)
	p.X.Label.Text = "ms since the master's cable was pulled (probe start)"
	for i, r := range rows {
		var xys plotter.XYs
		for _, pt := range pts {
			if pt.Tool == r.tool && pt.Node == r.node {
				xys = append(xys, plotter.XY{X: pt.OffsetMS, Y: float64(i)})
			}
		}
		if len(xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("bench: timeline scatter: %w", err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: colorFailed, Radius: vg.Points(1.6), Shape: draw.BoxGlyph{}}
		if r.node != "" {
			s.GlyphStyle.Color = nodeColors[slices.Index(nodes, r.node)%len(nodeColors)]
		}
		p.Add(s)
	}
	// From shortly before the fault: earlier probes only repeat the steady state.
	lo := pts[0].OffsetMS
	for _, pt := range pts {
		lo = min(lo, pt.OffsetMS)
	}
	p.X.Min = max(lo, -300)
	p.NominalY(labels...)
	p.Y.Min, p.Y.Max = -0.5, float64(len(rows))-0.5
	p.Add(plotter.NewGrid())
	return writePNG(w, p, 10*vg.Inch, 4*vg.Inch)
}

func toolOrder(t string) int {
	switch t {
	case ToolHBD:
		return 0
	case ToolKeepalived:
		return 1
	}
	return 2
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: a}
}

func writePNG(w io.Writer, p *plot.Plot, width, height vg.Length) error {
	wt, err := p.WriterTo(width, height, "png")
	if err != nil {
		return fmt.Errorf("bench: rendering PNG: %w", err)
	}
	_, err = wt.WriteTo(w)
	return err
}

// logTicks marks 1-2-5 steps on a log axis, which reads better than
// plot.LogTicks' powers of ten over a range of one or two decades.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	if lo <= 0 || hi <= lo {
		return ts
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for _, m := range []float64{1, 2, 5} {
			v := m * base
			if v < lo || v > hi {
				continue
			}
			ts = append(ts, plot.Tick{Value: v, Label: fmtNum(v)})
		}
	}
	return ts
}
