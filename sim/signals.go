package sim

import (
	"math"
	"time"

	"github.com/glovebox/glovebox/telemetry"
)

// The catalogue names of the signals the simulator sends.
const (
	sigLocation       = telemetry.SignalLocation
	sigHeading        = "currentLocationHeading"
	sigAltitude       = "currentLocationAltitude"
	sigSpeed          = "speed"
	sigIgnition       = "isIgnitionOn"
	sigOdometer       = "powertrainTransmissionTravelledDistance"
	sigVIN            = "vehicleIdentificationVIN"
	sigRPM            = "powertrainCombustionEngineSpeed"
	sigEngineLoad     = "obdEngineLoad"
	sigECT            = "powertrainCombustionEngineECT"
	sigTPS            = "powertrainCombustionEngineTPS"
	sigGear           = "powertrainTransmissionCurrentGear"
	sigFuelRelative   = "powertrainFuelSystemRelativeLevel"
	sigFuelAbsolute   = "powertrainFuelSystemAbsoluteLevel"
	sigFuelTypes      = "powertrainFuelSystemSupportedFuelTypes"
	sigRange          = "powertrainRange"
	sigLowVoltage     = "lowVoltageBatteryCurrentVoltage"
	sigExteriorTemp   = "exteriorAirTemperature"
	sigIntakeTemp     = "obdIntakeTemp"
	sigMAF            = "powertrainCombustionEngineMAF"
	sigRunTime        = "obdRunTime"
	sigFuelRate       = "obdFuelRate"
	sigBarometric     = "obdBarometricPressure"
	sigYaw            = "angularVelocityYaw"
	sigDTCCount       = "obdStatusDTCCount"
	sigDTCList        = "obdDTCList"
	sigDoor           = "cabinDoorRow1DriverSideIsOpen"
	sigLocked         = "bodyLockIsLocked"
	sigParkingBrake   = "chassisParkingBrakeIsEngaged"
	sigTireWarning    = "chassisTireSystemIsWarningOn"
	sigPowertrainType = "powertrainType"
	sigSoC            = "powertrainTractionBatteryStateOfChargeCurrent"
	sigSoCEnergy      = "powertrainTractionBatteryStateOfChargeCurrentEnergy"
	sigBatteryRange   = "powertrainTractionBatteryRange"
	sigBatteryPower   = "powertrainTractionBatteryCurrentPower"
	sigBatteryTemp    = "powertrainTractionBatteryTemperatureAverage"
	sigGrossCapacity  = "powertrainTractionBatteryGrossCapacity"
	sigStateOfHealth  = "powertrainTractionBatteryStateOfHealth"
	sigCharging       = "powertrainTractionBatteryChargingIsCharging"
	sigCable          = "powertrainTractionBatteryChargingIsChargingCableConnected"
	sigChargeLimit    = "powertrainTractionBatteryChargingChargeLimit"
	sigChargePower    = "powertrainTractionBatteryChargingPower"
	sigChargeCurrent  = "powertrainTractionBatteryChargingChargeCurrentAC"
	sigChargeVoltage  = "powertrainTractionBatteryChargingChargeVoltageUnknownType"
	sigAddedEnergy    = "powertrainTractionBatteryChargingAddedEnergy"
)

var tireSignals = [4]string{
	"chassisAxleRow1WheelLeftTirePressure", "chassisAxleRow1WheelRightTirePressure",
	"chassisAxleRow2WheelLeftTirePressure", "chassisAxleRow2WheelRightTirePressure",
}

// Signals per record.
const (
	MinSignals = 10
	MaxSignals = 20
)

// builder collects a record's signals: the ones it must carry, then optional ones up to MaxSignals.
type builder struct {
	at   time.Time
	must []telemetry.EventSignal
	opt  []telemetry.EventSignal
}

func (b *builder) add(name string, val any) {
	b.must = append(b.must, telemetry.EventSignal{Name: name, Timestamp: b.at, Value: val})
}

func (b *builder) maybe(name string, val any) {
	b.opt = append(b.opt, telemetry.EventSignal{Name: name, Timestamp: b.at, Value: val})
}

