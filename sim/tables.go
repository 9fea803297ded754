package sim

import (
	"math"
	"time"
)

// Powertrain is a vehicle's energy source.
type Powertrain string

// The simulated powertrains.
const (
	Petrol   Powertrain = "petrol"
	Diesel   Powertrain = "diesel"
	Electric Powertrain = "electric"
)

// city is a home city: where its vehicles live, its climate and its street grid.
type city struct {
	Name       string
	Centre     LatLon
	UTCOffset  int     // hours (standard time; the simulator ignores daylight saving)
	Altitude   float64 // m, of the centre
	TempMean   float64 // °C, annual mean
	TempAmp    float64 // °C, half the summer-winter difference of monthly means
	Diurnal    float64 // °C, half the day-night difference
	South      bool    // southern hemisphere: summer in January
	GridAngle  float64 // degrees, orientation of the street grid
	Sprawl     float64 // m, radius of the residential area
	MotorwayKM float64 // km/h, the motorway speed limit
}

var cities = []city{
	{"Lisbon", LatLon{38.7223, -9.1393}, 0, 60, 17.5, 5.5, 4.5, false, 28, 9000, 120},
	{"Berlin", LatLon{52.5200, 13.4050}, 1, 35, 10.0, 9.5, 4.0, false, 12, 14000, 120},
	{"Austin", LatLon{30.2672, -97.7431}, -6, 150, 21.0, 8.5, 6.0, false, 20, 16000, 113},
	{"Tokyo", LatLon{35.6762, 139.6503}, 9, 40, 16.0, 10.5, 3.5, false, 5, 15000, 100},
	{"São Paulo", LatLon{-23.5505, -46.6333}, -3, 760, 20.0, 3.0, 5.0, true, 35, 15000, 110},
	{"Sydney", LatLon{-33.8688, 151.2093}, 10, 40, 18.0, 5.0, 4.0, true, 40, 16000, 110},
	{"Oslo", LatLon{59.9139, 10.7522}, 1, 25, 6.5, 10.0, 3.5, false, 17, 9000, 110},
	{"Toronto", LatLon{43.6532, -79.3832}, -5, 90, 9.0, 13.0, 4.5, false, 17, 17000, 100},
}

func cityByName(name string) *city {
	for i := range cities {
		if cities[i].Name == name {
			return &cities[i]
		}
	}
	return nil
}

// zone is the city's fixed time zone.
func (c *city) zone() *time.Location {
	return time.FixedZone(c.Name, c.UTCOffset*3600)
}

// temperature is the typical air temperature (°C) at the city at time t: a seasonal and a daily cycle.
func (c *city) temperature(t time.Time) float64 {
	lt := t.In(c.zone())
	day := float64(lt.YearDay()) + float64(lt.Hour())/24
	season := math.Cos(2 * math.Pi * (day - 200) / 365.25) // +1 around 19 July
	if c.South {
		season = -season
	}
	hour := float64(lt.Hour()) + float64(lt.Minute())/60
	daily := math.Cos(2 * math.Pi * (hour - 15) / 24) // warmest at 15:00
	// A slow weather swing of a few degrees over several days.
	weather := 2.5 * math.Sin(2*math.Pi*float64(t.Unix())/(5.3*86400)+c.Centre.Lon)
	return c.TempMean + c.TempAmp*season + c.Diurnal*daily + weather
}

// model is a make and model with the parameters the physics needs.
type model struct {
	Make, Model      string
	Powertrain       Powertrain
	FirstYear        int
	LastYear         int
	Tank             float64 // l (combustion) or kWh gross battery capacity (electric)
	Consumption      float64 // nominal l/100 km or kWh/100 km, for the range estimate
	Mass             float64 // kg
	CdA              float64 // m², drag coefficient × frontal area
	PowerKW          float64 // maximum engine or motor power
	ACkW, DCkW       float64 // maximum charging power (electric)
	TirePressure     float64 // kPa, nominal cold pressure
	DieselExhaustLit float64 // l of AdBlue tank (diesel), 0 if none
}

