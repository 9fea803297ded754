package connect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/glovebox/glovebox/ledger"
)

// ScopeOpenID asks for an ID token (OpenID Connect Core §3.1.2.1).
const ScopeOpenID = "openid"

// Scope is one OAuth scope of a vehicle permission and how the consent screen says it.
type Scope struct {
	Name       string // the OAuth scope, "vehicle:" + Permission
	Permission string // the ledger permission it grants
	Title      string // what the driver reads as the heading of the permission
	Detail     string // one plain sentence of what it lets the app see or do
	Sensitive  bool   // the consent screen marks it: it reveals where the driver goes, or acts on the car
}

// Scopes lists every vehicle scope, in the order of ledger.Permissions. The words are the consent
// screen's: for a driver who has never heard of keys or permissions.
var Scopes = []Scope{
	{"vehicle:signals", ledger.PermSignals, "Car readings", "Speed, fuel or battery level, mileage and other readings from your car, now and in the past. Not where it is.", false},
	{"vehicle:location:approximate", ledger.PermLocationApproximate, "Approximate location", "Which neighbourhood your car is in (an area of about 36 km²), never the exact spot.", false},
	{"vehicle:location", ledger.PermLocation, "Exact location", "Exactly where your car is and has been, to a few metres.", true},
	{"vehicle:raw", ledger.PermRaw, "Original signed records", "What your car's device recorded, exactly as the device signed it, so the app can check it is genuine. Records with your exact location are left out unless you also share exact location.", true},
	{"vehicle:credentials", ledger.PermCredentials, "Certified facts", "Signed statements about your car, such as its VIN or its mileage.", false},
	{"vehicle:insights", ledger.PermInsights, "Trip summaries", "Distances and driving-style summaries, without the routes you drove.", false},
	{"vehicle:stream", ledger.PermStream, "Live updates", "New readings as they arrive, instead of asking for them from time to time.", false},
	{"vehicle:commands", ledger.PermCommands, "Control your car", "Send commands to your car, such as locking or unlocking it.", true},
}

// ScopeNames returns every scope this provider supports: openid and each vehicle scope.
func ScopeNames() []string {
	out := []string{ScopeOpenID}
	for _, s := range Scopes {
		out = append(out, s.Name)
	}
	return out
}

// SignalScopePrefix starts a per-signal scope: `vehicle:signals:<catalogue name>` asks for the ledger
// permission `signals:<name>`, that one reading and nothing else.
const SignalScopePrefix = "vehicle:" + ledger.SignalPermissionPrefix

// scopeByName returns the vehicle scope called name: one of Scopes, or a per-signal scope.
func scopeByName(name string) (Scope, bool) {
	for _, s := range Scopes {
		if s.Name == name {
			return s, true
		}
	}
	if sig, ok := strings.CutPrefix(name, SignalScopePrefix); ok {
		return signalScope(sig)
	}
	return Scope{}, false
}

// signalWords are the consent screen's names of the readings drivers know by another name; other signals
// are named from their VSS path.
var signalWords = map[string]string{
	"powertrainTransmissionTravelledDistance": "Mileage (odometer)",
	"speed": "Speed",
	"powertrainTractionBatteryStateOfChargeCurrent": "Battery charge level",
	"powertrainFuelSystemRelativeLevel":             "Fuel level",
	"powertrainRange":                               "Remaining range",
	"isIgnitionOn":                                  "Whether the engine is on",
}

// signalScope returns the scope of one catalogue signal that `signals` guards, worded for the consent
// screen: its everyday name and its VSS path with the unit.
func signalScope(name string) (Scope, bool) {
	g, ok := ledger.LookupGrantableSignal(name)
	if !ok {
		return Scope{}, false
	}
	title := signalWords[name]
	if title == "" {
		title = vssWords(g.VSSPath)
	}
	detail := "This one reading from your car (" + g.VSSPath
	if g.Unit != "" {
		detail += ", in " + g.Unit
	}
	detail += "), now and in the past. No other reading, and not where the car is."
	return Scope{Name: SignalScopePrefix + name, Permission: ledger.SignalPermission(name), Title: title, Detail: detail}, true
}

