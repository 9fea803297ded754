package telemetry_test

import (
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// tenSignals is a record of ten signals as a car sends them every second (numbers, a boolean, a string,
// a location).
func tenSignals(b *testing.B) []byte {
	at := time.Date(2026, 11, 20, 9, 58, 0, 0, time.UTC)
	ev, err := telemetry.NewEvent(common.HexToAddress("0x8ba1f109551bD432803012645Ac136ddd64DBA72"), 7, "r1", at, []telemetry.EventSignal{
		{Name: "speed", Timestamp: at, Value: 54.2},
		{Name: "powertrainTransmissionTravelledDistance", Timestamp: at, Value: 12345.6},
		{Name: "currentLocationAltitude", Timestamp: at, Value: 31.5},
		{Name: "currentLocationHeading", Timestamp: at, Value: 270},
		{Name: "lowVoltageBatteryCurrentVoltage", Timestamp: at, Value: 12.6},
		{Name: "exteriorAirTemperature", Timestamp: at, Value: 8.5},
		{Name: "powertrainCombustionEngineSpeed", Timestamp: at, Value: 2100},
		{Name: "isIgnitionOn", Timestamp: at, Value: true},
		{Name: "powertrainType", Timestamp: at, Value: "COMBUSTION"},
		{Name: "currentLocationCoordinates", Timestamp: at, Value: telemetry.Location{Latitude: 52.52, Longitude: 13.405, HDOP: 0.9}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkParse is the ingest's parse of a record of ten signals (strict: the JSON text checked);
// BenchmarkParseStored the indexer's of the same record read back.
func BenchmarkParse(b *testing.B) {
	sub := &telemetry.Submission{Event: tenSignals(b), Signature: make([]byte, 65)}
	now := time.Now().UnixMilli()
	for b.Loop() {
		if _, err := telemetry.DefaultCatalog.Parse(sub, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStored(b *testing.B) {
	ev := tenSignals(b)
	for b.Loop() {
		if _, err := telemetry.DefaultCatalog.ParseStored(ev); err != nil {
			b.Fatal(err)
		}
	}
}
