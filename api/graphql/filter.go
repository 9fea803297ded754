package graphql

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/telemetry"
)

// The value filters of the signals query: the filter argument of a number's aggregation
// (SignalFloatFilter) and of a location's (SignalLocationFilter), as DIMO's telemetry API applies them —
// to the values before they are aggregated, so a bucket whose every value is filtered out is left out.
//
// A SignalFloatFilter holds when every condition set in it holds (eq, neq, gt, lt, gte, lte, in, notIn)
// and, when or is set, at least one of the filters in or holds; a filter with nothing set keeps every
// value. Booleans are compared as 0 and 1.
//
// A SignalLocationFilter keeps a location inside inPolygon (at least 3 vertices, each latitude in
// [-90, 90] and longitude in [-180, 180]; edges are straight lines in the latitude/longitude plane, as
// DIMO's ClickHouse pointInPolygon draws them, so results are inaccurate around the poles and the
// antimeridian; a point on an edge or vertex is inside) and within inCircle (radius in kilometres, at
// least 0; the distance is the geodesic on the WGS 84 ellipsoid, a point exactly radius away is inside).
// When both are set both must hold. An empty inPolygon list sets no condition, as DIMO takes it.

// maxFilterTerms bounds the conditions of one filter (its in and notIn lists, polygon vertices and nested
// or filters, counted together), so that a query's filter costs bounded work per value.
const maxFilterTerms = 1000

// parseFilter decodes a field's filter argument (as graphql.CollectedField.ArgumentMap gives it) into
// the generated input type.
func parseFilter(raw any, dst any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// floatFilter turns a SignalFloatFilter into a predicate on stored values (float64).
func floatFilter(f *exec.SignalFloatFilter, arg string) (func(any) bool, error) {
	n := 0
	if err := countFloatTerms(f, &n, arg); err != nil {
		return nil, err
	}
	return func(v any) bool {
		x, err := telemetry.AsFloat(v)
		return err == nil && matchFloat(f, x)
	}, nil
}

func countFloatTerms(f *exec.SignalFloatFilter, n *int, arg string) error {
	*n += 1 + len(f.In) + len(f.NotIn)
	if *n > maxFilterTerms {
		return codedError(CodeBadRequest, "%s: more than %d conditions", arg, maxFilterTerms)
	}
	for i := range f.Or {
		if err := countFloatTerms(&f.Or[i], n, arg); err != nil {
			return err
		}
	}
	return nil
}

// matchFloat applies a SignalFloatFilter to x.
func matchFloat(f *exec.SignalFloatFilter, x float64) bool {
	if f.Eq != nil && x != *f.Eq || f.Neq != nil && x == *f.Neq || f.Gt != nil && !(x > *f.Gt) || f.Lt != nil && !(x < *f.Lt) ||
		f.Gte != nil && !(x >= *f.Gte) || f.Lte != nil && !(x <= *f.Lte) {
		return false
	}
	if len(f.In) > 0 && !slices.Contains(f.In, x) || slices.Contains(f.NotIn, x) {
		return false
	}
	if len(f.Or) == 0 {
		return true
	}
	for i := range f.Or {
		if matchFloat(&f.Or[i], x) {
			return true
		}
	}
	return false
}

// locationFilter checks a SignalLocationFilter and turns it into a predicate on stored (encoded)
// locations; arg names the argument in errors.
func locationFilter(f *exec.SignalLocationFilter, arg string) (func(any) bool, error) {
	if n := len(f.InPolygon); n > 0 && n < 3 {
		return nil, codedError(CodeBadRequest, "%s.inPolygon: a polygon needs at least 3 vertices, not %d", arg, n)
	}
	if len(f.InPolygon) > maxFilterTerms {
		return nil, codedError(CodeBadRequest, "%s.inPolygon: more than %d vertices", arg, maxFilterTerms)
	}
	for i, p := range f.InPolygon {
		if err := checkFilterLocation(p, fmt.Sprintf("%s.inPolygon[%d]", arg, i)); err != nil {
			return nil, err
		}
	}
	if c := f.InCircle; c != nil {
		if c.Center == nil {
			return nil, codedError(CodeBadRequest, "%s.inCircle.center is missing", arg)
		}
		if err := checkFilterLocation(*c.Center, arg+".inCircle.center"); err != nil {
			return nil, err
		}
		if math.IsNaN(c.Radius) || math.IsInf(c.Radius, 0) || c.Radius < 0 {
			return nil, codedError(CodeBadRequest, "%s.inCircle.radius: %v is not a distance in kilometres (0 or more)", arg, c.Radius)
		}
	}
	poly := slices.Clone(f.InPolygon)
	circle := f.InCircle
	return func(v any) bool {
		b, ok := v.([]byte)
		if !ok {
			return false
		}
		lat, lon, _, err := telemetry.DecodeLocation(b)
		if err != nil {
			return false
		}
		if len(poly) > 0 && !inPolygon(poly, lat, lon) {
			return false
		}
		if circle != nil && WGS84Distance(circle.Center.Latitude, circle.Center.Longitude, lat, lon) > circle.Radius*1000 {
			return false
		}
		return true
	}, nil
}

func checkFilterLocation(p exec.FilterLocation, arg string) error {
	if !(p.Latitude >= -90 && p.Latitude <= 90) || !(p.Longitude >= -180 && p.Longitude <= 180) {
		return codedError(CodeBadRequest, "%s: (%v, %v) is not a latitude in [-90, 90] and a longitude in [-180, 180]", arg, p.Latitude, p.Longitude)
	}
	return nil
}

// inPolygon reports whether (lat, lon) lies inside the polygon or on its boundary, with straight edges
// in the longitude/latitude plane (even-odd rule: a self-crossing polygon's doubly covered parts are
// outside).
func inPolygon(poly []exec.FilterLocation, lat, lon float64) bool {
	inside := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		xi, yi, xj, yj := poly[i].Longitude, poly[i].Latitude, poly[j].Longitude, poly[j].Latitude
		if onSegment(xi, yi, xj, yj, lon, lat) {
			return true
		}
		if (yi > lat) != (yj > lat) && lon < (xj-xi)*(lat-yi)/(yj-yi)+xi {
			inside = !inside
		}
	}
	return inside
}

