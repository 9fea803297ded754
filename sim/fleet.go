// Package sim is the fleet simulator: vehicles in cities around the world that park, drive road-like
// routes, refuel and charge, and stream telemetry signed by their devices. A Fleet generates the signed
// records tick by tick without any network (fast mode, for tests and benchmarks); Run registers and pairs
// the fleet on a node through real signed transactions and streams the records to it in real time.
//
// It sends through client and api/mqtt's publisher and must not import the node or a store.
package sim

import (
	"crypto/ecdsa"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// Spec is one simulated vehicle's identity: its owner and device keys, its ledger id, its definition and
// its home city.
type Spec struct {
	Index      int
	OwnerKey   *ecdsa.PrivateKey
	DeviceKey  *ecdsa.PrivateKey
	Owner      common.Address
	Device     common.Address
	DeviceKind string // ledger.KindHardware (an OBD dongle) or ledger.KindSoftware (a maker's cloud)
	VehicleID  uint64 // the ledger's id; 0 until registered
	Make       string
	Model      string
	Year       uint16
	Powertrain Powertrain
	City       string
	// VIN is the vehicle identification number its device reports (vehicleIdentificationVIN) at the start
	// of every trip; derived from the seed and index when empty.
	VIN string
}

// Specs returns n vehicle specs derived from seed: the same seed gives the same keys and vehicles, and
// the first n specs of a larger fleet are the specs of the smaller one. Every fifth vehicle is electric
// and reports through a software connector; the others are petrol or diesel cars with a hardware dongle.
// VehicleID is left 0.
func Specs(seed uint64, n int) []Spec {
	out := make([]Spec, n)
	for i := range out {
		out[i] = newSpec(seed, i)
	}
	return out
}

func newSpec(seed uint64, i int) Spec {
	rng := rand.New(rand.NewPCG(seed, streamID(i, 1)))
	s := Spec{Index: i, DeviceKind: ledger.KindHardware}
	switch {
	case i%5 == 4:
		s.Powertrain, s.DeviceKind = Electric, ledger.KindSoftware
	case rng.Float64() < 0.7:
		s.Powertrain = Petrol
	default:
		s.Powertrain = Diesel
	}
	var fit []*model
	for j := range models {
		if models[j].Powertrain == s.Powertrain {
			fit = append(fit, &models[j])
		}
	}
	m := fit[rng.IntN(len(fit))]
	s.Make, s.Model = m.Make, m.Model
	s.Year = uint16(m.FirstYear + rng.IntN(m.LastYear-m.FirstYear+1))
	s.City = cities[rng.IntN(len(cities))].Name
	s.OwnerKey = deriveKey(seed, i, "owner")
	s.DeviceKey = deriveKey(seed, i, "device")
	s.Owner = crypto.PubkeyToAddress(s.OwnerKey.PublicKey)
	s.Device = crypto.PubkeyToAddress(s.DeviceKey.PublicKey)
	s.VIN = deriveVIN(seed, i)
	return s
}

// vinChars are the characters a VIN may hold (ISO 3779: no I, O or Q), and vinValues their values in
// the North American check digit.
const vinChars = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"

var vinWeights = [17]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}

func vinValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'H':
		return int(c-'A') + 1
	case c >= 'J' && c <= 'R':
		return int(c-'J') + 1
	default: // S to Z
		return int(c-'S') + 2
	}
}

// deriveVIN makes a well-formed 17-character VIN for vehicle i, with a valid check digit (position 9).
func deriveVIN(seed uint64, i int) string {
	rng := rand.New(rand.NewPCG(seed, streamID(i, 3)))
	var b [17]byte
	sum := 0
	for k := range b {
		b[k] = vinChars[rng.IntN(len(vinChars))]
		sum += vinValue(b[k]) * vinWeights[k]
	}
	sum -= vinValue(b[8]) * vinWeights[8]
	if d := sum % 11; d == 10 {
		b[8] = 'X'
	} else {
		b[8] = byte('0' + d)
	}
	return string(b[:])
}

