package sim

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// Driving physics.
const (
	brakePlan   = 2.8  // m/s², the deceleration a driver plans for
	brakeMax    = 5.0  // m/s², the hardest braking
	maxAccel    = 3.0  // m/s², the hardest acceleration
	wheelRadius = 0.31 // m
	finalDrive  = 3.9
	airDensity  = 1.2
	rolling     = 0.011
	gravity     = 9.81
)

var gearRatios = []float64{0, 3.6, 2.1, 1.4, 1.0, 0.8, 0.66}

// gearUp is the speed (km/h) from which each gear is used.
var gearUp = []float64{0, 0, 16, 30, 48, 66, 88}

type placeKind uint8

const (
	placeHome placeKind = iota
	placeWork
	placeShop
	placeLeisure
	placeFuel
	placeCharger
)

type place struct {
	kind placeKind
	pos  LatLon
}

// vehicle is one simulated vehicle's state.
type vehicle struct {
	index       int
	spec        Spec
	m           *model
	c           *city
	zone        *time.Location
	rng         *rand.Rand
	places      []place
	commuter    bool
	homeCharger bool
	wallboxKW   float64
	aMax        float64 // m/s², how briskly this driver accelerates
	factor      float64 // share of the speed limit this driver cruises at
	tempBias    float64 // °C, the exterior sensor's bias
	soh         float64 // % state of health of the traction battery
	parkedEvery uint64  // report every this many ticks while parked

	phase    Phase
	at       int // place index where the vehicle is (when not driving)
	dest     int // place index the trip goes to
	after    int // place to go to after a refuelling or charging stop; -1 none
	departAt int64
	phaseEnd int64

	pos      LatLon
	alt      float64
	heading  float64
	speed    float64 // m/s
	accel    float64 // m/s²
	yaw      float64 // degrees/s
	rt       *route
	seg      int
	segPos   float64
	dwell    float64 // s left at a red light
	pullAway float64 // s of idling before moving off

	odo         float64 // m
	fuel        float64 // l (combustion)
	fuelTarget  float64 // l, when refuelling
	energy      float64 // kWh in the traction battery (electric)
	capacity    float64 // kWh at 100 %
	chargeLimit float64 // %
	chargeKW    float64 // power of the current charging session
	chargeDC    bool
	plugged     bool
	added       float64 // kWh added this session
	battTemp    float64 // °C
	powerW      float64 // traction battery power, + into the battery

	ect      float64 // °C coolant
	engineOn int64   // unix ms the engine started
	fuelRate float64 // l/h
	rpm      float64
	load     float64 // %
	tps      float64 // %
	gear     int
	maf      float64 // g/s

	tireWarm    float64 // °C above ambient
	tireNominal [4]float64
	leak        int // index of a slowly leaking tire, -1 none
	leakRate    float64
	tireLoss    [4]float64 // kPa lost to the leak
	parkedSince int64
	dtcs        []string
	dtcSince    int64

	doorOpen  bool
	locked    bool
	changed   bool // the state changed in a way worth a record now
	tripStart bool

	tick         uint64
	seq          uint64
	offlineUntil int64
	nextOutage   int64
	outageMean   float64 // s between outages
	backlog      []Record

	// Surprises: now and then the driver brakes hard for something on the road (a stream of its own,
	// so that the rest of the simulation does not depend on it).
	hazRng      *rand.Rand
	hazardEvery float64               // s of driving above 30 km/h between surprises, on average
	hazard      float64               // s of hard braking left; 0 when none
	hazardDecel float64               // m/s²
	hazardStart int64                 // unix ms
	hazardFrom  float64               // m/s at the start
	events      []telemetry.EventItem // detected by the device, waiting to be sent
	truth       Truth
}

func (v *vehicle) uniform(lo, hi float64) float64 { return lo + v.rng.Float64()*(hi-lo) }

func (v *vehicle) ms(s float64) int64 { return int64(math.Round(s * 1000)) }