// onSegment reports whether (x, y) lies on the segment from (x1, y1) to (x2, y2).
func onSegment(x1, y1, x2, y2, x, y float64) bool {
	cross := (x2-x1)*(y-y1) - (y2-y1)*(x-x1)
	scale := math.Max(math.Abs(x2-x1)+math.Abs(y2-y1), 1)
	if math.Abs(cross) > 1e-12*scale {
		return false
	}
	return x >= math.Min(x1, x2) && x <= math.Max(x1, x2) && y >= math.Min(y1, y2) && y <= math.Max(y1, y2)
}

// The WGS 84 ellipsoid.
const (
	wgs84A = 6378137.0         // semi-major axis, metres
	wgs84F = 1 / 298.257223563 // flattening
	wgs84B = wgs84A * (1 - wgs84F)
)

// WGS84Distance is the geodesic distance in metres between two points on the WGS 84 ellipsoid
// (Vincenty's inverse formula, accurate to well under a millimetre). For nearly antipodal points, where
// the iteration does not converge, it falls back to the great-circle distance on a sphere of the
// ellipsoid's mean radius (within 0.5 %).
func WGS84Distance(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	L := (lon2 - lon1) * rad
	U1 := math.Atan((1 - wgs84F) * math.Tan(lat1*rad))
	U2 := math.Atan((1 - wgs84F) * math.Tan(lat2*rad))
	sinU1, cosU1 := math.Sincos(U1)
	sinU2, cosU2 := math.Sincos(U2)
	lambda := L
	for range 200 {
		sinL, cosL := math.Sincos(lambda)
		sinSigma := math.Hypot(cosU2*sinL, cosU1*sinU2-sinU1*cosU2*cosL)
		if sinSigma == 0 {
			return 0 // the same point
		}
		cosSigma := sinU1*sinU2 + cosU1*cosU2*cosL
		sigma := math.Atan2(sinSigma, cosSigma)
		sinAlpha := cosU1 * cosU2 * sinL / sinSigma
		cos2Alpha := 1 - sinAlpha*sinAlpha
		cos2SigmaM := 0.0
		if cos2Alpha != 0 { // both points on the equator
			cos2SigmaM = cosSigma - 2*sinU1*sinU2/cos2Alpha
		}
		C := wgs84F / 16 * cos2Alpha * (4 + wgs84F*(4-3*cos2Alpha))
		prev := lambda
		lambda = L + (1-C)*wgs84F*sinAlpha*(sigma+C*sinSigma*(cos2SigmaM+C*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
		if math.Abs(lambda-prev) < 1e-12 {
			u2 := cos2Alpha * (wgs84A*wgs84A - wgs84B*wgs84B) / (wgs84B * wgs84B)
			A := 1 + u2/16384*(4096+u2*(-768+u2*(320-175*u2)))
			B := u2 / 1024 * (256 + u2*(-128+u2*(74-47*u2)))
			dSigma := B * sinSigma * (cos2SigmaM + B/4*(cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)-
				B/6*cos2SigmaM*(-3+4*sinSigma*sinSigma)*(-3+4*cos2SigmaM*cos2SigmaM)))
			return wgs84B * A * (sigma - dSigma)
		}
	}
	// Nearly antipodal: the haversine on the mean radius.
	const mean = (2*wgs84A + wgs84B) / 3
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * mean * math.Asin(math.Min(1, math.Sqrt(h)))
}