// models is the catalogue of simulated vehicles: a mix of common petrol, diesel and electric cars.
var models = []model{
	{"Toyota", "Corolla", Petrol, 2008, 2025, 50, 6.3, 1350, 0.62, 103, 0, 0, 230, 0},
	{"Volkswagen", "Golf", Petrol, 2009, 2025, 50, 6.0, 1300, 0.64, 110, 0, 0, 240, 0},
	{"Ford", "Focus", Petrol, 2010, 2024, 52, 6.6, 1320, 0.65, 92, 0, 0, 230, 0},
	{"Honda", "Civic", Petrol, 2012, 2025, 47, 6.2, 1310, 0.61, 134, 0, 0, 225, 0},
	{"Renault", "Clio", Petrol, 2013, 2025, 42, 5.6, 1150, 0.62, 67, 0, 0, 230, 0},
	{"Fiat", "500", Petrol, 2008, 2024, 35, 5.4, 940, 0.58, 51, 0, 0, 220, 0},
	{"Toyota", "RAV4", Petrol, 2013, 2025, 55, 7.4, 1600, 0.85, 127, 0, 0, 240, 0},
	{"Mazda", "CX-5", Petrol, 2012, 2025, 56, 7.6, 1550, 0.82, 121, 0, 0, 240, 0},
	{"Ford", "F-150", Petrol, 2010, 2025, 98, 12.4, 2200, 1.35, 290, 0, 0, 240, 0},
	{"Honda", "CR-V", Petrol, 2012, 2025, 57, 7.8, 1560, 0.84, 140, 0, 0, 230, 0},
	{"BMW", "3 Series", Petrol, 2012, 2025, 59, 7.0, 1500, 0.60, 135, 0, 0, 250, 0},
	{"Volkswagen", "Passat", Diesel, 2010, 2024, 66, 5.1, 1500, 0.65, 110, 0, 0, 250, 12},
	{"Peugeot", "308", Diesel, 2012, 2024, 53, 4.7, 1300, 0.62, 96, 0, 0, 240, 17},
	{"Škoda", "Octavia", Diesel, 2013, 2025, 50, 4.8, 1350, 0.63, 110, 0, 0, 240, 12},
	{"Mercedes-Benz", "C-Class", Diesel, 2014, 2025, 66, 5.4, 1600, 0.62, 147, 0, 0, 250, 22},
	{"Toyota", "Hilux", Diesel, 2012, 2025, 80, 8.2, 2100, 1.20, 150, 0, 0, 260, 0},
	{"Ford", "Transit Custom", Diesel, 2014, 2025, 70, 7.9, 2000, 1.35, 96, 0, 0, 340, 21},
	{"Tesla", "Model 3", Electric, 2018, 2025, 79, 14.9, 1850, 0.51, 208, 11, 170, 290, 0},
	{"Tesla", "Model Y", Electric, 2020, 2025, 81, 16.9, 1980, 0.62, 220, 11, 250, 290, 0},
	{"Nissan", "Leaf", Electric, 2018, 2024, 40, 16.4, 1580, 0.65, 110, 7, 50, 250, 0},
	{"Volkswagen", "ID.4", Electric, 2021, 2025, 82, 17.8, 2120, 0.75, 150, 11, 135, 260, 0},
	{"Hyundai", "Ioniq 5", Electric, 2021, 2025, 77, 17.4, 2000, 0.74, 168, 11, 220, 250, 0},
	{"Kia", "EV6", Electric, 2021, 2025, 77, 16.6, 1960, 0.67, 168, 11, 230, 250, 0},
	{"Renault", "Zoe", Electric, 2018, 2024, 55, 17.2, 1500, 0.65, 80, 22, 50, 250, 0},
	{"BMW", "i4", Electric, 2021, 2025, 84, 16.1, 2050, 0.55, 250, 11, 200, 250, 0},
	{"Chevrolet", "Bolt EV", Electric, 2018, 2023, 66, 16.0, 1620, 0.70, 150, 11, 55, 260, 0},
	{"Polestar", "2", Electric, 2020, 2025, 82, 17.5, 2100, 0.62, 170, 11, 155, 270, 0},
}

// lookupModel finds a model by make and model, or a generic one of the powertrain.
func lookupModel(mk, md string, pt Powertrain) *model {
	var fallback *model
	for i := range models {
		m := &models[i]
		if m.Make == mk && m.Model == md {
			return m
		}
		if fallback == nil && m.Powertrain == pt {
			fallback = m
		}
	}
	if fallback == nil {
		fallback = &models[0]
	}
	return fallback
}

// dtcCodes are the diagnostic trouble codes a vehicle may raise, by powertrain.
var dtcCodes = map[Powertrain][]string{
	Petrol:   {"P0420", "P0171", "P0300", "P0442", "P0128", "P0455", "P0135", "P0401"},
	Diesel:   {"P2002", "P0401", "P0299", "P0087", "P2463", "P0128", "P20EE"},
	Electric: {"P0AA6", "P0A94", "P1E00", "U0100", "P0AFA"},
}
