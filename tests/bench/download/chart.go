package main

import (
	"fmt"
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

// Chart geometry, in pixels: a row per metric, a cell per shape.
const (
	chartWidth  = 1100
	rowHeight   = 250
	legendH     = 40
	marginLeft  = 10
	marginRight = 10
	axisW       = 48 // tick labels left of each cell's plot
	cellGap     = 14
	rowTop      = 30 // the metric's title above the plots
	rowBottom   = 30 // shape names below them
)

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{0, 0, 0, 255}
	grid   = color.RGBA{225, 225, 225, 255}
	goalRd = color.RGBA{200, 30, 30, 255}
	// series colors, hydra first (Okabe–Ito, legible to color-blind eyes).
	series = []color.RGBA{
		{0, 114, 178, 255}, {230, 159, 0, 255}, {240, 200, 80, 255},
		{0, 158, 115, 255}, {204, 121, 167, 255}, {150, 150, 150, 255},
		{86, 180, 233, 255}, {213, 94, 0, 255},
	}
)

// panel is one bar chart: a metric per shape per contender.
type panel struct {
	title string
	value func(row) float64
	goal  float64 // a horizontal line; 0 for none
	unit  string  // format of the bar labels
}

// drawChart draws small multiples: a row per metric (throughput, client
// CPU per GB, peak RSS), a cell per shape with its own y axis from zero, a
// bar per contender. Shapes differ by an order of magnitude in both MB/s
// and CPU-s/GB; one shared axis would flatten the small-file shape.
func drawChart(w io.Writer, r *report) error {
	panels := []panel{
		{"Wall throughput, MB/s (higher is better)", func(x row) float64 { return x.MBps }, 0, "%.0f"},
		{fmt.Sprintf("Client CPU-seconds per GB (lower is better; dashed: goal %.1f)", goalCPUPerGB), func(x row) float64 { return x.CPUPerGB }, goalCPUPerGB, "%.3g"},
		{fmt.Sprintf("Client peak RSS, MiB (lower is better; dashed: goal %.0f)", goalPeakRSSMB), func(x row) float64 { return x.RSSMiB }, goalPeakRSSMB, "%.0f"},
	}
	pal := color.Palette{white, black, grid, goalRd}
	for _, c := range series {
		pal = append(pal, c)
	}
	img := image.NewPaletted(image.Rect(0, 0, chartWidth, legendH+len(panels)*rowHeight), pal)
	fill(img, img.Bounds(), white)
	drawLegend(img, r.Contenders)
	cellW := (chartWidth - marginLeft - marginRight) / max(1, len(r.Shapes))
	for i, p := range panels {
		top := legendH + i*rowHeight
		text(img, marginLeft, top+18, p.title, black)
		for si, s := range r.Shapes {
			x0 := marginLeft + si*cellW
			plot := image.Rect(x0+axisW, top+rowTop, x0+cellW-cellGap, top+rowHeight-rowBottom)
			drawCell(img, plot, p, values(r, s, p.value))
			text(img, plot.Min.X+(plot.Dx()-7*len(s))/2, plot.Max.Y+18, s, black)
		}
	}
	return png.Encode(w, img)
}

// values are one metric of every contender on one shape, in legend order.
func values(r *report, shapeName string, metric func(row) float64) []float64 {
	out := make([]float64, len(r.Contenders))
	for i, c := range r.Contenders {
		for _, x := range r.Rows {
			if x.Shape == shapeName && x.Contender == c {
				out[i] = metric(x)
			}
		}
	}
	return out
}

func drawLegend(img *image.Paletted, names []string) {
	x := marginLeft + axisW
	for i, n := range names {
		fill(img, image.Rect(x, 14, x+14, 28), series[i%len(series)])
		text(img, x+20, 26, n, black)
		x += 20 + 7*len(n) + 24
	}
}

// drawCell draws one shape's bars of one metric, with a y axis from zero
// to a round number above the tallest bar (and the goal, if any).
func drawCell(img *image.Paletted, plot image.Rectangle, p panel, vals []float64) {
	vmax := p.goal
	for _, v := range vals {
		vmax = max(vmax, v)
	}
	vmax *= 1.12 // headroom for the labels of the tallest bar
	step := niceStep(vmax / 5)
	vmax = math.Ceil(vmax/step) * step
	y := func(v float64) int { return plot.Max.Y - int(v/vmax*float64(plot.Dy())) }
	for v := 0.0; v <= vmax+step/2; v += step {
		fill(img, image.Rect(plot.Min.X, y(v), plot.Max.X, y(v)+1), grid)
		label := trimFloat(v)
		text(img, plot.Min.X-6-7*len(label), y(v)+4, label, black)
	}
	barW := (plot.Dx() - 8) / max(1, len(vals))
	for i, v := range vals {
		bx := plot.Min.X + 4 + i*barW
		fill(img, image.Rect(bx+1, y(v), bx+barW-1, plot.Max.Y), series[i%len(series)])
		// Labels that do not fit above the bars are left out; the table
		// has every number.
		if label := fmt.Sprintf(p.unit, v); 7*len(label) <= barW+4 {
			text(img, bx+(barW-7*len(label))/2, y(v)-3, label, black)
		}
	}
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), black)
	if p.goal > 0 {
		for x := plot.Min.X; x < plot.Max.X; x += 10 { // dashed
			fill(img, image.Rect(x, y(p.goal), x+6, y(p.goal)+2), goalRd)
		}
	}
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
	idx := uint8(img.Palette.Index(c)) //nolint:gosec // G115: the palette has a dozen entries
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