// vssWords turns a VSS path into words: "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen" → "Cabin door row1
// driver side is open".
func vssWords(path string) string {
	var words []string
	for _, seg := range strings.Split(strings.TrimPrefix(path, "Vehicle."), ".") {
		start := 0
		for i := 1; i <= len(seg); i++ {
			if i == len(seg) || (seg[i] >= 'A' && seg[i] <= 'Z' && !(seg[i-1] >= 'A' && seg[i-1] <= 'Z')) {
				words = append(words, strings.ToLower(seg[start:i]))
				start = i
			}
		}
	}
	out := strings.Join(words, " ")
	if out == "" {
		return path
	}
	return strings.ToUpper(out[:1]) + out[1:]
}

// ScopeSet is a parsed scope parameter: whether openid was asked for and the vehicle scopes, in the order
// of Scopes, then the per-signal scopes by name, each once.
type ScopeSet struct {
	OpenID  bool
	Vehicle []Scope
}

// ParseScope parses an RFC 6749 §3.3 scope parameter: scope names separated by single spaces. Every name
// must be openid, a vehicle scope or a per-signal scope (vehicle:signals:<catalogue name>, for a signal
// that `signals` guards); a name may appear more than once (it counts once); at least one
// vehicle scope is required, since a grant names at least one permission.
func ParseScope(s string) (ScopeSet, error) {
	var out ScopeSet
	if s == "" {
		return out, fmt.Errorf("scope is missing; ask for openid and at least one of %s", strings.Join(ScopeNames()[1:], ", "))
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(s, " ") {
		switch {
		case name == "":
			return ScopeSet{}, fmt.Errorf("scope names are separated by single spaces")
		case name == ScopeOpenID:
			out.OpenID = true
		default:
			if _, ok := scopeByName(name); !ok {
				return ScopeSet{}, fmt.Errorf("unknown scope %q (supported: %s)", clip(name), strings.Join(ScopeNames(), " "))
			}
			seen[name] = true
		}
	}
	for _, sc := range Scopes {
		if seen[sc.Name] {
			out.Vehicle = append(out.Vehicle, sc)
		}
	}
	var signals []string // per-signal scopes, after the others, by name
	for name := range seen {
		if strings.HasPrefix(name, SignalScopePrefix) {
			signals = append(signals, name)
		}
	}
	slices.Sort(signals)
	for _, name := range signals {
		sc, _ := scopeByName(name)
		out.Vehicle = append(out.Vehicle, sc)
	}
	if len(out.Vehicle) == 0 {
		return ScopeSet{}, fmt.Errorf("ask for at least one vehicle scope (%s)", strings.Join(ScopeNames()[1:], ", "))
	}
	return out, nil
}

// Permissions returns the ledger permissions of the vehicle scopes, in ledger order.
func (s ScopeSet) Permissions() []string {
	out := make([]string, len(s.Vehicle))
	for i, sc := range s.Vehicle {
		out[i] = sc.Permission
	}
	return out
}

// String returns the canonical scope parameter: openid first, then the vehicle scopes in order.
func (s ScopeSet) String() string {
	var names []string
	if s.OpenID {
		names = append(names, ScopeOpenID)
	}
	for _, sc := range s.Vehicle {
		names = append(names, sc.Name)
	}
	return strings.Join(names, " ")
}

// covers reports whether a grant's permissions include every permission of s. Location implies
// approximate location, and signals every per-signal permission, as in package access.
func (s ScopeSet) covers(perms []string) bool {
	for _, p := range s.Permissions() {
		_, single := ledger.SignalOf(p)
		if !slices.Contains(perms, p) && !(p == ledger.PermLocationApproximate && slices.Contains(perms, ledger.PermLocation)) &&
			!(single && slices.Contains(perms, ledger.PermSignals)) {
			return false
		}
	}
	return true
}

// clip shortens untrusted text quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
