package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// haversine is the test's own great-circle distance in metres, independent of the simulator's.
func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371008.8
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Atan2(math.Sqrt(a), math.Sqrt(1-a))
}

func initialBearing(lat1, lon1, lat2, lon2 float64) float64 {
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dl := (lon2 - lon1) * math.Pi / 180
	b := math.Atan2(math.Sin(dl)*math.Cos(p2), math.Cos(p1)*math.Sin(p2)-math.Sin(p1)*math.Cos(p2)*math.Cos(dl)) * 180 / math.Pi
	return math.Mod(b+360, 360)
}

func angle(a, b float64) float64 {
	d := math.Mod(math.Abs(a-b), 360)
	return math.Min(d, 360-d)
}

// fix is what the test reads back from one parsed record.
type fix struct {
	t                  time.Time
	phase              Phase
	lat, lon           float64
	hasLoc, hasHeading bool
	heading            float64
	speed              float64 // km/h
	odo                float64 // km
	ignition           bool
	fuelAbs, soc       float64
	hasFuel, hasSoC    bool
	charging, hasCharg bool
}

func readFix(t *testing.T, r *Record, rec *telemetry.Record) fix {
	t.Helper()
	f := fix{t: r.Time, phase: r.State.Phase, fuelAbs: -1, soc: -1}
	seen := map[string]bool{}
	var hasSpeed, hasOdo, hasIgn bool
	for _, v := range rec.Values {
		name := v.Signal.Name
		if seen[name] {
			t.Fatalf("record %s of vehicle %d carries %s twice", r.ID, r.VehicleID, name)
		}
		seen[name] = true
		if v.Time != r.Time.UnixMilli() {
			t.Fatalf("record %s: %s timestamp %d, record time %d", r.ID, name, v.Time, r.Time.UnixMilli())
		}
		switch name {
		case sigLocation:
			f.lat, f.lon, f.hasLoc = v.Lat, v.Lon, true
		case sigHeading:
			f.heading, f.hasHeading = v.Number, true
		case sigSpeed:
			f.speed, hasSpeed = v.Number, true
		case sigOdometer:
			f.odo, hasOdo = v.Number, true
		case sigIgnition:
			f.ignition, hasIgn = v.Number == 1, true
		case sigFuelAbsolute:
			f.fuelAbs, f.hasFuel = v.Number, true
		case sigSoC:
			f.soc, f.hasSoC = v.Number, true
		case sigFuelRelative:
			if v.Number < 0 || v.Number > 100 {
				t.Fatalf("record %s: fuel level %v%%", r.ID, v.Number)
			}
		case sigCharging:
			f.charging, f.hasCharg = v.Number == 1, true
		}
	}
	if !f.hasLoc || !hasSpeed || !hasOdo || !hasIgn {
		t.Fatalf("record %s lacks location, speed, odometer or ignition: %v", r.ID, seen)
	}
	return f
}

