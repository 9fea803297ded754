package graphql_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/api/graphql"
)

func TestFloatFiltersApplyToTheValuesBeforeAggregating(t *testing.T) {
	s := newSeries(t)
	// The series' speeds by minute from t0: [10 20 60] [5 15] [] [7].
	for _, tc := range []struct {
		name, field string
		want        []string // "minute=value" of the buckets answered
	}{
		{"gt keeps the larger values", `speed(agg: AVG, filter: {gt: 15})`, []string{"0=40"}},
		{"in keeps the listed values", `speed(agg: MAX, filter: {in: [5, 7]})`, []string{"1=5", "3=7"}},
		{"notIn drops the listed values", `speed(agg: MIN, filter: {notIn: [10, 20]})`, []string{"0=60", "1=5", "3=7"}},
		{"conditions together must all hold", `speed(agg: AVG, filter: {gte: 10, lte: 20, neq: 15})`, []string{"0=15"}},
		{"eq keeps one value", `speed(agg: FIRST, filter: {eq: 60})`, []string{"0=60"}},
		{"one of or must hold", `speed(agg: AVG, filter: {or: [{lt: 8}, {gte: 60}]})`, []string{"0=60", "1=5", "3=7"}},
		{"or and a condition beside it", `speed(agg: MAX, filter: {lt: 50, or: [{eq: 5}, {eq: 20}]})`, []string{"0=20", "1=5"}},
		{"an empty filter keeps everything", `speed(agg: LAST, filter: {})`, []string{"0=60", "1=15", "3=7"}},
		{"booleans compare as 0 and 1", `isIgnitionOn(agg: MIN, filter: {eq: 1})`, []string{"0=1"}},
		{"MED and RAND of the kept values", `speed(agg: MED, filter: {gt: 6})`, []string{"0=20", "1=15", "3=7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.history(t, s.owner.Address, "1m", 0, 240, "v: "+tc.field)
			if len(r.Errors) != 0 {
				t.Fatalf("errors: %s", r.Raw)
			}
			var got []string
			for _, b := range r.buckets() {
				ts, _ := time.Parse(time.RFC3339Nano, b["timestamp"].(string))
				got = append(got, fmt.Sprintf("%d=%v", int(ts.Sub(s.t0)/time.Minute), b["v"]))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// A filtered field beside an unfiltered one of the same signal: each reads its own values.
	r := s.history(t, s.owner.Address, "1m", 0, 240, `all: speed(agg: AVG) fast: speed(agg: AVG, filter: {gt: 15})`)
	if b := r.buckets(); len(r.Errors) != 0 || len(b) != 3 || b[0]["all"] != 30.0 || b[0]["fast"] != 40.0 || b[1]["fast"] != nil {
		t.Errorf("a filtered and an unfiltered field of one signal: %s", r.Raw)
	}
}

func TestLocationFiltersKeepThePositionsInsideTheShape(t *testing.T) {
	s := newSeries(t)
	// loc0 at 0s and loc1 at 10s, about 1.3 km apart; both in the first minute.
	square := func(lat, lon, d float64) string {
		return fmt.Sprintf(`[{latitude: %v, longitude: %v}, {latitude: %v, longitude: %v}, {latitude: %v, longitude: %v}, {latitude: %v, longitude: %v}]`,
			lat-d, lon-d, lat-d, lon+d, lat+d, lon+d, lat+d, lon-d)
	}
	for _, tc := range []struct {
		name, filter string
		want         string // "first last" latitudes, or "none"
	}{
		{"a square around loc0 keeps loc0 only", `{inPolygon: ` + square(loc0.Latitude, loc0.Longitude, 0.001) + `}`, fmt.Sprint(loc0.Latitude, " ", loc0.Latitude)},
		{"a square around both keeps both", `{inPolygon: ` + square(57.714, 11.98, 0.02) + `}`, fmt.Sprint(loc0.Latitude, " ", loc1.Latitude)},
		{"a square elsewhere keeps nothing", `{inPolygon: ` + square(0, 0, 1) + `}`, "none"},
		{"a circle of 100 m around loc1 keeps loc1 only", fmt.Sprintf(`{inCircle: {center: {latitude: %v, longitude: %v}, radius: 0.1}}`, loc1.Latitude, loc1.Longitude),
			fmt.Sprint(loc1.Latitude, " ", loc1.Latitude)},
		{"a circle of 5 km keeps both", fmt.Sprintf(`{inCircle: {center: {latitude: %v, longitude: %v}, radius: 5}}`, loc1.Latitude, loc1.Longitude),
			fmt.Sprint(loc0.Latitude, " ", loc1.Latitude)},
		{"a circle of radius 0 on loc0 keeps loc0", fmt.Sprintf(`{inCircle: {center: {latitude: %v, longitude: %v}, radius: 0}}`, loc0.Latitude, loc0.Longitude),
			fmt.Sprint(loc0.Latitude, " ", loc0.Latitude)},
		{"polygon and circle must both hold", `{inPolygon: ` + square(57.714, 11.98, 0.02) + fmt.Sprintf(`, inCircle: {center: {latitude: %v, longitude: %v}, radius: 0.1}}`, loc1.Latitude, loc1.Longitude),
			fmt.Sprint(loc1.Latitude, " ", loc1.Latitude)},
		{"an empty polygon sets no condition, as DIMO", `{inPolygon: []}`, fmt.Sprint(loc0.Latitude, " ", loc1.Latitude)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.history(t, s.owner.Address, "1m", 0, 240, fmt.Sprintf(`f: currentLocationCoordinates(agg: FIRST, filter: %s) { latitude }
				l: currentLocationCoordinates(agg: LAST, filter: %s) { latitude }`, tc.filter, tc.filter))
			if len(r.Errors) != 0 {
				t.Fatalf("errors: %s", r.Raw)
			}
			got := "none"
			if b := r.buckets(); len(b) > 0 {
				got = fmt.Sprint(b[0]["f"].(map[string]any)["latitude"], " ", b[0]["l"].(map[string]any)["latitude"])
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMalformedFiltersAreRefusedNamingTheArgument(t *testing.T) {
	s := newSeries(t)
	for _, tc := range []struct {
		name, field, want string
	}{
		{"a polygon of two vertices", `currentLocationCoordinates(agg: FIRST, filter: {inPolygon: [{latitude: 1, longitude: 1}, {latitude: 2, longitude: 2}]}) { latitude }`,
			"loc.filter.inPolygon: a polygon needs at least 3 vertices, not 2"},
		{"a vertex off the globe", `currentLocationCoordinates(agg: FIRST, filter: {inPolygon: [{latitude: 1, longitude: 1}, {latitude: 91, longitude: 2}, {latitude: 0, longitude: 3}]}) { latitude }`,
			"loc.filter.inPolygon[1]: (91, 2) is not a latitude in [-90, 90] and a longitude in [-180, 180]"},
		{"a centre off the globe", `currentLocationCoordinates(agg: FIRST, filter: {inCircle: {center: {latitude: 0, longitude: 181}, radius: 1}}) { latitude }`,
			"loc.filter.inCircle.center: (0, 181) is not a latitude in [-90, 90] and a longitude in [-180, 180]"},
		{"a negative radius", `currentLocationCoordinates(agg: FIRST, filter: {inCircle: {center: {latitude: 0, longitude: 1}, radius: -1}}) { latitude }`,
			"loc.filter.inCircle.radius: -1 is not a distance in kilometres (0 or more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.history(t, s.owner.Address, "1m", 0, 240, "loc: "+tc.field)
			if r.codes()["signals"] != "BAD_REQUEST" || r.Errors[0].Message != tc.want {
				t.Errorf("want BAD_REQUEST %q: %s", tc.want, r.Raw)
			}
		})
	}
}

func TestWGS84Distance(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tolerance        float64 // metres
	}{
		// Vincenty's own test line (Survey Review, 1975): Flinders Peak to Buninyong, 54,972.271 m.
		{"Flinders Peak to Buninyong", -(37 + 57/60.0 + 3.72030/3600), 144 + 25/60.0 + 29.52440/3600,
			-(37 + 39/60.0 + 10.15610/3600), 143 + 55/60.0 + 35.38390/3600, 54972.271, 0.001},
		{"one degree of longitude on the equator", 0, 0, 0, 1, 111319.491, 0.001},
		{"the same point", 57.7, 11.9, 57.7, 11.9, 0, 0},
		{"pole to pole along a meridian", 90, 0, -90, 0, 20003931.459, 0.001},
		{"nearly antipodal points fall back to the sphere", 0, 0, 0.5, 179.7, 19970000, 60000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := graphql.WGS84Distance(tc.lat1, tc.lon1, tc.lat2, tc.lon2)
			if math.Abs(got-tc.want) > tc.tolerance {
				t.Errorf("%.4f m, want %.4f ± %g", got, tc.want, tc.tolerance)
			}
		})
	}
}

func TestInPolygon(t *testing.T) {
	square := [][2]float64{{0, 0}, {0, 10}, {10, 10}, {10, 0}}
	bowtie := [][2]float64{{0, 0}, {10, 10}, {10, 0}, {0, 10}}
	for _, tc := range []struct {
		name     string
		poly     [][2]float64
		lat, lon float64
		want     bool
	}{
		{"the centre of a square", square, 5, 5, true},
		{"outside the square", square, 5, 11, false},
		{"on an edge", square, 0, 5, true},
		{"on a vertex", square, 10, 10, true},
		{"just outside an edge", square, -1e-9, 5, false},
		{"the same square the other way round", [][2]float64{{10, 0}, {10, 10}, {0, 10}, {0, 0}}, 5, 5, true},
		{"inside one wing of a bowtie", bowtie, 2, 5, true},
		{"outside both wings of a bowtie", bowtie, 5, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := graphql.InPolygon(tc.poly, tc.lat, tc.lon); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzLocationShapes: the polygon test and the distance never panic, every vertex is inside its own
// polygon, and distances are finite, symmetric and not negative.
func FuzzLocationShapes(f *testing.F) {
	f.Add(0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 5.0, 5.0)
	f.Add(-90.0, -180.0, 90.0, 180.0, 0.0, 0.0, 0.5, 179.7)
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g, lat, lon float64) {
		clamp := func(x, m float64) float64 {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return 0
			}
			return math.Mod(x, m)
		}
		poly := [][2]float64{{clamp(a, 90), clamp(b, 180)}, {clamp(c, 90), clamp(d, 180)}, {clamp(e, 90), clamp(g, 180)}}
		for _, v := range poly {
			if !graphql.InPolygon(poly, v[0], v[1]) {
				t.Errorf("vertex %v is not inside %v", v, poly)
			}
		}
		graphql.InPolygon(poly, lat, lon)
		la, lo := clamp(lat, 90), clamp(lon, 180)
		d1 := graphql.WGS84Distance(poly[0][0], poly[0][1], la, lo)
		d2 := graphql.WGS84Distance(la, lo, poly[0][0], poly[0][1])
		if math.IsNaN(d1) || d1 < 0 || d1 > 20_016_000 || math.Abs(d1-d2) > 1e-3+d1*0.006 {
			t.Errorf("distance %v (back %v) between %v and (%v, %v)", d1, d2, poly[0], la, lo)
		}
	})
}