func newVehicle(seed uint64, i int, s Spec, start int64) *vehicle {
	v := &vehicle{index: i, spec: s, after: -1, leak: -1}
	v.rng = rand.New(rand.NewPCG(seed, streamID(i, 2)))
	v.hazRng = rand.New(rand.NewPCG(seed, streamID(i, 3)))
	v.hazardEvery = 1800 + v.hazRng.Float64()*5400
	v.m = lookupModel(s.Make, s.Model, s.Powertrain)
	v.c = cityByName(s.City)
	v.zone = v.c.zone()
	v.commuter = v.rng.Float64() < 0.8
	v.homeCharger = v.rng.Float64() < 0.8
	v.wallboxKW = []float64{7.4, 7.4, 11}[v.rng.IntN(3)]
	v.aMax = v.uniform(1.6, maxAccel)
	v.factor = v.uniform(0.9, 1.04)
	v.tempBias = v.uniform(-0.8, 1.2)
	v.soh = v.uniform(88, 100)
	v.parkedEvery = 10

	// Places: home in the residential sprawl, work nearer the centre (some far out), shops near home,
	// leisure anywhere, fuel stations and fast chargers near home.
	around := func(o LatLon, rmin, rmax float64) LatLon {
		r := rmin + math.Sqrt(v.rng.Float64())*(rmax-rmin)
		a := v.rng.Float64() * 2 * math.Pi
		return offset(o, r*math.Cos(a), r*math.Sin(a))
	}
	sprawl := v.c.Sprawl
	home := around(v.c.Centre, 0.15*sprawl, sprawl)
	v.places = append(v.places, place{placeHome, home})
	if v.rng.Float64() < 0.15 {
		v.places = append(v.places, place{placeWork, around(v.c.Centre, 1.2*sprawl, 1.8*sprawl)})
	} else {
		v.places = append(v.places, place{placeWork, around(v.c.Centre, 0, 0.5*sprawl)})
	}
	for k := 0; k < 3; k++ {
		v.places = append(v.places, place{placeShop, around(home, 500, 4000)})
	}
	for k := 0; k < 2; k++ {
		v.places = append(v.places, place{placeLeisure, around(v.c.Centre, 1000, 1.2*sprawl)})
	}
	for k := 0; k < 2; k++ {
		v.places = append(v.places, place{placeFuel, around(home, 600, 3000)})
	}
	for k := 0; k < 2; k++ {
		v.places = append(v.places, place{placeCharger, around(home, 1000, 6000)})
	}

	startYear := time.UnixMilli(start).UTC().Year()
	age := max(0.3, float64(startYear-int(s.Year))+v.rng.Float64())
	v.odo = age * v.uniform(9000, 18000) * 1000
	v.capacity = v.m.Tank * 0.96 * v.soh / 100
	switch s.Powertrain {
	case Electric:
		v.energy = v.capacity * v.uniform(0.45, 0.9)
		v.chargeLimit = []float64{80, 80, 90, 100}[v.rng.IntN(4)]
	default:
		v.fuel = v.m.Tank * v.uniform(0.3, 0.95)
	}
	for k := range v.tireNominal {
		v.tireNominal[k] = v.m.TirePressure + v.uniform(-8, 6)
	}
	if v.rng.IntN(6) == 0 {
		v.leak = v.rng.IntN(4)
		v.leakRate = v.uniform(3, 12) / 86400 // kPa/s: a few kPa a day
	}
	if v.rng.IntN(10) == 0 {
		v.dtcs = []string{v.randomDTC()}
		v.dtcSince = start
	}

	v.at = 0
	v.pos = home
	v.alt = v.altitude(home)
	v.heading = math.Floor(v.rng.Float64() * 360)
	v.phase, v.locked = PhaseParked, true
	v.parkedSince = start - v.ms(v.uniform(600, 36000))
	amb := v.c.temperature(time.UnixMilli(start))
	v.ect, v.battTemp = amb, amb
	if s.Powertrain == Electric && v.homeCharger {
		v.plugged = true
		if v.soc() < v.chargeLimit-3 {
			v.phase, v.chargeKW = PhaseCharging, min(v.wallboxKW, v.m.ACkW)
			v.truth.Charges = append(v.truth.Charges, Span{Start: time.UnixMilli(start).UTC()})
		}
	}
	if i%3 == 0 {
		v.departAt = start + v.ms(v.uniform(1, 12)) // a third of the fleet sets off at once
	} else {
		v.departAt = v.planDeparture(start)
	}
	if v.rng.Float64() < 0.5 {
		v.outageMean = 5 * 3600 // patchy coverage
	} else {
		v.outageMean = 3 * 86400
	}
	v.nextOutage = start + v.ms(v.rng.ExpFloat64()*v.outageMean)
	v.changed = true
	return v
}

func (v *vehicle) randomDTC() string {
	codes := dtcCodes[v.spec.Powertrain]
	return codes[v.rng.IntN(len(codes))]
}

