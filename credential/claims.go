package credential

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/uber/h3-go/v4"
)

// The credential types.
const (
	TypeOdometer = "odometer" // the last odometer reading at or before a time
	TypeMileage  = "mileage"  // the distance driven between two times
	TypeMovement = "movement" // the car moved between two times (two distinct H3 cells)
	TypeVIN      = "vin"      // the VIN reported by the paired device
)

// Types lists the credential types in documentation order.
var Types = []string{TypeOdometer, TypeMileage, TypeMovement, TypeVIN}

// VCT returns the vct claim of a credential type, "urn:glovebox:credential:<type>:1".
func VCT(typ string) string { return "urn:glovebox:credential:" + typ + ":1" }

// The signals credentials are computed from.
const (
	SignalOdometer = "powertrainTransmissionTravelledDistance"
	SignalVIN      = "vehicleIdentificationVIN"
	SignalLocation = "currentLocationCoordinates"
)

// MovementResolution is the H3 resolution of the cells a movement credential discloses.
const MovementResolution = 8

// MaxReadingGap is the longest time two consecutive odometer readings of a mileage's evidence may be
// apart when the odometer moved between them: a longer silence while the car drove would let an issuer
// leave out the readings of a rollback. Readings further apart must be equal (the car stood still). A
// day, so that a month's mileage carries about one record a day: a rollback wound back and forth within
// one day between two readings of the chain is invisible to a verifier (the issuer, which reads every
// reading, refuses to issue over it).
const MaxReadingGap = 24 * time.Hour

// Validity of the credential types whose fact goes stale: an odometer reading says less the longer ago
// it was issued, and a VIN belongs to the pairing of a device that may end. Mileage and movement are
// facts about a closed period and carry no exp.
var validity = map[string]time.Duration{
	TypeOdometer: 30 * 24 * time.Hour,
	TypeVIN:      365 * 24 * time.Hour,
}

// Refusals of issuance: what the records do not support. Callers branch on them (the HTTP API maps each
// to its error code).
var (
	ErrNoReadings = errors.New("no readings")
	ErrRollback   = errors.New("the odometer went backwards")
	ErrGap        = errors.New("a gap in the odometer readings")
	ErrNoMovement = errors.New("no movement")
)

// reading is one signal value of a verified record.
type reading struct {
	Time   int64 // unix ms, the signal's own timestamp
	Number float64
	String string
	Lat    float64
	Lon    float64
}

