package sim

import (
	"math"
	"math/rand/v2"
)

// kmh converts km/h to m/s.
func kmh(v float64) float64 { return v / 3.6 }

// route is a road-like polyline from one place to another: street legs along the city's grid with
// junctions, traffic lights and turns, and on longer trips a motorway in between.
type route struct {
	pts    []LatLon
	length []float64 // m, of segment k: pts[k] → pts[k+1]
	brg    []float64 // degrees, initial bearing of segment k
	limit  []float64 // m/s, speed limit of segment k
	cap    []float64 // m/s, the speed a car can take the turn at pts[k] with (+Inf on a straight)
	dwell  []float64 // s, wait at a red light at pts[k]; 0 when it is green (last point: the destination)
	total  float64   // m
}

// routePoint is a waypoint being built, in metres east and north of the route's start.
type routePoint struct {
	x, y  float64
	limit float64 // m/s, of the segment that ends here
	dwell float64
}

type routeBuilder struct {
	rng *rand.Rand
	pts []routePoint
}

func (b *routeBuilder) add(x, y, limit, dwell float64) {
	if n := len(b.pts); n > 0 && math.Hypot(x-b.pts[n-1].x, y-b.pts[n-1].y) < 25 {
		if n == 1 {
			// Never drop the start; the next point will be far enough or be the end.
			b.pts = append(b.pts, routePoint{x, y, limit, dwell})
			return
		}
		b.pts[n-1] = routePoint{x, y, limit, dwell} // too close: this point replaces the previous one
		return
	}
	b.pts = append(b.pts, routePoint{x, y, limit, dwell})
}

func (b *routeBuilder) last() (float64, float64) {
	p := b.pts[len(b.pts)-1]
	return p.x, p.y
}

func (b *routeBuilder) uniform(lo, hi float64) float64 { return lo + b.rng.Float64()*(hi-lo) }

// streets drives from the last point to (qx, qy) along legs of the street grid at angle θ (radians,
// of the first grid axis from east, counter-clockwise).
func (b *routeBuilder) streets(qx, qy, θ float64) {
	px, py := b.last()
	ux, uy := math.Cos(θ), math.Sin(θ)
	vx, vy := -uy, ux
	dx, dy := qx-px, qy-py
	du, dv := dx*ux+dy*uy, dx*vx+dy*vy
	dist := math.Hypot(dx, dy)
	legs := 2 + int(dist/1300) + b.rng.IntN(2)
	legs = min(legs, 6)
	nu, nv := (legs+1)/2, legs/2
	if b.rng.IntN(2) == 0 {
		nu, nv = nv, nu
	}
	if math.Abs(du) < 40 {
		nu = 0
	}
	if math.Abs(dv) < 40 {
		nv = 0
	}
	if nu == 0 && nv == 0 {
		nu = 1
	}
	if nu > nv+1 {
		nu = nv + 1
	}
	if nv > nu+1 {
		nv = nu + 1
	}
	split := func(total float64, n int) []float64 {
		if n == 0 {
			return nil
		}
		w := make([]float64, n)
		var sum float64
		for i := range w {
			w[i] = 0.35 + b.rng.Float64()
			sum += w[i]
		}
		for i := range w {
			w[i] = total * w[i] / sum
		}
		return w
	}
	us, vs := split(du, nu), split(dv, nv)
	// The legs alternate axes, starting with the axis that has more legs (or a coin toss).
	uFirst := nu > nv || (nu == nv && b.rng.IntN(2) == 0)
	type leg struct{ dx, dy float64 }
	var seq []leg
	for i, j := 0, 0; i < len(us) || j < len(vs); {
		if (uFirst && i < len(us)) || j >= len(vs) {
			seq = append(seq, leg{us[i] * ux, us[i] * uy})
			i++
		} else {
			seq = append(seq, leg{vs[j] * vx, vs[j] * vy})
			j++
		}
		uFirst = !uFirst
	}
	cx, cy := px, py
	for li, l := range seq {
		ex, ey := cx+l.dx, cy+l.dy
		if li == len(seq)-1 {
			ex, ey = qx, qy // absorb rounding and off-grid remainders
		}
		L := math.Hypot(ex-cx, ey-cy)
		var limit float64
		switch {
		case L > 1500:
			limit = kmh([]float64{60, 70, 80}[b.rng.IntN(3)])
		case L > 600:
			limit = kmh([]float64{50, 50, 60}[b.rng.IntN(3)])
		default:
			limit = kmh([]float64{30, 40, 50}[b.rng.IntN(3)])
		}
		blocks := max(1, int(math.Round(L/b.uniform(110, 260))))
		nx, ny := -(ey-cy)/max(L, 1), (ex-cx)/max(L, 1) // unit normal to the leg
		for k := 1; k <= blocks; k++ {
			f := float64(k) / float64(blocks)
			x, y := cx+(ex-cx)*f, cy+(ey-cy)*f
			dwell := 0.0
			if k < blocks {
				// A junction along the street: slight bends and, sometimes, a red light.
				off := b.uniform(-4, 4)
				x, y = x+nx*off, y+ny*off
				if b.rng.Float64() < 0.12 {
					dwell = b.uniform(5, 45)
				}
			} else if li < len(seq)-1 && b.rng.Float64() < 0.35 {
				dwell = b.uniform(3, 40) // the corner is a junction with lights
			}
			b.add(x, y, limit, dwell)
		}
		cx, cy = ex, ey
	}
}