// TestSimulatedDayIsPhysicallyPlausible drives 25 vehicles for a simulated day in one-second ticks and checks the
// records against physics, the catalogue and the wire format.
func TestSimulatedDayIsPhysicallyPlausible(t *testing.T) {
	start := time.Date(2025, 6, 2, 3, 0, 0, 0, time.UTC) // a Monday
	steps := 86400
	if testing.Short() {
		steps = 6 * 3600
	}
	f := NewFleet(42, 25, start)
	f.Sign = false // the wire format and values do not depend on the signature; determinism covers signing
	last := map[int]fix{}
	first := map[int]fix{}
	integrated := map[int]float64{} // m, from the reported speeds
	perVehicleTick := map[int]int{}
	var records, moving, backfilled, turns, events int
	phases := map[Phase]int{}
	var fuelUp, socUp int
	for i := 0; i < steps; i++ {
		recs := f.Step(time.Second)
		now := f.Now()
		clear(perVehicleTick)
		for k := range recs {
			r := &recs[k]
			records++
			phases[r.State.Phase]++
			if r.Backfill {
				backfilled++
			}
			perVehicleTick[r.Vehicle]++
			if n := perVehicleTick[r.Vehicle]; n > f.BackfillBatch {
				t.Fatalf("vehicle %d delivered %d records in one tick", r.Vehicle, n)
			}
			if !r.Backfill && !r.Time.Equal(now) {
				t.Fatalf("record %s: time %v, tick %v", r.ID, r.Time, now)
			}
			sub := r.Submission
			parsed, err := telemetry.DefaultCatalog.Parse(&sub, now.UnixMilli())
			if err != nil {
				t.Fatalf("record %s of vehicle %d does not parse: %v\n%s", r.ID, r.Vehicle, err, r.Submission.Event)
			}
			if r.Events != nil {
				if len(parsed.Events) != len(r.Events) || len(parsed.Values) != 0 || f.Spec(r.Vehicle).DeviceKind != ledger.KindHardware {
					t.Fatalf("events record %s of vehicle %d: %d events, %d values\n%s", r.ID, r.Vehicle, len(parsed.Events), len(parsed.Values), r.Submission.Event)
				}
				events += len(parsed.Events)
				continue
			}
			if n := len(parsed.Values); n < MinSignals || n > MaxSignals {
				t.Fatalf("record %s carries %d signals", r.ID, n)
			}
			if parsed.VehicleID != r.VehicleID || parsed.Source != r.Device || parsed.ID != r.ID || parsed.Time != r.Time.UnixMilli() {
				t.Fatalf("record %s: envelope %d %s %s %d", r.ID, parsed.VehicleID, parsed.Source.Hex(), parsed.ID, parsed.Time)
			}
			cur := readFix(t, r, parsed)
			if cur.ignition != (cur.phase == PhaseDriving) {
				t.Fatalf("record %s: ignition %v in phase %s", r.ID, cur.ignition, cur.phase)
			}
			if cur.speed > 0 && cur.phase != PhaseDriving {
				t.Fatalf("record %s: speed %v km/h in phase %s", r.ID, cur.speed, cur.phase)
			}
			if cur.hasSoC && (cur.soc < 0 || cur.soc > 100) {
				t.Fatalf("record %s: state of charge %v", r.ID, cur.soc)
			}
			if cur.hasCharg && cur.charging != (cur.phase == PhaseCharging) {
				t.Fatalf("record %s: charging %v in phase %s", r.ID, cur.charging, cur.phase)
			}
			if cur.phase == PhaseDriving && !cur.hasHeading {
				t.Fatalf("record %s: a moving vehicle's record without heading", r.ID)
			}
			prev, ok := last[r.Vehicle]
			last[r.Vehicle] = cur
			if !ok {
				first[r.Vehicle] = cur
				continue
			}
			dt := cur.t.Sub(prev.t).Seconds()
			if dt <= 0 {
				t.Fatalf("vehicle %d: record %s at %v after one at %v", r.Vehicle, r.ID, cur.t, prev.t)
			}
			if cur.odo < prev.odo {
				t.Fatalf("vehicle %d: odometer went back from %v to %v km", r.Vehicle, prev.odo, cur.odo)
			}
			dOdo := (cur.odo - prev.odo) * 1000
			chord := haversine(prev.lat, prev.lon, cur.lat, cur.lon)
			if cur.phase == PhaseDriving || prev.phase == PhaseDriving {
				if dt != 1 {
					t.Fatalf("vehicle %d: %v s between records while driving", r.Vehicle, dt)
				}
				moving++
				trap := (prev.speed + cur.speed) / 2 / 3.6 * dt
				integrated[r.Vehicle] += trap
				// The path is trap metres long; a turn by θ within it shortens the chord to no less
				// than trap·cos(θ/2).
				turn := 0.0
				if prev.hasHeading && cur.hasHeading {
					turn = angle(prev.heading, cur.heading)
				}
				if chord > trap+1.5 || chord < trap*math.Cos(turn/2*math.Pi/180)-1.5 {
					t.Fatalf("vehicle %d at %v: moved %.2f m in %v s at %.1f→%.1f km/h turning %.0f° (%.2f m expected)", r.Vehicle, cur.t, chord, dt, prev.speed, cur.speed, turn, trap)
				}
				if math.Abs(dOdo-trap) > 1.5+0.02*trap {
					t.Fatalf("vehicle %d at %v: odometer grew %.2f m, speeds say %.2f m", r.Vehicle, cur.t, dOdo, trap)
				}
				if chord > dOdo+1.5 {
					t.Fatalf("vehicle %d at %v: moved %.2f m, odometer only %.2f m", r.Vehicle, cur.t, chord, dOdo)
				}
				if acc := (cur.speed - prev.speed) / 3.6 / dt; acc > maxAccel+0.05 || acc < -brakeMax-0.05 {
					t.Fatalf("vehicle %d at %v: acceleration %.2f m/s²", r.Vehicle, cur.t, acc)
				}
				if chord > 3 && prev.hasHeading && cur.hasHeading {
					b := initialBearing(prev.lat, prev.lon, cur.lat, cur.lon)
					// The chord's bearing lies on the arc between the two headings (a turn in between).
					if angle(b, prev.heading)+angle(b, cur.heading) > angle(prev.heading, cur.heading)+2.5 {
						t.Fatalf("vehicle %d at %v: moved towards %.1f° with headings %.1f° then %.1f°", r.Vehicle, cur.t, b, prev.heading, cur.heading)
					}
					if angle(prev.heading, cur.heading) > 3 {
						turns++
					}
				}
			} else {
				if chord > 0.5 || dOdo > 0.5 {
					t.Fatalf("vehicle %d at %v: moved %.2f m (odometer %.2f m) while %s", r.Vehicle, cur.t, chord, dOdo, cur.phase)
				}
			}
			service := func(p Phase) bool { return p == PhaseRefuelling || p == PhaseCharging }
			if prev.hasFuel && cur.hasFuel && cur.fuelAbs > prev.fuelAbs {
				if !service(prev.phase) && !service(cur.phase) {
					t.Fatalf("vehicle %d at %v: fuel rose %.2f → %.2f l while %s", r.Vehicle, cur.t, prev.fuelAbs, cur.fuelAbs, cur.phase)
				}
				fuelUp++
			}
			if prev.hasSoC && cur.hasSoC && cur.soc > prev.soc {
				if !service(prev.phase) && !service(cur.phase) {
					t.Fatalf("vehicle %d at %v: state of charge rose %.1f → %.1f %% while %s", r.Vehicle, cur.t, prev.soc, cur.soc, cur.phase)
				}
				socUp++
			}
		}
	}
	for v, fx := range last {
		total := (fx.odo - first[v].odo) * 1000
		if math.Abs(total-integrated[v]) > 20+0.005*total {
			t.Errorf("vehicle %d: odometer grew %.0f m, the speeds integrate to %.0f m", v, total, integrated[v])
		}
	}
	if len(last) != 25 {
		t.Errorf("%d vehicles reported, want 25", len(last))
	}
	t.Logf("%d records (%d backfilled), %d moving intervals, %d turns; phases %v; %d charging and %d refuelling increases; %d driving events reported",
		records, backfilled, moving, turns, phases, socUp, fuelUp, events)
	if moving == 0 || turns == 0 || phases[PhaseParked] == 0 || phases[PhaseBoarding] == 0 || phases[PhaseAlighting] == 0 {
		t.Errorf("the day lacks driving, turns or parking: %v", phases)
	}
	if !testing.Short() && (socUp == 0 || backfilled == 0 || events == 0) {
		t.Errorf("a day of 25 vehicles should include charging (%d), backfill after coverage gaps (%d) and driving events (%d)", socUp, backfilled, events)
	}
}