// streamID separates the random streams of vehicle i.
func streamID(i int, stream uint64) uint64 {
	return uint64(i)*0x9E3779B97F4A7C15 ^ stream<<56 ^ 0x5851F42D4C957F2D
}

// deriveKey derives a secp256k1 key from the seed: keccak256 of a label, rehashed in the (astronomically
// unlikely) case it is not a valid scalar.
func deriveKey(seed uint64, i int, role string) *ecdsa.PrivateKey {
	h := crypto.Keccak256([]byte(fmt.Sprintf("glovebox-sim/v1/%d/%d/%s", seed, i, role)))
	for {
		k, err := crypto.ToECDSA(h)
		if err == nil {
			return k
		}
		h = crypto.Keccak256(h)
	}
}

// Phase is what a vehicle is doing.
type Phase uint8

// The phases of a vehicle's day.
const (
	PhaseParked     Phase = iota // locked, ignition off
	PhaseBoarding                // unlocked, driver's door open, about to leave
	PhaseDriving                 // ignition on: a trip, including waits at junctions
	PhaseAlighting               // arrived, ignition off, driver's door open
	PhaseRefuelling              // at a fuel station, the tank filling
	PhaseCharging                // plugged in and charging
)

func (p Phase) String() string {
	switch p {
	case PhaseParked:
		return "parked"
	case PhaseBoarding:
		return "boarding"
	case PhaseDriving:
		return "driving"
	case PhaseAlighting:
		return "alighting"
	case PhaseRefuelling:
		return "refuelling"
	case PhaseCharging:
		return "charging"
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// State is the simulator's ground truth about a vehicle when a record was measured, for tests and
// benchmarks; it is not sent.
type State struct {
	Phase    Phase
	Position LatLon
	Heading  float64 // degrees
	Speed    float64 // km/h
	Odometer float64 // km, unrounded
	Energy   float64 // % of fuel, or state of charge
	Online   bool    // false while the device has no coverage (the record waits in its backlog)
}

// Record is one signed record of one vehicle: signal values (telemetry.TypeSignals), or the driving events
// its device detected (telemetry.TypeEvents; only hardware dongles, which have an accelerometer, report
// them).
type Record struct {
	Vehicle    int // index in the fleet
	VehicleID  uint64
	Device     common.Address
	ID         string
	Time       time.Time               // the simulated time the record was measured
	Signals    []telemetry.EventSignal // nil in an events record
	Events     []telemetry.EventItem   // nil in a signals record
	Submission telemetry.Submission    // the event bytes and, when the fleet signs, the device's signature
	State      State
	Backfill   bool // delivered after a coverage gap, later than it was measured
}

// Fleet is a set of simulated vehicles sharing a clock. It needs no network: Step produces each tick's
// records. A Fleet is not safe for concurrent use.
type Fleet struct {
	// Sign makes Step sign each record with its device key (about 35 µs a record); NewFleet sets it.
	// Without it, Submission.Signature is nil.
	Sign bool
	// BackfillBatch is how many buffered records a vehicle sends per tick after a coverage gap.
	BackfillBatch int

	seed uint64
	now  int64 // unix ms
	vs   []*vehicle
}

// NewFleet returns a fleet of n vehicles with the specs Specs(seed, n), numbered 1 to n as vehicle ids,
// whose clock starts at start.
func NewFleet(seed uint64, n int, start time.Time) *Fleet {
	specs := Specs(seed, n)
	for i := range specs {
		specs[i].VehicleID = uint64(i + 1)
	}
	f, err := NewFleetFromSpecs(seed, specs, start)
	if err != nil {
		panic(err) // generated specs are always complete
	}
	return f
}

// NewFleetFromSpecs returns a fleet of the given vehicles (e.g. registered on a node, with their ledger
// ids); seed drives their behaviour.
func NewFleetFromSpecs(seed uint64, specs []Spec, start time.Time) (*Fleet, error) {
	f := &Fleet{Sign: true, BackfillBatch: 50, seed: seed, now: start.UnixMilli()}
	for i := range specs {
		s := specs[i]
		if s.DeviceKey == nil || s.VehicleID == 0 {
			return nil, fmt.Errorf("vehicle %d: a spec needs a device key and a vehicle id", i)
		}
		if cityByName(s.City) == nil {
			s.City = cities[i%len(cities)].Name
		}
		if s.Device == (common.Address{}) {
			s.Device = crypto.PubkeyToAddress(s.DeviceKey.PublicKey)
		}
		if s.VIN == "" {
			s.VIN = deriveVIN(seed, i)
		}
		f.vs = append(f.vs, newVehicle(seed, i, s, f.now))
	}
	return f, nil
}

// Len is the number of vehicles.
func (f *Fleet) Len() int { return len(f.vs) }

// Now is the fleet's clock.
func (f *Fleet) Now() time.Time { return time.UnixMilli(f.now) }

// Spec returns vehicle i's spec.
func (f *Fleet) Spec(i int) Spec { return f.vs[i].spec }

// Backlog is the number of records waiting in the devices' buffers for coverage to return.
func (f *Fleet) Backlog() int {
	n := 0
	for _, v := range f.vs {
		n += len(v.backlog)
	}
	return n
}

// Step advances the clock by dt (at least a millisecond) and returns the records the vehicles deliver at
// the new time: at most one new signals record per vehicle (every tick while active, every tenth tick
// while parked), an events record when its device detected driving events, and, for a vehicle whose coverage just returned, the records it buffered, oldest first. The
// records of one vehicle are always in time order. The result is the same for the same seed, specs,
// start and sequence of steps, whatever the number of CPUs.
func (f *Fleet) Step(dt time.Duration) []Record {
	to := f.now + max(dt.Milliseconds(), 1)
	from := f.now
	per := make([][]Record, len(f.vs))
	// Signing dominates the cost of a tick; without it only large fleets are worth the goroutines.
	workers := min(runtime.GOMAXPROCS(0), (len(f.vs)+7)/8)
	if !f.Sign && len(f.vs) < 256 {
		workers = 1
	}
	if workers <= 1 {
		for i, v := range f.vs {
			per[i] = v.step(f, from, to)
		}
	} else {
		var wg sync.WaitGroup
		chunk := (len(f.vs) + workers - 1) / workers
		for w := 0; w < workers; w++ {
			lo, hi := w*chunk, min((w+1)*chunk, len(f.vs))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					per[i] = f.vs[i].step(f, from, to)
				}
			}()
		}
		wg.Wait()
	}
	f.now = to
	n := 0
	for _, p := range per {
		n += len(p)
	}
	out := make([]Record, 0, n)
	for _, p := range per {
		out = append(out, p...)
	}
	return out
}

