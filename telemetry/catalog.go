// Package telemetry verifies and stores device-signed vehicle telemetry: CloudEvents 1.0 records signed
// with EIP-191 personal_sign by the device paired to the vehicle at the record's time, whose signals come
// from a catalogue of COVESA VSS signals (DIMO's names).
//
// It imports only ledger: never a store (the stores implement its Store, Reader and Deleter), the API or
// the node.
package telemetry

import (
	"fmt"
	"math"
	"strings"

	"github.com/glovebox/glovebox/ledger"
)

// signalsTSV is the catalogue file; the ledger embeds it, since a grant may name its signals.
var signalsTSV = ledger.CatalogTSV

// Kind is how a signal's value is carried and stored.
type Kind uint8

// The value kinds. Booleans are stored as 0/1 numbers, as DIMO does.
const (
	KindNumber Kind = iota + 1
	KindBool
	KindString
	KindStrings // string[]
	KindLocation
)

func (k Kind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindBool:
		return "boolean"
	case KindString:
		return "string"
	case KindStrings:
		return "string[]"
	case KindLocation:
		return "location"
	}
	return "invalid"
}

// Signal is one entry of the catalogue.
type Signal struct {
	Index      int     `json:"-"` // position in the catalogue, stable within a build
	Name       string  `json:"name"`
	VSSPath    string  `json:"vssPath"`
	VSSType    string  `json:"vssType"`
	Unit       string  `json:"unit,omitempty"`
	Kind       Kind    `json:"-"`
	Type       string  `json:"type"`       // Kind as text
	Permission string  `json:"permission"` // the ledger permission that guards it
	Min        float64 `json:"min,omitempty"`
	Max        float64 `json:"max,omitempty"`
}

// Catalog is the set of signals a record may carry.
type Catalog struct {
	Signals []Signal
	byName  map[string]*Signal
}

// Lookup returns the signal with the given name.
func (c *Catalog) Lookup(name string) (*Signal, bool) {
	s, ok := c.byName[name]
	return s, ok
}

// DefaultCatalog is the catalogue shipped in the binary (ledger/signals.tsv).
var DefaultCatalog = mustParseCatalog(signalsTSV)

// Location signal names.
const (
	SignalLocation = "currentLocationCoordinates"
)

// integer ranges of the VSS integer types.
var intRanges = map[string][2]float64{
	"uint8": {0, math.MaxUint8}, "uint16": {0, math.MaxUint16}, "uint32": {0, math.MaxUint32},
	"int8": {math.MinInt8, math.MaxInt8}, "int16": {math.MinInt16, math.MaxInt16}, "int32": {math.MinInt32, math.MaxInt32},
}

// unitRanges bound numbers by unit: the physically sane values, generous enough for any road vehicle.
var unitRanges = map[string][2]float64{
	"percent":   {-100, 100},
	"km/h":      {0, 600},
	"celsius":   {-100, 1500},
	"degrees":   {0, 360},
	"m":         {-500, 10000},
	"V":         {0, 2000},
	"A":         {-2000, 2000},
	"kPa":       {0, 500000},
	"rpm":       {0, 30000},
	"km":        {0, 10000000},
	"l":         {0, 5000},
	"kWh":       {0, 5000},
	"kW":        {-2000, 2000},
	"W":         {-2000000, 2000000},
	"s":         {-1e9, 1e10},
	"g/s":       {0, 10000},
	"Nm":        {0, 65535},
	"degrees/s": {-3600, 3600},
	"kg":        {0, 100000},
	"l/h":       {0, 10000},
}

func mustParseCatalog(tsv string) *Catalog {
	c, err := ParseCatalog(tsv)
	if err != nil {
		panic(err) // the embedded file is part of the build
	}
	return c
}

// ParseCatalog reads a catalogue in the format of signals.tsv: name, vss_path, vss_type, unit,
// dimo_privilege, note.
func ParseCatalog(tsv string) (*Catalog, error) {
	c := &Catalog{byName: map[string]*Signal{}}
	lines := strings.Split(strings.TrimRight(tsv, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "name\tvss_path\tvss_type\tunit\tdimo_privilege") {
		return nil, fmt.Errorf("catalogue: missing header")
	}
	for i, line := range lines[1:] {
		f := strings.Split(line, "\t")
		if len(f) < 5 {
			return nil, fmt.Errorf("catalogue line %d: %d fields", i+2, len(f))
		}
		s := Signal{Index: len(c.Signals), Name: f[0], VSSPath: f[1], VSSType: f[2], Unit: f[3]}
		switch f[4] {
		case "NON_LOCATION_DATA":
			s.Permission = ledger.PermSignals
		case "ALL_TIME_LOCATION":
			s.Permission = ledger.PermLocation
		case "VIN_CREDENTIAL":
			s.Permission = ledger.PermCredentials
		default:
			return nil, fmt.Errorf("catalogue line %d: unknown privilege %q", i+2, f[4])
		}
		s.Min, s.Max = -math.MaxFloat64, math.MaxFloat64
		switch s.VSSType {
		case "boolean":
			s.Kind, s.Min, s.Max = KindBool, 0, 1
		case "string":
			s.Kind = KindString
		case "string[]":
			s.Kind = KindStrings
		case "Types.DIMO.Coordinates":
			s.Kind = KindLocation
		case "float", "double":
			s.Kind = KindNumber
		default:
			r, ok := intRanges[s.VSSType]
			if !ok {
				return nil, fmt.Errorf("catalogue line %d: unknown type %q", i+2, s.VSSType)
			}
			s.Kind, s.Min, s.Max = KindNumber, r[0], r[1]
		}
		if r, ok := unitRanges[s.Unit]; ok && s.Kind == KindNumber {
			s.Min, s.Max = max(s.Min, r[0]), min(s.Max, r[1])
		}
		if s.Kind != KindNumber && s.Kind != KindBool {
			s.Min, s.Max = 0, 0
		}
		s.Type = s.Kind.String()
		if _, dup := c.byName[s.Name]; dup {
			return nil, fmt.Errorf("catalogue line %d: %s listed twice", i+2, s.Name)
		}
		c.Signals = append(c.Signals, s)
		c.byName[s.Name] = &c.Signals[len(c.Signals)-1]
	}
	// Re-point the index at the final backing array.
	for i := range c.Signals {
		c.byName[c.Signals[i].Name] = &c.Signals[i]
	}
	return c, nil
}

// Integer reports whether the signal's VSS type is an integer type.
func (s *Signal) Integer() bool { _, ok := intRanges[s.VSSType]; return ok }
