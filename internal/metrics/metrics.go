// Package metrics is a small Prometheus client: counters, gauges and
// histograms, with or without labels, and the process and Go runtime
// series operators expect, written in the Prometheus text exposition
// format (version 0.0.4). It exists so that the daemon does not link the
// full client library and its protobuf code for a few dozen series.
//
// Updating a series (Inc, Add, Set, Observe) is lock-free and allocation
// free; look a labelled series up once (With) and keep it where it is
// updated often. A Registry is safe for concurrent use.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metric families and writes them.
type Registry struct {
	mu       sync.Mutex
	families []family
}

// family is one metric name with its HELP and TYPE.
type family interface {
	meta() *desc
	// write appends the family's sample lines (without HELP and TYPE).
	write(w *bufio.Writer)
}

type desc struct {
	name, help, typ string
	labels          []string
	order           []int // indexes of labels sorted by name: the order they are written in
}

func newDesc(name, help, typ string, labels []string) desc {
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return desc{name: name, help: help, typ: typ, labels: labels, order: order}
}

func (d *desc) meta() *desc { return d }

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) register(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := f.meta().name
	for _, g := range r.families {
		if g.meta().name == n {
			panic("metrics: " + n + " registered twice")
		}
	}
	r.families = append(r.families, f)
}

// ContentType is the media type of what WriteTo writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteTo writes every family, sorted by name, in the text format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fams := slices.Clone(r.families)
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.meta().name, b.meta().name) })
	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	for _, f := range fams {
		d := f.meta()
		bw.WriteString("# HELP ")
		bw.WriteString(d.name)
		bw.WriteByte(' ')
		bw.WriteString(helpEscaper.Replace(d.help))
		bw.WriteString("\n# TYPE ")
		bw.WriteString(d.name)
		bw.WriteByte(' ')
		bw.WriteString(d.typ)
		bw.WriteByte('\n')
		f.write(bw)
	}
	err := bw.Flush()
	return cw.n, err
}

// Handler serves the registry over HTTP (GET /metrics).
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ContentType)
		_, _ = r.WriteTo(w)
	})
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// formatFloat writes v as the text format does: Go's shortest 'g' form,
// with +Inf, -Inf and NaN spelled out.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// writeSample writes one line: name{labels,extra} value, the labels in
// the order of d.order (by name, as the Prometheus clients write them),
// extra (a histogram's le) last. A label whose value is empty is left out:
// Prometheus reads an empty label as an absent one, so a series that has a
// label only sometimes (the daemon's group) reads the same either way.
func writeSample(w *bufio.Writer, d *desc, suffix string, values []string, extraName, extraValue string, v float64) {
	w.WriteString(d.name)
	w.WriteString(suffix)
	open := false
	label := func(name, value string) {
		if open {
			w.WriteByte(',')
		} else {
			w.WriteByte('{')
			open = true
		}
		w.WriteString(name)
		w.WriteString(`="`)
		w.WriteString(value)
		w.WriteByte('"')
	}
	for _, i := range d.order {
		if values[i] != "" {
			label(d.labels[i], labelEscaper.Replace(values[i]))
		}
	}
	if extraName != "" {
		label(extraName, extraValue)
	}
	if open {
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

// value is a float64 updated atomically.
type value struct{ bits atomic.Uint64 }

func (v *value) load() float64 { return math.Float64frombits(v.bits.Load()) }

func (v *value) set(f float64) { v.bits.Store(math.Float64bits(f)) }

func (v *value) add(f float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+f)) {
			return
		}
	}
}

// Counter is a value that only goes up.
type Counter struct{ v value }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds d, which must not be negative.
func (c *Counter) Add(d float64) {
	if d < 0 {
		panic("metrics: counter decreased")
	}
	c.v.add(d)
}

// Value returns the current count.
func (c *Counter) Value() float64 { return c.v.load() }

// Gauge is a value that goes up and down.
type Gauge struct{ v value }

// Set sets the gauge to f.
func (g *Gauge) Set(f float64) { g.v.set(f) }

// Add adds d (which may be negative).
func (g *Gauge) Add(d float64) { g.v.add(d) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.add(-1) }

// Value returns the gauge's value.
func (g *Gauge) Value() float64 { return g.v.load() }

// Histogram counts observations in cumulative buckets.
type Histogram struct {
	upper  []float64 // bucket upper bounds, ascending; +Inf implied
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    value
}

func newHistogram(upper []float64) *Histogram {
	return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper))}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	if i, _ := slices.BinarySearch(h.upper, v); i < len(h.upper) {
		h.counts[i].Add(1)
	}
	h.count.Add(1)
	h.sum.add(v)
}

func (h *Histogram) write(w *bufio.Writer, d *desc, values []string) {
	var cum uint64
	for i, u := range h.upper {
		cum += h.counts[i].Load()
		writeSample(w, d, "_bucket", values, "le", formatFloat(u), float64(cum))
	}
	n := h.count.Load()
	writeSample(w, d, "_bucket", values, "le", "+Inf", float64(n))
	writeSample(w, d, "_sum", values, "", "", h.sum.load())
	writeSample(w, d, "_count", values, "", "", float64(n))
}

