package graphql

import (
	"context"
	"net/http"

	"github.com/99designs/gqlgen/graphql"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
)

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

// NewHandlerWithoutPerSignal is NewHandler as if the schema had no @perSignal: the directive resolves its
// field and decides nothing, and the fast path is off (it makes @perSignal's decision itself).
func NewHandlerWithoutPerSignal(cfg Config) http.Handler {
	cfg.DisableFastPath = true
	return newHandler(cfg, func(d *exec.DirectiveRoot) {
		d.PerSignal = func(ctx context.Context, _ any, next graphql.Resolver) (any, error) { return next(ctx) }
	})
}
