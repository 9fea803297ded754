package sim

import (
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// TenSignals is the record of ten signals at t that the benchmarks send for a device's i-th record
// (`glovebox bench ingest`, `bench query`, the store and parse benchmarks): a moving combustion car's
// speed, location, heading, odometer, fuel level, engine speed and coolant temperature, outside
// temperature, 12 V battery voltage and ignition, varying with i.
func TenSignals(t time.Time, i int) []telemetry.EventSignal {
	f := float64(i % 100)
	return []telemetry.EventSignal{
		{Name: "speed", Timestamp: t, Value: 30 + f/2},
		{Name: "currentLocationCoordinates", Timestamp: t, Value: telemetry.Location{Latitude: 52.52 + f/1e4, Longitude: 13.405 + f/1e4, HDOP: 0.8}},
		{Name: "currentLocationHeading", Timestamp: t, Value: float64(i % 360)},
		{Name: "powertrainTransmissionTravelledDistance", Timestamp: t, Value: 12000 + float64(i)/100},
		{Name: "powertrainFuelSystemRelativeLevel", Timestamp: t, Value: float64(80 - i%50)},
		{Name: "powertrainCombustionEngineSpeed", Timestamp: t, Value: float64(1500 + i%1500)},
		{Name: "powertrainCombustionEngineECT", Timestamp: t, Value: float64(88 + i%5)},
		{Name: "exteriorAirTemperature", Timestamp: t, Value: 14.5},
		{Name: "lowVoltageBatteryCurrentVoltage", Timestamp: t, Value: 14.1},
		{Name: "isIgnitionOn", Timestamp: t, Value: true},
	}
}
