// Command gen writes schema/signals.graphqls from the signal catalogue. Run it from api/graphql (go
// generate does). It imports only schemagen and telemetry (the catalogue).
package main

import (
	"log"
	"os"

	"github.com/glovebox/glovebox/api/graphql/internal/schemagen"
	"github.com/glovebox/glovebox/telemetry"
)

func main() {
	if err := os.WriteFile("schema/signals.graphqls", schemagen.Signals(telemetry.DefaultCatalog), 0o644); err != nil {
		log.Fatal(err)
	}
}
