package enginebench

import (
	"fmt"
	"time"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/telemetry"
)

// ParseRate measures what indexing from the raw records costs before any engine sees a value: the
// simulator's signals records of one vehicle for hours hours (every signal the simulator sends, not
// only Signals), each decoded as the indexer does (telemetry.Catalog.ParseStored). It returns values
// per second and records per second, one goroutine.
func ParseRate(seed uint64, hours int) (valuesPerSec, recordsPerSec float64, err error) {
	f := sim.NewFleet(seed, 1, time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC))
	f.Sign = false
	var events [][]byte
	for i := 0; i < hours*3600; i++ {
		for _, r := range f.Step(time.Second) {
			if r.Signals != nil {
				events = append(events, r.Submission.Event)
			}
		}
	}
	if len(events) == 0 {
		return 0, 0, fmt.Errorf("the simulator sent no signals records in %d hours", hours)
	}
	values := 0
	start := time.Now()
	for _, ev := range events {
		r, err := telemetry.DefaultCatalog.ParseStored(ev)
		if err != nil {
			return 0, 0, fmt.Errorf("a simulated record does not parse: %w", err)
		}
		values += len(r.Values)
	}
	s := time.Since(start).Seconds()
	return float64(values) / s, float64(len(events)) / s, nil
}
