package graphql

import "github.com/glovebox/glovebox/api/graphql/internal/exec"

// FastPathServed counts the requests the fast path answered.
var FastPathServed = &fastPathServed

// InPolygon is inPolygon for tests, with vertices as {latitude, longitude} pairs.
func InPolygon(poly [][2]float64, lat, lon float64) bool {
	var p []exec.FilterLocation
	for _, v := range poly {
		p = append(p, exec.FilterLocation{Latitude: v[0], Longitude: v[1]})
	}
	return inPolygon(p, lat, lon)
}