// ExponentialBuckets returns count upper bounds: start, start×factor, …
func ExponentialBuckets(start, factor float64, count int) []float64 {
	if start <= 0 || factor <= 1 || count < 1 {
		panic("metrics: ExponentialBuckets needs start > 0, factor > 1, count ≥ 1")
	}
	out := make([]float64, count)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// NewCounter registers a counter without labels.
func (r *Registry) NewCounter(name, help string) *Counter {
	c := &Counter{}
	r.NewCounterFunc(name, help, c.Value)
	return c
}

// NewGauge registers a gauge without labels.
func (r *Registry) NewGauge(name, help string) *Gauge {
	g := &Gauge{}
	r.NewGaugeFunc(name, help, g.Value)
	return g
}

// NewCounterFunc registers a counter whose value fn gives at each scrape.
func (r *Registry) NewCounterFunc(name, help string, fn func() float64) {
	r.register(newFuncFamily(newDesc(name, help, "counter", nil), fn))
}

// NewGaugeFunc registers a gauge whose value fn gives at each scrape.
func (r *Registry) NewGaugeFunc(name, help string, fn func() float64) {
	r.register(newFuncFamily(newDesc(name, help, "gauge", nil), fn))
}

// NewHistogram registers a histogram without labels.
func (r *Registry) NewHistogram(name, help string, buckets []float64) *Histogram {
	h := newHistogram(checkBuckets(name, buckets))
	f := &funcFamily{desc: newDesc(name, help, "histogram", nil)}
	f.fn = func(w *bufio.Writer) { h.write(w, &f.desc, nil) }
	r.register(f)
	return h
}

func newFuncFamily(d desc, fn func() float64) *funcFamily {
	f := &funcFamily{desc: d}
	f.fn = func(w *bufio.Writer) { writeSample(w, &f.desc, "", nil, "", "", fn()) }
	return f
}

func checkBuckets(name string, buckets []float64) []float64 {
	if !slices.IsSorted(buckets) {
		panic("metrics: " + name + ": buckets not ascending")
	}
	return slices.Clone(buckets)
}

// funcFamily writes its samples with a function.
type funcFamily struct {
	desc
	fn func(w *bufio.Writer)
}

func (f *funcFamily) write(w *bufio.Writer) { f.fn(w) }

// vec is a family of series told apart by label values.
type vec[T any] struct {
	desc
	mk  func() *T
	out func(w *bufio.Writer, d *desc, values []string, m *T)

	mu     sync.Mutex
	series map[string]*entry[T] // by joined label values
}

type entry[T any] struct {
	values []string
	m      *T
}

func newVec[T any](d desc, mk func() *T, out func(*bufio.Writer, *desc, []string, *T)) *vec[T] {
	return &vec[T]{desc: d, mk: mk, out: out, series: map[string]*entry[T]{}}
}

func (v *vec[T]) key(values []string) string {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s: %d label values for %d labels", v.name, len(values), len(v.labels)))
	}
	return strings.Join(values, "\xff")
}

// with returns the series for values, creating it.
func (v *vec[T]) with(values []string) *T {
	k := v.key(values)
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.series[k]
	if e == nil {
		e = &entry[T]{values: slices.Clone(values), m: v.mk()}
		v.series[k] = e
	}
	return e.m
}

// delete forgets the series for values; it reports whether there was one.
func (v *vec[T]) delete(values []string) bool {
	k := v.key(values)
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.series[k]
	delete(v.series, k)
	return ok
}

// reset forgets every series.
func (v *vec[T]) reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.series)
}

func (v *vec[T]) write(w *bufio.Writer) {
	v.mu.Lock()
	es := make([]*entry[T], 0, len(v.series))
	for _, e := range v.series {
		es = append(es, e)
	}
	v.mu.Unlock()
	slices.SortFunc(es, func(a, b *entry[T]) int {
		for _, i := range v.order {
			if c := strings.Compare(a.values[i], b.values[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	for _, e := range es {
		v.out(w, &v.desc, e.values, e.m)
	}
}

// CounterVec is a counter per combination of label values.
type CounterVec struct{ v *vec[Counter] }

// NewCounterVec registers a counter with labels.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	v := newVec(newDesc(name, help, "counter", labels), func() *Counter { return &Counter{} },
		func(w *bufio.Writer, d *desc, values []string, c *Counter) {
			writeSample(w, d, "", values, "", "", c.Value())
		})
	r.register(v)
	return &CounterVec{v}
}

// With returns the counter for the label values, creating it at zero.
func (c *CounterVec) With(values ...string) *Counter { return c.v.with(values) }

// Delete removes the series of the label values.
func (c *CounterVec) Delete(values ...string) bool { return c.v.delete(values) }

// GaugeVec is a gauge per combination of label values.
type GaugeVec struct{ v *vec[Gauge] }

// NewGaugeVec registers a gauge with labels.
func (r *Registry) NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	v := newVec(newDesc(name, help, "gauge", labels), func() *Gauge { return &Gauge{} },
		func(w *bufio.Writer, d *desc, values []string, g *Gauge) {
			writeSample(w, d, "", values, "", "", g.Value())
		})
	r.register(v)
	return &GaugeVec{v}
}

// With returns the gauge for the label values, creating it at zero.
func (g *GaugeVec) With(values ...string) *Gauge { return g.v.with(values) }

// Delete removes the series of the label values.
func (g *GaugeVec) Delete(values ...string) bool { return g.v.delete(values) }

// Reset removes every series.
func (g *GaugeVec) Reset() { g.v.reset() }

// HistogramVec is a histogram per combination of label values.
type HistogramVec struct{ v *vec[Histogram] }

// NewHistogramVec registers a histogram with labels.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	buckets = checkBuckets(name, buckets)
	v := newVec(newDesc(name, help, "histogram", labels), func() *Histogram { return newHistogram(buckets) },
		func(w *bufio.Writer, d *desc, values []string, h *Histogram) { h.write(w, d, values) })
	r.register(v)
	return &HistogramVec{v}
}

// With returns the histogram for the label values, creating it empty.
func (h *HistogramVec) With(values ...string) *Histogram { return h.v.with(values) }

// Delete removes the series of the label values.
func (h *HistogramVec) Delete(values ...string) bool { return h.v.delete(values) }