// altitude is a smooth terrain around the city centre.
func (v *vehicle) altitude(p LatLon) float64 {
	x, y := local(v.c.Centre, p)
	return v.c.Altitude + 18*math.Sin(x/1700+0.7) + 11*math.Cos(y/2300) + 6*math.Sin((x+y)/900)
}

func (v *vehicle) ambient(t int64) float64 {
	return v.c.temperature(time.UnixMilli(t)) + v.tempBias
}

// localAt returns the unix ms of the local time hour (e.g. 7.5) on the day dayOffset days after t's.
func (v *vehicle) localAt(t int64, dayOffset int, hour float64) int64 {
	lt := time.UnixMilli(t).In(v.zone)
	y, m, d := lt.Date()
	return time.Date(y, m, d+dayOffset, 0, 0, 0, 0, v.zone).UnixMilli() + v.ms(hour*3600)
}

func (v *vehicle) localHour(t int64) (float64, time.Weekday) {
	lt := time.UnixMilli(t).In(v.zone)
	return float64(lt.Hour()) + float64(lt.Minute())/60 + float64(lt.Second())/3600, lt.Weekday()
}

func workday(d time.Weekday) bool { return d != time.Saturday && d != time.Sunday }

// morning is when the vehicle leaves home on the day dayOffset days after t's.
func (v *vehicle) morning(t int64, dayOffset int) int64 {
	day := time.UnixMilli(t).In(v.zone).AddDate(0, 0, dayOffset).Weekday()
	if v.commuter && workday(day) {
		return v.localAt(t, dayOffset, v.uniform(6.6, 8.8))
	}
	return v.localAt(t, dayOffset, v.uniform(8.5, 12.5))
}

// planDeparture is when the vehicle, parked at its place since t, leaves again.
func (v *vehicle) planDeparture(t int64) int64 {
	h, _ := v.localHour(t)
	var dep int64
	switch v.places[v.at].kind {
	case placeHome:
		switch {
		case h < 5.5:
			dep = v.morning(t, 0)
		case h >= 20:
			dep = v.morning(t, 1)
		default:
			dep = t + v.ms(v.uniform(2400, 4*3600))
			if dh, _ := v.localHour(dep); dh >= 21.5 || dh < 5.5 {
				dep = v.morning(t, 1)
			}
		}
	case placeWork:
		if h < 14 {
			dep = v.localAt(t, 0, v.uniform(16.2, 18.8))
		} else {
			dep = t + v.ms(v.uniform(3600, 2.5*3600))
		}
	case placeShop:
		dep = t + v.ms(v.uniform(12*60, 75*60))
	case placeLeisure:
		dep = t + v.ms(v.uniform(40*60, 3*3600))
	default:
		dep = t + v.ms(v.uniform(60, 240)) // after a service stop (set again when it ends)
	}
	return max(dep, t+60_000)
}

// chooseDestination picks where the trip leaving now goes, inserting a fuel or charging stop when needed.
func (v *vehicle) chooseDestination(t int64) {
	h, wd := v.localHour(t)
	pick := func(kinds ...placeKind) int {
		var idx []int
		for i, p := range v.places {
			for _, k := range kinds {
				if p.kind == k && i != v.at {
					idx = append(idx, i)
				}
			}
		}
		if len(idx) == 0 {
			return 0
		}
		return idx[v.rng.IntN(len(idx))]
	}
	dest := 0
	switch {
	case v.after >= 0:
		dest, v.after = v.after, -1
	default:
		switch v.places[v.at].kind {
		case placeHome:
			if v.commuter && workday(wd) && h < 11 {
				dest = 1
			} else if v.rng.Float64() < 0.55 {
				dest = pick(placeShop)
			} else {
				dest = pick(placeLeisure)
			}
		case placeWork:
			if v.rng.Float64() < 0.75 {
				dest = 0
			} else {
				dest = pick(placeShop)
			}
		case placeShop, placeLeisure:
			if h >= 19 || v.rng.Float64() < 0.55 {
				dest = 0
			} else {
				dest = pick(placeShop, placeLeisure)
			}
		default:
			dest = 0
		}
	}
	if dest == v.at {
		dest = 0
		if v.at == 0 {
			dest = 1
		}
	}
	switch v.spec.Powertrain {
	case Electric:
		soc := v.soc()
		if soc < 22 || (!v.homeCharger && soc < 35) {
			if !(dest == 0 && v.homeCharger) {
				v.after, dest = dest, pick(placeCharger)
			}
		}
	default:
		if v.fuel < 0.2*v.m.Tank {
			v.after, dest = dest, pick(placeFuel)
		}
	}
	v.dest = dest
}

