package sim

import "math"

// earthRadius is the mean Earth radius in metres (IUGG).
const earthRadius = 6371008.8

// LatLon is a position in degrees (WGS 84).
type LatLon struct {
	Lat, Lon float64
}

func rad(d float64) float64 { return d * math.Pi / 180 }
func deg(r float64) float64 { return r * 180 / math.Pi }

// Distance is the great-circle distance between a and b in metres (haversine).
func Distance(a, b LatLon) float64 {
	φ1, φ2 := rad(a.Lat), rad(b.Lat)
	dφ, dλ := φ2-φ1, rad(b.Lon-a.Lon)
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(min(1, h)))
}

// Bearing is the initial great-circle bearing from a to b, in degrees clockwise from north, in [0, 360).
func Bearing(a, b LatLon) float64 {
	φ1, φ2 := rad(a.Lat), rad(b.Lat)
	dλ := rad(b.Lon - a.Lon)
	y := math.Sin(dλ) * math.Cos(φ2)
	x := math.Cos(φ1)*math.Sin(φ2) - math.Sin(φ1)*math.Cos(φ2)*math.Cos(dλ)
	return normDeg(deg(math.Atan2(y, x)))
}

// Destination is the point d metres from a along the great circle leaving a at bearing brg (degrees).
func Destination(a LatLon, brg, d float64) LatLon {
	δ := d / earthRadius
	θ := rad(brg)
	φ1, λ1 := rad(a.Lat), rad(a.Lon)
	sinφ2 := math.Sin(φ1)*math.Cos(δ) + math.Cos(φ1)*math.Sin(δ)*math.Cos(θ)
	φ2 := math.Asin(max(-1, min(1, sinφ2)))
	λ2 := λ1 + math.Atan2(math.Sin(θ)*math.Sin(δ)*math.Cos(φ1), math.Cos(δ)-math.Sin(φ1)*sinφ2)
	return LatLon{deg(φ2), normLon(deg(λ2))}
}

// AngleDiff is the absolute difference between two bearings in degrees, in [0, 180].
func AngleDiff(a, b float64) float64 {
	d := math.Mod(math.Abs(a-b), 360)
	if d > 180 {
		d = 360 - d
	}
	return d
}

// signedAngle is b-a folded into (-180, 180].
func signedAngle(a, b float64) float64 {
	d := math.Mod(b-a, 360)
	if d > 180 {
		d -= 360
	} else if d <= -180 {
		d += 360
	}
	return d
}

func normDeg(d float64) float64 {
	d = math.Mod(d, 360)
	if d < 0 {
		d += 360
	}
	if d >= 360 {
		d = 0
	}
	return d
}

func normLon(l float64) float64 {
	for l > 180 {
		l -= 360
	}
	for l < -180 {
		l += 360
	}
	return l
}

// offset is the point east and north metres from o on a local tangent plane (fine within a city).
func offset(o LatLon, east, north float64) LatLon {
	return LatLon{
		Lat: o.Lat + deg(north/earthRadius),
		Lon: normLon(o.Lon + deg(east/(earthRadius*math.Cos(rad(o.Lat))))),
	}
}

// local is p's east and north offset from o in metres on the local tangent plane.
func local(o, p LatLon) (east, north float64) {
	return rad(p.Lon-o.Lon) * earthRadius * math.Cos(rad(o.Lat)), rad(p.Lat-o.Lat) * earthRadius
}