// Facts are the claims a credential states, as computed from readings. Times are UTC.
type Facts struct {
	Type string
	// Odometer: At (asked), Odometer (km) and MeasuredAt (the reading's time).
	// Mileage: From, To (asked), Distance (km).
	// Movement: From, To (asked), Cells (two distinct H3 resolution-8 cells, in the order first seen).
	// VIN: VIN and MeasuredAt.
	At, From, To time.Time
	MeasuredAt   time.Time
	Odometer     float64
	Distance     float64
	Cells        []string
	VIN          string
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func utc(m int64) time.Time { return time.UnixMilli(m).UTC() }

// round3 rounds km to metres, the odometer's resolution in the catalogue's examples; distances are
// compared after rounding so that float subtraction cannot make two honest computations differ.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// lastAtOrBefore returns the reading with the greatest time at or before t (readings sorted by time).
func lastAtOrBefore(rs []reading, t int64) (reading, int, bool) {
	i, _ := slices.BinarySearchFunc(rs, t+1, func(r reading, t int64) int {
		switch {
		case r.Time < t:
			return -1
		case r.Time > t:
			return 1
		}
		return 0
	})
	if i == 0 {
		return reading{}, -1, false
	}
	return rs[i-1], i - 1, true
}

// sortReadings orders readings by time and drops exact duplicates (the same reading carried by two
// records); two different values at one time are refused.
func sortReadings(rs []reading, name string) ([]reading, error) {
	slices.SortFunc(rs, func(a, b reading) int {
		switch {
		case a.Time != b.Time:
			return int(max(-1, min(1, a.Time-b.Time)))
		case a.Number != b.Number:
			if a.Number < b.Number {
				return -1
			}
			return 1
		}
		return 0
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].Time == r.Time {
			if out[n-1] == r {
				continue
			}
			return nil, fmt.Errorf("two different %s readings at %s", name, utc(r.Time).Format(time.RFC3339Nano))
		}
		out = append(out, r)
	}
	return out, nil
}

// deriveOdometer: the last odometer reading at or before at.
func deriveOdometer(odo []reading, at time.Time) (Facts, error) {
	r, _, ok := lastAtOrBefore(odo, ms(at))
	if !ok {
		return Facts{}, fmt.Errorf("%w: no odometer reading at or before %s", ErrNoReadings, at.Format(time.RFC3339))
	}
	return Facts{Type: TypeOdometer, At: at.UTC(), Odometer: r.Number, MeasuredAt: utc(r.Time)}, nil
}

// deriveMileage: the difference of the last odometer readings at or before to and at or before from,
// over a chain of readings that never goes backwards and is never silent for over MaxReadingGap while
// the odometer moves.
func deriveMileage(odo []reading, from, to time.Time) (Facts, error) {
	start, i, ok := lastAtOrBefore(odo, ms(from))
	if !ok {
		return Facts{}, fmt.Errorf("%w: no odometer reading at or before from (%s)", ErrNoReadings, from.Format(time.RFC3339))
	}
	end, j, _ := lastAtOrBefore(odo, ms(to))
	if end.Time < ms(from) {
		return Facts{}, fmt.Errorf("%w: no odometer reading between from (%s) and to (%s)", ErrNoReadings,
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	for k := i + 1; k <= j; k++ {
		prev, cur := odo[k-1], odo[k]
		if cur.Number < prev.Number {
			return Facts{}, fmt.Errorf("%w: %v km at %s, then %v km at %s", ErrRollback, prev.Number,
				utc(prev.Time).Format(time.RFC3339), cur.Number, utc(cur.Time).Format(time.RFC3339))
		}
		if cur.Time-prev.Time > MaxReadingGap.Milliseconds() && cur.Number != prev.Number {
			return Facts{}, fmt.Errorf("%w: no reading between %s (%v km) and %s (%v km), more than %s apart while the car moved",
				ErrGap, utc(prev.Time).Format(time.RFC3339), prev.Number, utc(cur.Time).Format(time.RFC3339), cur.Number, MaxReadingGap)
		}
	}
	return Facts{Type: TypeMileage, From: from.UTC(), To: to.UTC(), Distance: round3(end.Number - start.Number)}, nil
}

// Cell returns the H3 resolution-8 cell of a position, as the lower-case hex string H3 libraries print.
func Cell(lat, lon float64) string {
	return h3.LatLngToCell(h3.NewLatLng(lat, lon), MovementResolution).String()
}

// deriveMovement: the first two distinct resolution-8 cells among the positions in [from, to).
func deriveMovement(pos []reading, from, to time.Time) (Facts, error) {
	var cells []string
	for _, p := range pos {
		if p.Time < ms(from) || p.Time >= ms(to) {
			continue
		}
		c := Cell(p.Lat, p.Lon)
		if len(cells) == 0 || (len(cells) == 1 && c != cells[0]) {
			cells = append(cells, c)
		}
		if len(cells) == 2 {
			return Facts{Type: TypeMovement, From: from.UTC(), To: to.UTC(), Cells: cells}, nil
		}
	}
	if len(cells) == 0 {
		return Facts{}, fmt.Errorf("%w: no position between from (%s) and to (%s)", ErrNoReadings, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return Facts{}, fmt.Errorf("%w: every position between %s and %s is in H3 cell %s", ErrNoMovement,
		from.Format(time.RFC3339), to.Format(time.RFC3339), cells[0])
}

// deriveVIN: the last VIN reading at or before at.
func deriveVIN(vins []reading, at time.Time) (Facts, error) {
	var last *reading
	for k := range vins {
		if vins[k].Time <= ms(at) && (last == nil || vins[k].Time >= last.Time) {
			last = &vins[k]
		}
	}
	if last == nil {
		return Facts{}, fmt.Errorf("%w: the paired device never reported the VIN (%s)", ErrNoReadings, SignalVIN)
	}
	return Facts{Type: TypeVIN, VIN: last.String, MeasuredAt: utc(last.Time)}, nil
}