func (v *vehicle) soc() float64 { return 100 * v.energy / v.capacity }

// advance runs the vehicle from time from to time to (unix ms).
func (v *vehicle) advance(from, to int64) {
	t := from
	for t < to {
		switch v.phase {
		case PhaseParked:
			next := min(to, v.departAt)
			v.passive(t, next)
			t = next
			if t >= v.departAt {
				v.board(t)
			}
		case PhaseCharging:
			done := t + v.ms(max(0, v.chargeLimit/100*v.capacity-v.energy)/(v.chargeKW*0.92)*3600)
			next := min(to, v.departAt, max(done, t+1))
			v.passive(t, next)
			t = next
			if t >= done || v.energy >= v.chargeLimit/100*v.capacity {
				v.endCharging(t)
			} else if t >= v.departAt {
				v.endCharging(t)
				v.board(t)
			}
		case PhaseRefuelling:
			done := t + v.ms(max(0, v.fuelTarget-v.fuel)/0.55)
			next := min(to, max(done, t+1))
			v.passive(t, next)
			t = next
			if t >= done || v.fuel >= v.fuelTarget {
				v.truth.Refuels[len(v.truth.Refuels)-1].End = time.UnixMilli(t).UTC()
				v.phase, v.changed = PhaseParked, true
				v.departAt = t + v.ms(v.uniform(60, 240)) // pay, then leave
			}
		case PhaseBoarding:
			next := min(to, v.phaseEnd)
			v.passive(t, next)
			t = next
			if t >= v.phaseEnd {
				v.depart(t)
			}
		case PhaseAlighting:
			next := min(to, v.phaseEnd)
			v.passive(t, next)
			t = next
			if t >= v.phaseEnd {
				v.park(t)
			}
		case PhaseDriving:
			step := min(to-t, 1000)
			arrived := v.drive(t, float64(step)/1000)
			t += step
			if arrived {
				v.arrive(t)
			}
		}
	}
}

// passive advances a vehicle that is not driving: cooling, charging, refuelling, a leaking tyre.
func (v *vehicle) passive(from, to int64) {
	if to <= from {
		return
	}
	dt := float64(to-from) / 1000
	amb := v.ambient(to)
	v.ect = amb + (v.ect-amb)*math.Exp(-dt/2400)
	v.tireWarm *= math.Exp(-dt / 1500)
	v.speed, v.accel, v.yaw = 0, 0, 0
	v.powerW, v.fuelRate = 0, 0
	if v.leak >= 0 {
		v.tireLoss[v.leak] += v.leakRate * dt
	}
	battTarget := amb
	switch v.phase {
	case PhaseCharging:
		e := v.chargeKW * 0.92 * dt / 3600
		e = min(e, max(0, v.chargeLimit/100*v.capacity-v.energy))
		v.energy += e
		v.added += e
		v.powerW = v.chargeKW * 0.92 * 1000
		battTarget = amb + 6
		if v.chargeDC {
			battTarget = max(amb, 20) + 14
		}
	case PhaseRefuelling:
		v.fuel = min(v.fuelTarget, v.fuel+0.55*dt)
	}
	v.battTemp = battTarget + (v.battTemp-battTarget)*math.Exp(-dt/5400)
}

func (v *vehicle) endCharging(t int64) {
	if n := len(v.truth.Charges); n > 0 && v.truth.Charges[n-1].End.IsZero() {
		v.truth.Charges[n-1].End = time.UnixMilli(t).UTC()
	}
	v.phase, v.changed = PhaseParked, true
	v.chargeKW, v.powerW = 0, 0
	if v.chargeDC {
		v.plugged, v.chargeDC = false, false
		v.departAt = t + v.ms(v.uniform(120, 480)) // unplug, walk back, leave
	}
}

// board: the owner walks up, unlocks and opens the driver's door.
func (v *vehicle) board(t int64) {
	v.phase, v.changed = PhaseBoarding, true
	v.phaseEnd = t + v.ms(v.uniform(6, 40))
	v.truth.Active = append(v.truth.Active, Span{Start: time.UnixMilli(t).UTC()})
	v.locked, v.doorOpen = false, true
	if v.plugged {
		v.plugged, v.chargeKW, v.chargeDC = false, 0, false
	}
	if len(v.dtcs) > 0 && t-v.dtcSince > v.ms(v.uniform(2, 6)*86400) {
		v.dtcs = nil // repaired
	}
	if v.leak >= 0 && v.tireLoss[v.leak] > 0.18*v.tireNominal[v.leak] {
		v.inflate()
	}
	v.chooseDestination(t)
}

