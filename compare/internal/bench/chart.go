package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// The charts are drawn by hand: a frame, a logarithmic x axis, a linear y
// axis from zero, one polyline per kind with its points marked and
// labelled, and an optional horizontal reference line.

const (
	chartW, chartH         = 720, 420
	padL, padR, padT, padB = 70, 170, 50, 60
)

var kindColor = map[Kind]string{Synstack: "#1f77b4", GVisor: "#ff7f0e", Kernel: "#555555"}

type series struct {
	kind   Kind
	label  string
	points []Point // sorted by X
	labels []string
}

type chart struct {
	title, xLabel, yLabel string
	series                []series
	ref                   *float64 // a horizontal dashed line: the kernel's, or a target
	refLegend, refLabel   string
	xTicks                []float64
	xTick                 func(float64) string
}

// BulkChart draws throughput (Gbit/s) against MTU for synstack and gVisor,
// with the kernel's loopback as a reference line. It returns nil when the
// report has no bulk points.
func BulkChart(r *Report) []byte {
	c := chart{
		title:  "Bulk throughput, one connection, against link MTU",
		xLabel: "link MTU (bytes, log scale)",
		yLabel: "Gbit/s",
		xTick:  func(x float64) string { return fmt.Sprintf("%.0f", x) },
	}
	for _, k := range []Kind{Synstack, GVisor} {
		s := series{kind: k, label: string(k)}
		for _, p := range r.BulkByMTU {
			if p.Kind == k {
				g := p.Y * 8 / 1000
				s.points = append(s.points, Point{Kind: k, X: p.X, Y: g})
				s.labels = append(s.labels, fmt.Sprintf("%.1f", g))
				if !slices.Contains(c.xTicks, p.X) {
					c.xTicks = append(c.xTicks, p.X)
				}
			}
		}
		if len(s.points) > 0 {
			c.series = append(c.series, s)
		}
	}
	for _, p := range r.BulkByMTU {
		if p.Kind == Kernel {
			g := p.Y * 8 / 1000
			c.ref = &g
			c.refLegend = "kernel, lo"
			c.refLabel = fmt.Sprintf("MTU %d: %.1f Gbit/s", KernelMTU, g)
		}
	}
	if len(c.series) == 0 {
		return nil
	}
	return c.svg()
}

// HeapChart draws the Go heap per idle connection (both ends) against the
// number of connections, each point labelled with the total, and the
// issue's target (1.5 KiB per endpoint) as a reference line. It returns
// nil when the report has no idle points.
func HeapChart(r *Report) []byte {
	target := float64(TargetIdleBytesPerEndpoint * 2)
	c := chart{
		title:     "Go heap per idle established connection (both ends)",
		xLabel:    "idle connections (log scale)",
		yLabel:    "bytes per connection",
		xTick:     func(x float64) string { return fmt.Sprintf("%.0f", x) },
		ref:       &target,
		refLegend: "target",
		refLabel:  fmt.Sprintf("1.5 KiB/endpoint: %.0f B", target),
	}
	for _, k := range []Kind{Synstack, GVisor} {
		s := series{kind: k, label: string(k)}
		for _, p := range r.HeapByConns {
			if p.Kind == k {
				s.points = append(s.points, p)
				s.labels = append(s.labels, fmt.Sprintf("%.0f B (%.0f MiB)", p.Y, p.X*p.Y/(1<<20)))
				if !slices.Contains(c.xTicks, p.X) {
					c.xTicks = append(c.xTicks, p.X)
				}
			}
		}
		if len(s.points) > 0 {
			c.series = append(c.series, s)
		}
	}
	if len(c.series) == 0 {
		return nil
	}
	return c.svg()
}

// TargetIdleBytesPerEndpoint is issue #8's bound on the heap of an idle
// established endpoint.
const TargetIdleBytesPerEndpoint = 1536

