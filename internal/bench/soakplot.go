package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// PNG draws the samples as three stacked line charts over the soak's minutes: the node's resident
// memory, its goroutines and its open file descriptors, each from zero to a little over its highest value,
// so that a growth trend shows as a rising line.
func (r *SoakReport) PNG(w io.Writer) error {
	const width, panel, margin = 960, 220, 60
	img := image.NewRGBA(image.Rect(0, 0, width, 3*panel+40))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, margin, 22, color.Black, fmt.Sprintf("glovebox bench soak: %d vehicles and an app querying, %s, %d cores (x: minutes)",
		r.Vehicles, r.Duration, r.Cores))
	type curve struct {
		title string
		value func(SoakSample) float64
		c     color.RGBA
	}
	mb := func(f func(SoakSample) int64) func(SoakSample) float64 {
		return func(s SoakSample) float64 { return float64(f(s)) / 1e6 }
	}
	memory := []curve{
		{"node RSS (MB)", mb(func(s SoakSample) int64 { return s.RSSBytes }), color.RGBA{0x1f, 0x77, 0xb4, 0xff}},
		{"Go heap in use", mb(func(s SoakSample) int64 { return s.GoHeapBytes }), color.RGBA{0xff, 0x7f, 0x0e, 0xff}},
	}
	if slices.ContainsFunc(r.Samples, func(s SoakSample) bool { return s.SQLiteBytes > 0 }) {
		memory = append(memory, curve{"SQLite's allocator", mb(func(s SoakSample) int64 { return s.SQLiteBytes }), color.RGBA{0x94, 0x67, 0xbd, 0xff}})
	}
	panels := [][]curve{
		memory,
		{{"goroutines", func(s SoakSample) float64 { return float64(s.Goroutines) }, color.RGBA{0xd6, 0x27, 0x28, 0xff}}},
		{{"open file descriptors", func(s SoakSample) float64 { return float64(s.FDs) }, color.RGBA{0x2c, 0xa0, 0x2c, 0xff}}},
	}
	total := r.Duration.Minutes()
	if n := len(r.Samples); n > 0 {
		total = max(total, r.Samples[n-1].At.Minutes())
	}
	for k, curves := range panels {
		top := 40 + k*panel
		x0, x1, y0, y1 := margin, width-20, top+panel-30, top+20 // plot area: y0 bottom, y1 top
		hi := 0.0
		for _, c := range curves {
			for _, p := range r.Samples {
				hi = math.Max(hi, c.value(p))
			}
		}
		hi = niceCeil(hi * 1.1)
		grey := color.RGBA{0xcc, 0xcc, 0xcc, 0xff}
		for i := 0; i <= 4; i++ { // horizontal grid lines and their values
			y := y0 - (y0-y1)*i/4
			line(img, x0, y, x1, y, grey)
			text(img, 4, y+4, color.Black, fmt.Sprintf("%.0f", hi*float64(i)/4))
		}
		for m := 0.0; m <= total; m += tickMinutes(total) { // vertical ticks
			x := x0 + int(float64(x1-x0)*m/math.Max(total, 1e-9))
			line(img, x, y0, x, y0+4, color.Black)
			text(img, x-6, y0+16, color.Black, fmt.Sprintf("%.0f", m))
		}
		line(img, x0, y0, x1, y0, color.Black)
		line(img, x0, y0, x0, y1, color.Black)
		for i, c := range curves {
			text(img, x0+8+i*200, y1-4, c.c, c.title)
			px, py := -1, -1
			for _, p := range r.Samples {
				x := x0 + int(float64(x1-x0)*p.At.Minutes()/math.Max(total, 1e-9))
				y := y0 - int(float64(y0-y1)*c.value(p)/math.Max(hi, 1e-9))
				if px >= 0 {
					line(img, px, py, x, y, c.c)
					line(img, px, py+1, x, y+1, c.c)
				}
				px, py = x, y
			}
		}
	}
	return png.Encode(w, img)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// tickMinutes is the spacing of the x axis's ticks: about ten over total minutes.
func tickMinutes(total float64) float64 {
	return math.Max(1, niceCeil(total/10))
}

// line draws a line from (x0, y0) to (x1, y1) (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// text writes s with its baseline at (x, y).
func text(img *image.RGBA, x, y int, c color.Color, s string) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