// inflate: the driver notices the soft tyre and inflates it; half the time the puncture gets fixed.
func (v *vehicle) inflate() {
	v.tireLoss = [4]float64{}
	if v.rng.IntN(2) == 0 {
		v.leak = -1
	}
}

// depart: door closed, ignition on, the route planned.
func (v *vehicle) depart(t int64) {
	v.phase, v.changed, v.tripStart = PhaseDriving, true, true
	v.doorOpen = false
	v.engineOn = t
	v.pullAway = v.uniform(3, 15)
	if v.hazRng.IntN(8) == 0 && v.spec.Powertrain != Electric {
		// Waiting with the engine running (a passenger, the windscreen clearing).
		v.pullAway = 150 + 270*v.hazRng.Float64()
		v.truth.Idles = append(v.truth.Idles, Span{time.UnixMilli(t).UTC(), time.UnixMilli(t + v.ms(v.pullAway)).UTC()})
	}
	v.truth.Trips = append(v.truth.Trips, Span{Start: time.UnixMilli(t).UTC()})
	v.rt = newRoute(v.rng, v.c, v.places[v.at].pos, v.places[v.dest].pos)
	v.seg, v.segPos, v.dwell = 0, 0, 0
	if len(v.dtcs) < 3 && v.rng.IntN(60) == 0 {
		code := v.randomDTC()
		dup := false
		for _, c := range v.dtcs {
			dup = dup || c == code
		}
		if !dup {
			v.dtcs = append(v.dtcs, code)
			if len(v.dtcs) == 1 {
				v.dtcSince = t
			}
		}
	}
}

// arrive: stopped at the destination, ignition off, the driver's door opens.
func (v *vehicle) arrive(t int64) {
	v.phase, v.changed = PhaseAlighting, true
	v.phaseEnd = t + v.ms(v.uniform(4, 30))
	v.truth.Trips[len(v.truth.Trips)-1].End = time.UnixMilli(t).UTC()
	v.speed, v.accel, v.yaw, v.rpm, v.load, v.tps, v.maf, v.fuelRate, v.powerW = 0, 0, 0, 0, 0, 0, 0, 0, 0
	v.doorOpen, v.locked = true, false
	v.at, v.rt = v.dest, nil
	v.parkedSince = t
}

// park: door closed and locked; refuel or plug in when this is the place for it.
func (v *vehicle) park(t int64) {
	v.truth.Active[len(v.truth.Active)-1].End = time.UnixMilli(t).UTC()
	v.phase, v.changed = PhaseParked, true
	v.doorOpen, v.locked = false, true
	switch k := v.places[v.at].kind; {
	case k == placeFuel && v.spec.Powertrain != Electric:
		v.phase = PhaseRefuelling
		v.truth.Refuels = append(v.truth.Refuels, Span{Start: time.UnixMilli(t).UTC()})
		v.fuelTarget = max(v.fuel, v.m.Tank*v.uniform(0.96, 1))
		if v.leak >= 0 && v.tireLoss[v.leak] > 8 {
			v.inflate()
		}
		v.departAt = t + 3600_000 // set when the tank is full
	case k == placeCharger && v.spec.Powertrain == Electric:
		v.phase, v.plugged, v.chargeDC, v.added = PhaseCharging, true, true, 0
		v.chargeKW = min(v.m.DCkW, []float64{50, 150, 150}[v.rng.IntN(3)])
		v.departAt = t + 4*3600_000 // set when the session ends
		if v.soc() >= 79 {
			v.endCharging(t)
		}
	case k == placeHome && v.spec.Powertrain == Electric && v.homeCharger:
		v.plugged = true
		v.departAt = v.planDeparture(t)
		if v.soc() < v.chargeLimit-3 {
			v.phase, v.chargeDC, v.added = PhaseCharging, false, 0
			v.chargeKW = min(v.wallboxKW, v.m.ACkW)
		}
	default:
		v.departAt = v.planDeparture(t)
	}
	if v.chargeDC && v.phase == PhaseCharging {
		v.chargeLimit = max(v.chargeLimit, 80)
	}
	if v.phase == PhaseCharging {
		v.truth.Charges = append(v.truth.Charges, Span{Start: time.UnixMilli(t).UTC()})
	}
}

