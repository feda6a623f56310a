package main

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Chart geometry, in pixels: one row per metric over the measured phase.
const (
	chartWidth  = 1000
	rowHeight   = 230
	legendH     = 36
	plotLeft    = 64 // room for the y tick labels
	plotRight   = 20
	rowTop      = 28 // the metric's title above the plot
	rowBottom   = 32 // the x tick labels below it
	dotPeriod   = 6  // dotted lines: 3 pixels on, 3 off
	strokeWidth = 2
	cpuSpan     = 5 // samples a CPU rate is averaged over
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	// One color per store (Okabe–Ito, legible to color-blind eyes).
	storeColors = map[string]color.RGBA{storeConsul: {0, 114, 178, 255}, storeBolt: {230, 159, 0, 255}}
	otherColor  = color.RGBA{0, 158, 115, 255}
)

// line is one series of a panel.
type line struct {
	color  color.RGBA
	dotted bool
	xs, ys []float64
}

// panel is one row: a title and its series over time.
type panel struct {
	title string
	lines []line
}

// drawChart draws a row per metric, time on the x axis, a color per store:
// fan-out latency, publish latency, manager RSS and CPU.
func drawChart(w io.Writer, r *report) error {
	panels := chartPanels(r)
	pal := color.Palette{white, black, grid, otherColor}
	for _, c := range []string{storeConsul, storeBolt} {
		pal = append(pal, storeColors[c])
	}
	img := image.NewPaletted(image.Rect(0, 0, chartWidth, legendH+len(panels)*rowHeight), pal)
	fill(img, img.Bounds(), white)
	x := plotLeft
	for _, res := range r.Results {
		fill(img, image.Rect(x, 12, x+14, 26), colorOf(res.Store))
		label := "manager on " + res.Store
		text(img, x+20, 24, label, black)
		x += 20 + 7*len(label) + 24
	}
	xmax := 1.0
	for _, res := range r.Results {
		xmax = max(xmax, res.DurationSec)
	}
	for i, p := range panels {
		top := legendH + i*rowHeight
		text(img, plotLeft, top+18, p.title, black)
		plot := image.Rect(plotLeft, top+rowTop, chartWidth-plotRight, top+rowHeight-rowBottom)
		drawPanel(img, plot, p, xmax)
	}
	return png.Encode(w, img)
}

func colorOf(store string) color.RGBA {
	if c, ok := storeColors[store]; ok {
		return c
	}
	return otherColor
}

// chartPanels turns the results into the four rows.
func chartPanels(r *report) []panel {
	fan := panel{title: "Long-poll fan-out per window, ms (solid p99, dotted p50; by publish time)"}
	pub := panel{title: "Publish latency per window, ms (solid p99, dotted p50)"}
	rss := panel{title: "Manager RSS, MiB (VmRSS every second)"}
	cpu := panel{title: "CPU, cores over 5 s (solid: hydra-manager; dotted: the Consul agent)"}
	for _, res := range r.Results {
		c := colorOf(res.Store)
		var f99, f50, p99, p50 line
		for _, l := range []*line{&f99, &f50, &p99, &p50} {
			l.color = c
		}
		f50.dotted, p50.dotted = true, true
		for _, s := range res.Windows {
			if s.Fanout.N > 0 {
				f99.add(s.T, s.Fanout.P99)
				f50.add(s.T, s.Fanout.P50)
			}
			if s.Publish.N > 0 {
				p99.add(s.T, s.Publish.P99)
				p50.add(s.T, s.Publish.P50)
			}
		}
		fan.lines = append(fan.lines, f99, f50)
		pub.lines = append(pub.lines, p99, p50)
		mem, mgr, cons := line{color: c}, line{color: c}, line{color: c, dotted: true}
		for i, p := range res.Timeline {
			if p.T < 0 || p.T > res.DurationSec+0.5 { // the drain is not charted
				continue
			}
			mem.add(p.T, p.ManagerRSS)
			// CPU over the last cpuSpan samples: /proc counts in 10 ms
			// ticks and one-second rates are mostly that noise.
			if i < cpuSpan {
				continue
			}
			prev := res.Timeline[i-cpuSpan]
			if dt := p.T - prev.T; dt > 0 {
				mgr.add(p.T, (p.ManagerCPU-prev.ManagerCPU)/dt)
				if res.Store == storeConsul {
					cons.add(p.T, (p.ConsulCPU-prev.ConsulCPU)/dt)
				}
			}
		}
		rss.lines = append(rss.lines, mem)
		cpu.lines = append(cpu.lines, mgr, cons)
	}
	return []panel{fan, pub, rss, cpu}
}