func (c *chart) svg() []byte {
	slices.Sort(c.xTicks)
	for i := range c.series {
		s := &c.series[i]
		idx := make([]int, len(s.points))
		for j := range idx {
			idx[j] = j
		}
		slices.SortFunc(idx, func(a, b int) int {
			switch {
			case s.points[a].X < s.points[b].X:
				return -1
			case s.points[a].X > s.points[b].X:
				return 1
			}
			return 0
		})
		ps, ls := make([]Point, len(idx)), make([]string, len(idx))
		for j, o := range idx {
			ps[j], ls[j] = s.points[o], s.labels[o]
		}
		s.points, s.labels = ps, ls
	}
	xmin, xmax := c.xTicks[0], c.xTicks[len(c.xTicks)-1]
	if xmax <= xmin {
		xmin, xmax = xmin/2, xmin*2
	}
	ymax := 0.0
	for _, s := range c.series {
		for _, p := range s.points {
			ymax = math.Max(ymax, p.Y)
		}
	}
	if c.ref != nil {
		ymax = math.Max(ymax, *c.ref)
	}
	step := niceStep(ymax / 5)
	ytop := math.Ceil(ymax*1.05/step) * step
	if ytop <= 0 {
		ytop, step = 1, 0.2
	}
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	X := func(x float64) float64 {
		return padL + (math.Log(x)-math.Log(xmin))/(math.Log(xmax)-math.Log(xmin))*plotW
	}
	Y := func(y float64) float64 { return padT + plotH - y/ytop*plotH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.title))
	// Grid and y ticks.
	for y := 0.0; y <= ytop+step/2; y += step {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", padL, Y(y), padL+plotW, Y(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, Y(y)+4, trimFloat(y))
	}
	// x ticks.
	for _, x := range c.xTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", X(x), float64(padT), X(x), padT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", X(x), padT+plotH+16, esc(c.xTick(x)))
	}
	// Frame and axis labels.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", padL, padT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, chartH-16, esc(c.xLabel))
	fmt.Fprintf(&b, `<text x="18" y="%.1f" text-anchor="middle" transform="rotate(-90 18 %.1f)">%s</text>`+"\n", padT+plotH/2, padT+plotH/2, esc(c.yLabel))
	// The reference line.
	legendY := padT + 10
	if c.ref != nil {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="6 4"/>`+"\n", padL, Y(*c.ref), padL+plotW, Y(*c.ref), kindColor[Kernel])
	}
	// The lines, their points and labels: a label goes above its point
	// when the point is the highest at its x, below otherwise.
	top := map[float64]float64{}
	for _, s := range c.series {
		for _, p := range s.points {
			if y, ok := top[p.X]; !ok || p.Y > y {
				top[p.X] = p.Y
			}
		}
	}
	for _, s := range c.series {
		col := kindColor[s.kind]
		var pts bytes.Buffer
		for _, p := range s.points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", X(p.X), Y(p.Y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2.5" points="%s"/>`+"\n", col, bytes.TrimSpace(pts.Bytes()))
		for i, p := range s.points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", X(p.X), Y(p.Y), col)
			dy, anchor := -8.0, "middle"
			if p.Y < top[p.X] {
				dy = 16
			}
			switch p.X {
			case xmin:
				anchor = "start"
			case xmax:
				anchor = "end"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" font-size="11" text-anchor="%s">%s</text>`+"\n", X(p.X), Y(p.Y)+dy, col, anchor, esc(s.labels[i]))
		}
	}
	// Legend.
	lx := float64(padL) + plotW + 14
	for _, s := range c.series {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2.5"/>`+"\n", lx, legendY, lx+22, legendY, kindColor[s.kind])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", lx+28, legendY+4, esc(s.label))
		legendY += 20
	}
	if c.ref != nil {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="6 4"/>`+"\n", lx, legendY, lx+22, legendY, kindColor[Kernel])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", lx+28, legendY+4, esc(c.refLegend))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s</text>`+"\n", lx, legendY+22, esc(c.refLabel))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	if s <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%g", math.Round(f*1000)/1000)
}

func esc(s string) string { return html.EscapeString(s) }