// reachable is the highest speed v1 at the end of a step of dt seconds starting at v0 from which the
// vehicle can still slow to speed c within distance d by braking at brakePlan.
func reachable(v0, c, d, dt float64) float64 {
	if math.IsInf(c, 1) {
		return c
	}
	b := brakePlan
	k := c*c + 2*b*d - b*dt*v0
	if k <= 0 {
		return c
	}
	return max(c, (-b*dt+math.Sqrt(b*b*dt*dt+4*k))/2)
}

// drive advances a trip by dt seconds; it reports whether the vehicle arrived.
func (v *vehicle) drive(t int64, dt float64) bool {
	v0 := v.speed
	if v.pullAway > 0 || v.dwell > 0 {
		if v.pullAway > 0 {
			v.pullAway -= dt
		} else {
			v.dwell -= dt
		}
		v.speed, v.accel, v.yaw = 0, 0, 0
		v.powertrain(t, dt, 0, 0, 0)
		return false
	}
	r := v.rt
	n := len(r.length)
	vmax := min(r.limit[v.seg]*v.factor, kmh(130))
	d := r.length[v.seg] - v.segPos
	look := v0*v0/(2*brakePlan) + v0*dt + 80
	stopAt, stopDist := -1, math.Inf(1)
	for k := v.seg + 1; k <= n; k++ {
		c := r.cap[k]
		if k < n {
			c = min(c, r.limit[k]*v.factor)
		}
		if k == n || r.dwell[k] > 0 {
			c = 0
		}
		vmax = min(vmax, reachable(v0, c, d, dt))
		if c == 0 {
			stopAt, stopDist = k, d
			break
		}
		if k < n {
			d += r.length[k]
		}
		if d > look {
			break
		}
	}
	if v.hazard <= 0 && v0 > kmh(30) && v.hazRng.Float64() < dt/v.hazardEvery {
		v.hazard, v.hazardDecel = 1.5+1.5*v.hazRng.Float64(), hazardMin+(brakeMax-hazardMin)*v.hazRng.Float64()
		v.hazardStart, v.hazardFrom = t, v0
	}
	var v1 float64
	switch {
	case v.hazard > 0:
		v1 = max(min(v0-v.hazardDecel*dt, vmax), v0-brakeMax*dt)
		v.hazard -= dt
		if v.hazard <= 0 || v1 < kmh(8) {
			v.endHazard(t+v.ms(dt), max(v1, 0))
		}
	case vmax >= v0:
		a := v.aMax * max(0.35, 1-v0/40)
		v1 = min(v0+a*dt, vmax)
	default:
		v1 = max(v0-brakeMax*dt, vmax)
	}
	v1 = max(v1, 0)
	dist := (v0 + v1) / 2 * dt
	stopped := false
	if stopAt >= 0 && dist >= stopDist-0.05 {
		dist, v1, stopped = stopDist, 0, true
	}
	before := v.heading
	v.move(dist)
	v.odo += dist
	v.speed, v.accel = v1, (v1-v0)/dt
	v.yaw = signedAngle(before, v.heading) / dt
	if v.speed > kmh(15) && !v.locked {
		v.locked, v.changed = true, true // doors lock themselves at speed
	}
	v.powertrain(t, dt, v0, v1, dist)
	if stopped {
		if stopAt == n {
			return true
		}
		v.dwell = r.dwell[stopAt]
		v.seg, v.segPos = stopAt, 0
		v.pos = r.pts[stopAt]
	}
	return false
}

// hazardMin is the gentlest of the hard brakings for a surprise (m/s², about 0.39 g): hard enough for the
// node's rule on speed values (12 km/h per second) to find it.
const hazardMin = 3.8

// extremeBraking is the deceleration (m/s², about 0.46 g) from which a device reports extreme rather
// than harsh braking.
const extremeBraking = 4.5

// endHazard ends a surprise braking at time t at speed v1: it is ground truth, and a hardware dongle
// (which has an accelerometer) reports it as a driving event.
func (v *vehicle) endHazard(t int64, v1 float64) {
	name := telemetry.EventHarshBraking
	if v.hazardDecel >= extremeBraking {
		name = telemetry.EventExtremeBraking
	}
	e := telemetry.EventItem{Name: name, Timestamp: time.UnixMilli(v.hazardStart).UTC(),
		Duration: time.Duration(t-v.hazardStart) * time.Millisecond,
		Metadata: map[string]any{"fromKph": round(v.hazardFrom*3.6, 1), "toKph": round(v1*3.6, 1), "peakG": round(v.hazardDecel/gravity, 2)}}
	v.truth.Brakings = append(v.truth.Brakings, e)
	if v.spec.DeviceKind == ledger.KindHardware {
		v.events = append(v.events, e)
	}
	v.hazard = 0
}