func (l *line) add(x, y float64) {
	l.xs = append(l.xs, x)
	l.ys = append(l.ys, y)
}

// drawPanel draws the axes and lines of one row, y from zero to a round
// number above the highest value, x from 0 to xmax seconds.
func drawPanel(img *image.Paletted, plot image.Rectangle, p panel, xmax float64) {
	ymax := 0.0
	for _, l := range p.lines {
		for _, y := range l.ys {
			ymax = max(ymax, y)
		}
	}
	ymax = max(ymax*1.08, 1e-3)
	ystep := niceStep(ymax / 5)
	ymax = math.Ceil(ymax/ystep) * ystep
	px := func(x float64) int { return plot.Min.X + int(x/xmax*float64(plot.Dx())) }
	py := func(y float64) int { return plot.Max.Y - int(y/ymax*float64(plot.Dy())) }
	for v := 0.0; v <= ymax+ystep/2; v += ystep {
		fill(img, image.Rect(plot.Min.X, py(v), plot.Max.X, py(v)+1), grid)
		label := trimFloat(v)
		text(img, plot.Min.X-6-7*len(label), py(v)+4, label, black)
	}
	xstep := niceStep(xmax / 10)
	for v := 0.0; v <= xmax+xstep/100; v += xstep {
		fill(img, image.Rect(px(v), plot.Max.Y, px(v)+1, plot.Max.Y+4), black)
		label := trimFloat(v) + "s"
		text(img, px(v)-7*len(label)/2, plot.Max.Y+17, label, black)
	}
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), black)
	fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y), black)
	for _, l := range p.lines {
		var pts []image.Point
		for i := range l.xs {
			pts = append(pts, image.Pt(px(l.xs[i]), py(l.ys[i])))
		}
		polyline(img, pts, l.color, l.dotted)
	}
}

// polyline joins the points with straight strokes; a lone point is a dot.
func polyline(img *image.Paletted, pts []image.Point, c color.RGBA, dotted bool) {
	if len(pts) == 1 {
		fill(img, image.Rect(pts[0].X-2, pts[0].Y-2, pts[0].X+3, pts[0].Y+3), c)
		return
	}
	step := 0
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		n := max(abs(b.X-a.X), abs(b.Y-a.Y), 1)
		for k := 0; k <= n; k++ {
			step++
			if dotted && step%dotPeriod >= dotPeriod/2 {
				continue
			}
			x := a.X + (b.X-a.X)*k/n
			y := a.Y + (b.Y-a.Y)*k/n
			fill(img, image.Rect(x, y, x+strokeWidth, y+strokeWidth), c)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// niceStep rounds a raw tick step up to 1, 2, 2.5 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= raw {
			return m * pow
		}
	}
	return 10 * pow
}

// trimFloat prints a tick value without trailing zeros: 0.25, 1.5, 200.
func trimFloat(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

func fill(img *image.Paletted, r image.Rectangle, c color.Color) {
	idx := uint8(img.Palette.Index(c)) //nolint:gosec // G115: the palette has a handful of entries
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetColorIndex(x, y, idx)
		}
	}
}

func text(img *image.Paletted, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
