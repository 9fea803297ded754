package sqlite

import (
	"context"
	"math/big"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// BenchmarkLatestAfterACommit reads a vehicle's latest values as signalsLatest does right after an
// indexing commit (the cache invalidated): 1,000 vehicles of ten signals each.
func BenchmarkLatestAfterACommit(b *testing.B) {
	ctx := context.Background()
	tel, err := OpenTelemetry(filepath.Join(b.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Close()
	at := time.Now().Truncate(time.Millisecond)
	var recs []*telemetry.Record
	for v := uint64(1); v <= 1000; v++ {
		src := common.BigToAddress(new(big.Int).SetUint64(v))
		var sigs []telemetry.EventSignal
		for _, name := range []string{"speed", "currentLocationHeading", "powertrainTransmissionTravelledDistance", "powertrainFuelSystemRelativeLevel",
			"powertrainCombustionEngineSpeed", "powertrainCombustionEngineECT", "exteriorAirTemperature", "lowVoltageBatteryCurrentVoltage"} {
			sigs = append(sigs, telemetry.EventSignal{Name: name, Timestamp: at, Value: float64(v % 50)})
		}
		sigs = append(sigs, telemetry.EventSignal{Name: "isIgnitionOn", Timestamp: at, Value: true},
			telemetry.EventSignal{Name: "currentLocationCoordinates", Timestamp: at, Value: telemetry.Location{Latitude: 52.5, Longitude: 13.4, HDOP: 1}})
		ev, err := telemetry.NewEvent(src, v, strconv.FormatUint(v, 10), at, sigs)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, &telemetry.Record{Source: src, ID: strconv.FormatUint(v, 10), VehicleID: v, Time: at.UnixMilli(), Received: at.UnixMilli(), Event: ev})
	}
	if _, err := tel.Write(ctx, recs); err != nil {
		b.Fatal(err)
	}
	if _, err := tel.Index(ctx); err != nil {
		b.Fatal(err)
	}
	v := uint64(0)
	for b.Loop() {
		tel.latest.gen.Add(1)
		v = v%1000 + 1
		rows, err := tel.Latest(ctx, v, 0)
		if err != nil || len(rows) != 10 {
			b.Fatalf("%d latest values (%v), want 10", len(rows), err)
		}
	}
}