// move advances the position dist metres along the route, along great circles between waypoints.
func (v *vehicle) move(dist float64) {
	r := v.rt
	n := len(r.length)
	for dist > 0 {
		rem := r.length[v.seg] - v.segPos
		if dist <= rem {
			v.segPos += dist
			break
		}
		dist -= rem
		if v.seg == n-1 {
			v.segPos = r.length[v.seg]
			break
		}
		v.seg++
		v.segPos = 0
	}
	moved := Destination(r.pts[v.seg], r.brg[v.seg], v.segPos)
	if Distance(v.pos, moved) > 0.01 {
		if rem := r.length[v.seg] - v.segPos; rem > 1 {
			v.heading = Bearing(moved, r.pts[v.seg+1])
		} else {
			v.heading = normDeg(Bearing(r.pts[v.seg+1], r.pts[v.seg]) + 180)
		}
	}
	v.pos = moved
	v.alt = v.altitude(moved)
}

// powertrain updates the engine or motor for a step at speeds v0 → v1 covering dist metres.
func (v *vehicle) powertrain(t int64, dt, v0, v1, dist float64) {
	m := v.m
	sp := (v0 + v1) / 2
	a := (v1 - v0) / dt
	wheelsW := m.Mass*a*sp + 0.5*airDensity*m.CdA*sp*sp*sp + rolling*m.Mass*gravity*sp
	amb := v.ambient(t)
	v.tireWarm = 16 + (v.tireWarm-16)*math.Exp(-dt/900)
	if v.leak >= 0 {
		v.tireLoss[v.leak] += v.leakRate * dt
	}
	if v.spec.Powertrain == Electric {
		w := 0.5*airDensity*m.CdA*sp*sp*sp + rolling*m.Mass*gravity*sp
		if a > 0 {
			w += 0.35 * m.Mass * a * sp // what regeneration does not win back
		}
		aux := 350 + 160*max(0, 17-amb) + 90*max(0, amb-25)
		aux = min(aux, 3500)
		pw := w/0.9 + aux
		v.energy = max(0, v.energy-pw*dt/3.6e6)
		v.powerW = -pw
		target := amb + 8
		v.battTemp = target + (v.battTemp-target)*math.Exp(-dt/3600)
		return
	}
	diesel := v.spec.Powertrain == Diesel
	// Gear and engine speed.
	kph := v1 * 3.6
	g := 0
	if v1 > 0.3 {
		g = 1
		for k := len(gearUp) - 1; k >= 1; k-- {
			if kph >= gearUp[k] {
				g = k
				break
			}
		}
	}
	idle := 780.0
	if diesel {
		idle = 760
	}
	if v.ect < 50 {
		idle += 180
	}
	rpm := idle
	if g > 0 {
		rpm = v1 / (2 * math.Pi * wheelRadius) * 60 * gearRatios[g] * finalDrive
		if diesel {
			rpm *= 0.85
		}
		rpm = max(rpm, idle+120)
	}
	engineW := max(wheelsW, 0)/0.88 + 600
	eff, dens, idleLph := 0.29, 8.9, 0.75*math.Sqrt(m.PowerKW/110)
	if diesel {
		eff, dens, idleLph = 0.35, 9.9, 0.6*math.Sqrt(m.PowerKW/110)
	}
	rate := idleLph + engineW/1000/(eff*dens)
	load := 20 + 80*engineW/(m.PowerKW*1000*max(0.3, rpm/5500))
	tps := load*0.8 - 6
	if v1 > 3 && a < -0.4 {
		rate, load, tps = 0.15, 4, 0 // overrun fuel cut
	}
	if a < 0 || g == 0 {
		tps = 0
	}
	v.gear, v.rpm = g, rpm
	v.load = math.Min(100, math.Max(0, load))
	v.tps = math.Min(100, math.Max(0, tps))
	v.fuelRate = rate
	v.fuel = max(0, v.fuel-rate*dt/3600)
	afr, fd := 14.7, 745.0
	if diesel {
		afr, fd = 24, 835
	}
	v.maf = rate * fd / 3600 * afr
	warm := 92.0
	v.ect = warm + (v.ect-warm)*math.Exp(-dt/420)
}