// Span is a period of ground truth; End is zero while it lasts.
type Span struct{ Start, End time.Time }

// Truth is what a vehicle did since the fleet started, for tests of what the node detects: its trips
// (ignition on to off, isIgnitionOn true between them), the periods it was in use (from the owner
// unlocking it to locking it after the trip: it reports every tick), refuelling stops (the nozzle in to the tank
// full), charging sessions (plugged in and charging to done or unplugged; one that began before the
// fleet started starts at its start), waits with the engine idling before a trip (at least 150 s), and
// surprise hard brakings (at least 3.8 m/s², 1.5 to 3 s, from above 30 km/h; reported as events by
// hardware dongles, and hard enough for the node's rule on speed values).
type Truth struct {
	Trips, Active, Refuels, Charges, Idles []Span
	Brakings                               []telemetry.EventItem
}

// Truth returns vehicle i's ground truth so far. The slices are copies.
func (f *Fleet) Truth(i int) Truth {
	t := f.vs[i].truth
	return Truth{Trips: slices.Clone(t.Trips), Active: slices.Clone(t.Active), Refuels: slices.Clone(t.Refuels), Charges: slices.Clone(t.Charges),
		Idles: slices.Clone(t.Idles), Brakings: slices.Clone(t.Brakings)}
}

// Submissions returns the records' submissions, in order.
func Submissions(recs []Record) []telemetry.Submission {
	out := make([]telemetry.Submission, len(recs))
	for i := range recs {
		out[i] = recs[i].Submission
	}
	return out
}
