package graphql_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/ledger"
)

// BenchmarkSignalsLatest measures one signalsLatest request through the handler (no network): the
// owner's, and an app's (whose reads are access-logged).
func BenchmarkSignalsLatest(b *testing.B) {
	f := newFixture(b)
	app := f.n.App(b, f.owner)
	f.n.Grant(b, f.owner, f.vehicle, app.Address, time.Now().Add(time.Hour).Unix(), ledger.PermSignals, ledger.PermLocation)
	h := graphql.NewHandler(graphql.Config{State: f.n.Sequencer.Read, Telemetry: f.n.Telemetry,
		Record: func(access.Entry) {}})
	query := fmt.Sprintf(`{ signalsLatest(tokenId: %d) { lastSeen speed { timestamp value } isIgnitionOn { timestamp value }
		powertrainType { timestamp value } currentLocationCoordinates { timestamp value { latitude longitude hdop } } } }`, f.vehicle)
	body, _ := json.Marshal(map[string]string{"query": query})
	for _, c := range []struct {
		name   string
		caller [20]byte
	}{{"owner", f.owner.Address}, {"app", app.Address}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req = req.WithContext(graphql.WithCaller(req.Context(), c.caller))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"errors"`)) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