// step runs one tick for the vehicle and returns the records it delivers at time to.
func (v *vehicle) step(f *Fleet, from, to int64) []Record {
	v.advance(from, to)
	v.tick++
	var fresh []Record
	active := v.phase == PhaseBoarding || v.phase == PhaseDriving || v.phase == PhaseAlighting
	if active || v.changed || (v.tick+uint64(v.index))%v.parkedEvery == 0 {
		fresh = append(fresh, v.record(f, to))
		v.changed, v.tripStart = false, false
	}
	if len(v.events) > 0 {
		fresh = append(fresh, v.eventsRecord(f, to))
		v.events = nil
	}
	// Coverage.
	if to >= v.nextOutage && to >= v.offlineUntil {
		dur := v.uniform(60, 12*60)
		if v.rng.Float64() < 0.15 {
			dur = v.uniform(30*60, 150*60)
		}
		v.offlineUntil = to + v.ms(dur)
		v.nextOutage = v.offlineUntil + v.ms(v.rng.ExpFloat64()*v.outageMean)
	}
	online := to >= v.offlineUntil
	for i := range fresh {
		fresh[i].State.Online = online
	}
	if len(fresh) > 0 {
		if online && len(v.backlog) == 0 {
			return fresh
		}
		v.backlog = append(v.backlog, fresh...)
		if len(v.backlog) > maxBacklog {
			v.backlog = append(v.backlog[:0:0], v.backlog[len(v.backlog)-maxBacklog:]...)
		}
	}
	if !online || len(v.backlog) == 0 {
		return nil
	}
	n := min(len(v.backlog), max(1, f.BackfillBatch))
	out := make([]Record, n)
	copy(out, v.backlog)
	if n == len(v.backlog) {
		v.backlog = nil
	} else {
		v.backlog = append([]Record(nil), v.backlog[n:]...)
	}
	for i := range out {
		out[i].Backfill = out[i].Time.UnixMilli() < to
	}
	return out
}

// maxBacklog is how many records a device buffers without coverage; older ones are dropped.
const maxBacklog = 50000

// eventsRecord builds and signs, at time t, the record of the driving events the device detected.
func (v *vehicle) eventsRecord(f *Fleet, t int64) Record {
	at := time.UnixMilli(t).UTC()
	v.seq++
	id := "ev-" + strconv.FormatInt(t, 10) + "-" + strconv.FormatUint(v.seq, 10)
	ev, err := telemetry.NewEventsRecord(v.spec.Device, v.spec.VehicleID, id, at, v.events)
	if err != nil {
		panic("sim: building an events record: " + err.Error()) // only a NaN could do this: a bug
	}
	sub := telemetry.Submission{Event: ev}
	if f.Sign {
		if sub, err = telemetry.Sign(ev, v.spec.DeviceKey); err != nil {
			panic("sim: " + err.Error())
		}
	}
	return Record{Vehicle: v.index, VehicleID: v.spec.VehicleID, Device: v.spec.Device, ID: id, Time: at,
		Events: v.events, Submission: sub, State: v.state()}
}

// record measures and signs the vehicle's record at time t.
func (v *vehicle) record(f *Fleet, t int64) Record {
	at := time.UnixMilli(t).UTC()
	sigs := v.signals(t, at)
	v.seq++
	id := strconv.FormatInt(t, 10) + "-" + strconv.FormatUint(v.seq, 10)
	ev, err := telemetry.NewEvent(v.spec.Device, v.spec.VehicleID, id, at, sigs)
	if err != nil {
		panic("sim: building an event: " + err.Error()) // only a NaN could do this: a bug
	}
	sub := telemetry.Submission{Event: ev}
	if f.Sign {
		if sub, err = telemetry.Sign(ev, v.spec.DeviceKey); err != nil {
			panic("sim: " + err.Error())
		}
	}
	return Record{
		Vehicle: v.index, VehicleID: v.spec.VehicleID, Device: v.spec.Device, ID: id, Time: at,
		Signals: sigs, Submission: sub, State: v.state(),
	}
}

// state is the vehicle's ground truth now.
func (v *vehicle) state() State {
	energy := 0.0
	if v.spec.Powertrain == Electric {
		energy = v.soc()
	} else {
		energy = 100 * v.fuel / v.m.Tank
	}
	return State{Phase: v.phase, Position: v.pos, Heading: v.heading, Speed: v.speed * 3.6,
		Odometer: v.odo / 1000, Energy: energy}
}