// motorway drives from the last point to (qx, qy) on a gently curving motorway.
func (b *routeBuilder) motorway(qx, qy, limit float64) {
	px, py := b.last()
	L := math.Hypot(qx-px, qy-py)
	nx, ny := -(qy-py)/L, (qx-px)/L
	amp := b.uniform(-0.08, 0.08) * L
	var at float64
	first := true
	for {
		at += b.uniform(600, 1400)
		if at > L-300 {
			break
		}
		f := at / L
		off := amp*math.Sin(math.Pi*f) + b.uniform(-25, 25)
		lim := limit
		if first {
			lim = kmh(70) // the on-ramp
			first = false
		}
		b.add(px+(qx-px)*f+nx*off, py+(qy-py)*f+ny*off, lim, 0)
	}
	b.add(qx, qy, kmh(80), 0) // the off-ramp
}

// newRoute plans a route from a to b in city c.
func newRoute(rng *rand.Rand, c *city, a, b LatLon) *route {
	rb := &routeBuilder{rng: rng}
	rb.pts = append(rb.pts, routePoint{})
	qx, qy := local(a, b)
	dist := math.Hypot(qx, qy)
	θ := rad(90 - c.GridAngle + rb.uniform(-6, 6)) // compass angle → angle from east
	if dist > 7000 {
		// Streets to the motorway, the motorway, streets from it.
		on := rb.uniform(800, 1800) / dist
		off := 1 - rb.uniform(800, 1800)/dist
		nx, ny := -qy/dist, qx/dist
		o1, o2 := rb.uniform(-400, 400), rb.uniform(-400, 400)
		rb.streets(qx*on+nx*o1, qy*on+ny*o1, θ)
		rb.motorway(qx*off+nx*o2, qy*off+ny*o2, kmh(c.MotorwayKM))
		rb.streets(qx, qy, θ)
	} else {
		rb.streets(qx, qy, θ)
	}
	pts := rb.pts
	if len(pts) < 2 {
		pts = append(pts, routePoint{qx, qy, kmh(30), 0})
	}
	r := &route{}
	for _, p := range pts {
		r.pts = append(r.pts, offset(a, p.x, p.y))
	}
	r.pts[0], r.pts[len(r.pts)-1] = a, b
	n := len(r.pts) - 1
	r.length, r.brg, r.limit = make([]float64, n), make([]float64, n), make([]float64, n)
	r.cap, r.dwell = make([]float64, n+1), make([]float64, n+1)
	for k := 0; k < n; k++ {
		r.length[k] = Distance(r.pts[k], r.pts[k+1])
		r.brg[k] = Bearing(r.pts[k], r.pts[k+1])
		r.limit[k] = pts[k+1].limit
		r.total += r.length[k]
	}
	r.cap[0], r.cap[n] = 0, 0
	for k := 1; k < n; k++ {
		r.dwell[k] = pts[k].dwell
		turn := AngleDiff(r.brg[k-1], r.brg[k])
		switch {
		case turn < 8:
			r.cap[k] = math.Inf(1)
		case turn < 25:
			r.cap[k] = kmh(60)
		case turn < 50:
			r.cap[k] = kmh(40)
		case turn < 75:
			r.cap[k] = kmh(28)
		default:
			r.cap[k] = kmh(20)
		}
	}
	return r
}