// TestSimulatedRefuellingAndCharging runs a few vehicles for a week in coarse ticks: fuel and charge run low and
// are replenished, only at stations and chargers.
func TestSimulatedRefuellingAndCharging(t *testing.T) {
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	f := NewFleet(3, 10, start)
	f.Sign = false
	var refuels, charges int
	prevEnergy := map[int]float64{}
	prevPhase := map[int]Phase{}
	for i := 0; i < 7*24*360; i++ {
		for _, r := range f.Step(10 * time.Second) {
			e := r.State.Energy
			if e < 0 || e > 100.0001 {
				t.Fatalf("vehicle %d: energy %.2f%%", r.Vehicle, e)
			}
			if p, ok := prevEnergy[r.Vehicle]; ok && e > p+1e-9 {
				ph, pph := r.State.Phase, prevPhase[r.Vehicle]
				switch {
				case ph == PhaseRefuelling || pph == PhaseRefuelling:
					refuels++
				case ph == PhaseCharging || pph == PhaseCharging:
					charges++
				default:
					t.Fatalf("vehicle %d: energy rose %.2f → %.2f%% while %s", r.Vehicle, p, e, ph)
				}
			}
			prevEnergy[r.Vehicle], prevPhase[r.Vehicle] = e, r.State.Phase
		}
	}
	if refuels == 0 || charges == 0 {
		t.Errorf("a week of 10 vehicles: %d refuelling and %d charging records", refuels, charges)
	}
}