func (b *builder) signals() []telemetry.EventSignal {
	out := b.must
next:
	for _, o := range b.opt {
		if len(out) >= MaxSignals {
			break
		}
		for _, m := range b.must {
			if m.Name == o.Name {
				continue next
			}
		}
		out = append(out, o)
	}
	return out
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// signals measures the vehicle at time t.
func (v *vehicle) signals(t int64, at time.Time) []telemetry.EventSignal {
	b := builder{at: at, must: make([]telemetry.EventSignal, 0, MaxSignals+4), opt: make([]telemetry.EventSignal, 0, 8)}
	amb := v.ambient(t)
	ev := v.spec.Powertrain == Electric
	driving := v.phase == PhaseDriving
	slot := (v.tick + uint64(v.index)) % 4

	b.add(sigLocation, telemetry.Location{Latitude: round(v.pos.Lat, 7), Longitude: round(v.pos.Lon, 7), HDOP: round(v.uniform(0.6, 1.6), 1)})
	if driving {
		b.add(sigHeading, round(v.heading, 1))
	}
	b.add(sigAltitude, round(v.alt, 1))
	b.add(sigSpeed, round(v.speed*3.6, 1))
	b.add(sigIgnition, driving)
	b.add(sigOdometer, round(v.odo/1000, 3))

	// Values several groups share.
	var tires [4]float64
	warn := false
	for k := range tires {
		tires[k] = math.Round(v.tireNominal[k]*(273.15+amb+v.tireWarm)/293.15 - v.tireLoss[k])
		warn = warn || tires[k] < 0.8*v.tireNominal[k]
	}
	addTires := func() {
		for k, name := range tireSignals {
			b.maybe(name, tires[k])
		}
		b.maybe(sigTireWarning, warn)
	}
	lv := 12.45 + 0.35*math.Exp(-float64(t-v.parkedSince)/5.4e6) - 0.005*float64(t-v.parkedSince)/8.64e7
	switch {
	case driving && ev:
		lv = 14.0 + v.uniform(-0.1, 0.1)
	case driving:
		lv = 14.25 + v.uniform(-0.08, 0.08)
	case v.phase == PhaseCharging:
		lv = 13.8 + v.uniform(-0.05, 0.05)
	}
	lv = round(max(lv, 11.9), 2)
	extTemp := math.Round(amb*2) / 2
	dtcs := append([]string{}, v.dtcs...)
	consumption := v.m.Consumption
	if ev {
		consumption *= 1 + 0.012*max(0, 15-amb)
	}
	rangeKM := 0.0
	if ev {
		rangeKM = math.Floor(v.energy / consumption * 100)
	} else {
		rangeKM = math.Floor(v.fuel / consumption * 100)
	}
	fuelRel := math.Round(100 * v.fuel / v.m.Tank)
	baro := round(101.325*math.Exp(-v.alt/8434)+1.2*math.Sin(float64(t)/3.5e8), 1)
	ptType, fuelTypes := "COMBUSTION", []string{"GASOLINE"}
	if v.spec.Powertrain == Diesel {
		fuelTypes = []string{"DIESEL"}
	}
	if ev {
		ptType = "ELECTRIC"
	}

	if v.changed {
		b.add(sigDoor, v.doorOpen)
		b.add(sigLocked, v.locked)
	}
	if v.tripStart {
		b.add(sigVIN, v.spec.VIN)
		b.add(sigDTCCount, float64(len(dtcs)))
		b.add(sigDTCList, dtcs)
	}

	switch {
	case driving && !ev:
		b.add(sigRPM, math.Round(v.rpm))
		b.add(sigEngineLoad, round(v.load, 1))
		b.add(sigECT, math.Round(v.ect))
		b.add(sigTPS, math.Round(v.tps))
		b.add(sigGear, float64(v.gear))
		switch slot {
		case 0:
			b.maybe(sigFuelRelative, fuelRel)
			b.maybe(sigFuelAbsolute, round(v.fuel, 2))
			b.maybe(sigRange, rangeKM)
			b.maybe(sigLowVoltage, lv)
			b.maybe(sigExteriorTemp, extTemp)
		case 1:
			addTires()
		case 2:
			b.maybe(sigIntakeTemp, math.Round(amb+6+0.05*v.ect))
			b.maybe(sigMAF, math.Round(v.maf))
			b.maybe(sigRunTime, math.Round(float64(t-v.engineOn)/1000))
			b.maybe(sigFuelRate, round(v.fuelRate, 2))
			b.maybe(sigYaw, round(v.yaw, 1))
		case 3:
			b.maybe(sigFuelRelative, fuelRel)
			b.maybe(sigFuelAbsolute, round(v.fuel, 2))
			b.maybe(sigBarometric, baro)
			b.maybe(sigDTCCount, float64(len(dtcs)))
			b.maybe(sigDTCList, dtcs)
		}
	case driving:
		b.add(sigSoC, round(v.soc(), 1))
		b.add(sigSoCEnergy, round(v.energy, 2))
		b.add(sigBatteryRange, rangeKM)
		b.add(sigBatteryPower, math.Round(v.powerW))
		switch slot {
		case 0:
			b.maybe(sigRange, rangeKM)
			b.maybe(sigLowVoltage, lv)
			b.maybe(sigExteriorTemp, extTemp)
			b.maybe(sigBatteryTemp, round(v.battTemp, 1))
			b.maybe(sigYaw, round(v.yaw, 1))
		case 1:
			addTires()
		case 2:
			b.maybe(sigCharging, false)
			b.maybe(sigCable, false)
			b.maybe(sigChargeLimit, v.chargeLimit)
			b.maybe(sigStateOfHealth, round(v.soh, 1))
		case 3:
			b.maybe(sigGrossCapacity, math.Round(v.m.Tank))
			b.maybe(sigPowertrainType, ptType)
			b.maybe(sigDTCCount, float64(len(dtcs)))
			b.maybe(sigDTCList, dtcs)
		}
	default: // not driving: parked, boarding, alighting, refuelling, charging
		if !v.changed {
			b.add(sigDoor, v.doorOpen)
			b.add(sigLocked, v.locked)
		}
		b.add(sigLowVoltage, lv)
		b.add(sigExteriorTemp, extTemp)
		if ev {
			b.add(sigSoC, round(v.soc(), 1))
			b.add(sigSoCEnergy, round(v.energy, 2))
			b.add(sigBatteryRange, rangeKM)
			charging := v.phase == PhaseCharging
			b.add(sigCharging, charging)
			b.add(sigCable, v.plugged)
			if charging {
				b.add(sigChargePower, round(v.chargeKW, 1))
				b.add(sigBatteryPower, math.Round(v.powerW))
				b.add(sigAddedEnergy, round(v.added, 2))
				volts := 350 + 60*v.soc()/100
				if !v.chargeDC {
					volts = 230.0
					amps := v.chargeKW * 1000 / volts
					if v.chargeKW > 7.4 {
						volts = 400
						amps = v.chargeKW * 1000 / (math.Sqrt(3) * volts)
					}
					b.add(sigChargeCurrent, round(amps, 1))
				}
				b.add(sigChargeVoltage, round(volts, 1))
			}
		} else {
			b.add(sigFuelRelative, fuelRel)
			b.add(sigFuelAbsolute, round(v.fuel, 2))
			b.add(sigRange, rangeKM)
		}
		if (v.tick/v.parkedEvery+uint64(v.index))%2 == 0 {
			addTires()
		} else {
			b.maybe(sigHeading, round(v.heading, 1))
			b.maybe(sigParkingBrake, v.phase != PhaseBoarding)
			b.maybe(sigPowertrainType, ptType)
			if ev {
				b.maybe(sigChargeLimit, v.chargeLimit)
				b.maybe(sigBatteryTemp, round(v.battTemp, 1))
				b.maybe(sigRange, rangeKM)
			} else {
				b.maybe(sigECT, math.Round(v.ect))
				b.maybe(sigBarometric, baro)
				b.maybe(sigFuelTypes, fuelTypes)
			}
		}
	}
	return b.signals()
}
