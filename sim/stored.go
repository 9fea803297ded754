package sim

import (
	"fmt"
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// Stored runs a fleet of vehicles (seed's first specs, unsigned) from start for days, a step a second,
// and returns its records as a node stores them (source, id, vehicle, times and event bytes; no parsed
// values), the vehicles' records of each second together, and the number of signal values they hold.
// One vehicle of seed 1 from 2026-11-01 UTC for 30 days is "the simulated month" of the stores'
// benchmarks (store/sqlite's BenchmarkIndexASimulatedMonth, store/postgres's
// BenchmarkSimulatedMonthOnDisk; issue 16's bytes per value).
func Stored(seed uint64, vehicles int, start time.Time, days int) ([]*telemetry.Record, int) {
	f := NewFleet(seed, vehicles, start)
	f.Sign = false
	end := start.AddDate(0, 0, days).UnixMilli()
	var recs []*telemetry.Record
	values := 0
	for f.Now().UnixMilli() < end {
		for _, r := range f.Step(time.Second) {
			recs = append(recs, &telemetry.Record{Source: r.Device, ID: r.ID, VehicleID: r.VehicleID,
				Time: r.Time.UnixMilli(), Received: f.Now().UnixMilli(), Event: r.Submission.Event})
			values += len(r.Signals)
		}
	}
	return recs, values
}

// Parsed returns copies of recs with the values and events the ingester parses from their event bytes
// (telemetry.DefaultCatalog), as a node hands them to the store's Write.
func Parsed(recs []*telemetry.Record) ([]*telemetry.Record, error) {
	out := make([]*telemetry.Record, len(recs))
	for i, r := range recs {
		p, err := telemetry.DefaultCatalog.ParseStored(r.Event)
		if err != nil {
			return nil, fmt.Errorf("record %s of %s: %w", r.ID, r.Source, err)
		}
		c := *r
		c.Values, c.Events = p.Values, p.Events
		out[i] = &c
	}
	return out, nil
}