// TestSimulatorIsDeterministic: the same seed gives byte-identical signed events; another seed other ones.
func TestSimulatorIsDeterministic(t *testing.T) {
	start := time.Date(2025, 9, 1, 6, 30, 0, 0, time.UTC)
	run := func(seed uint64) [][]byte {
		f := NewFleet(seed, 25, start)
		var out [][]byte
		for i := 0; i < 900; i++ {
			for _, r := range f.Step(time.Second) {
				b, err := json.Marshal(r.Submission)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
		}
		return out
	}
	a, b := run(99), run(99)
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d and %d records", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("record %d differs:\n%s\n%s", i, a[i], b[i])
		}
	}
	for i := range a {
		var sub telemetry.Submission
		var env struct{ Event, Signature string }
		if err := json.Unmarshal(a[i], &env); err != nil {
			t.Fatal(err)
		}
		subs, _, err := telemetry.ParseSubmissions(a[i], 1)
		if err != nil {
			t.Fatal(err)
		}
		sub = subs[0]
		rec, err := telemetry.DefaultCatalog.Parse(&sub, start.Add(time.Hour).UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		signer, err := sub.Signer()
		if err != nil || signer != rec.Source {
			t.Fatalf("record %d signed by %v (%v), source %v", i, signer.Hex(), err, rec.Source.Hex())
		}
	}
	c := run(100)
	if len(c) > 0 && len(c) == len(a) && bytes.Equal(c[0], a[0]) {
		t.Error("seeds 99 and 100 gave the same first record")
	}
	// Keys and vehicles derive from the seed; a larger fleet starts with the smaller one.
	s25, s30 := Specs(99, 25), Specs(99, 30)
	for i := range s25 {
		if s25[i].Device != s30[i].Device || s25[i].Owner != s30[i].Owner || s25[i].Model != s30[i].Model {
			t.Fatalf("spec %d differs between fleets of 25 and 30", i)
		}
	}
}

// TestSimulatedFleetMix checks the fleet's composition: every fifth vehicle an EV with a software connector, the rest
// petrol and diesel with dongles, several cities, plausible years.
func TestSimulatedFleetMix(t *testing.T) {
	specs := Specs(1, 100)
	count := map[Powertrain]int{}
	citySet := map[string]bool{}
	for i, s := range specs {
		count[s.Powertrain]++
		citySet[s.City] = true
		if (i%5 == 4) != (s.Powertrain == Electric) || (s.Powertrain == Electric) != (s.DeviceKind == "software") {
			t.Errorf("vehicle %d: %s with a %s device", i, s.Powertrain, s.DeviceKind)
		}
		if s.Year < 2008 || s.Year > 2025 || s.Make == "" || s.Model == "" {
			t.Errorf("vehicle %d: %s %s %d", i, s.Make, s.Model, s.Year)
		}
	}
	if count[Petrol] == 0 || count[Diesel] == 0 || count[Electric] != 20 || len(citySet) < 5 {
		t.Errorf("mix %v, %d cities", count, len(citySet))
	}
}

// TestSimulatedRoutesAreRoadLike: routes end where they should, turn, and follow the city's grid.
func TestSimulatedRoutesAreRoadLike(t *testing.T) {
	f := NewFleet(5, 1, time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC))
	v := f.vs[0]
	for i := 0; i < 50; i++ {
		a, b := v.places[i%len(v.places)].pos, v.places[(i*7+3)%len(v.places)].pos
		if a == b {
			continue
		}
		r := newRoute(v.rng, v.c, a, b)
		if r.pts[0] != a || r.pts[len(r.pts)-1] != b {
			t.Fatal("the route does not join its ends")
		}
		straight := Distance(a, b)
		if r.total < straight-1 || r.total > 3*straight+500 {
			t.Errorf("route of %.0f m between points %.0f m apart", r.total, straight)
		}
		var turns int
		for k := 1; k < len(r.brg); k++ {
			if AngleDiff(r.brg[k-1], r.brg[k]) > 20 {
				turns++
			}
		}
		if straight > 1500 && turns == 0 {
			t.Errorf("a %.0f m route without a turn", straight)
		}
		for k, lim := range r.limit {
			if lim < kmh(30)-1e-9 || lim > kmh(120)+1e-9 {
				t.Errorf("segment %d: limit %.0f km/h", k, lim*3.6)
			}
		}
	}
}

func TestDerivedVINsAreWellFormed(t *testing.T) {
	for _, c := range []struct {
		vin  string
		want bool
	}{
		{"1M8GDM9AXKP042788", true}, // the check-digit example of 49 CFR 565
		{"1M8GDM9A1KP042788", false},
	} {
		if got := vinCheckDigitValid(c.vin); got != c.want {
			t.Errorf("check digit of %s valid = %v, want %v", c.vin, got, c.want)
		}
	}
	seen := map[string]bool{}
	for i, s := range Specs(7, 50) {
		if len(s.VIN) != 17 || strings.ContainsAny(s.VIN, "IOQ") || !vinCheckDigitValid(s.VIN) {
			t.Fatalf("vehicle %d: VIN %q is not a well-formed VIN", i, s.VIN)
		}
		if seen[s.VIN] {
			t.Fatalf("vehicle %d: VIN %s repeats", i, s.VIN)
		}
		seen[s.VIN] = true
	}
}

func vinCheckDigitValid(vin string) bool {
	sum := 0
	for k := 0; k < 17; k++ {
		if k != 8 {
			sum += vinValue(vin[k]) * vinWeights[k]
		}
	}
	want := byte('0' + sum%11)
	if sum%11 == 10 {
		want = 'X'
	}
	return vin[8] == want
}
