package ledger

import (
	_ "embed"
	"strings"
)

// CatalogTSV is the signal catalogue (signals.tsv: name, vss_path, vss_type, unit, dimo_privilege, note),
// shipped in the binary. It lives here, at the bottom of the imports, because the ledger's rules read it:
// a Grant may name single signals (`signals:<name>`), and a name outside the catalogue is refused. Package
// telemetry parses the whole of it.
//
//go:embed signals.tsv
var CatalogTSV string

// SignalPermissionPrefix starts a per-signal permission: `signals:<catalogue name>` allows reading that one
// signal, as `signals` allows reading every signal it guards.
const SignalPermissionPrefix = PermSignals + ":"

// grantableSignals holds the catalogue signals a grant may name one by one, by name: those `signals`
// guards (NON_LOCATION_DATA). Location and the VIN stay behind their own permissions, so that no
// per-signal permission can be read as a way around `location` or `credentials`.
var grantableSignals = func() map[string]GrantableSignal {
	m := map[string]GrantableSignal{}
	lines := strings.Split(strings.TrimRight(CatalogTSV, "\n"), "\n")
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		if len(f) >= 5 && f[4] == "NON_LOCATION_DATA" {
			m[f[0]] = GrantableSignal{Name: f[0], VSSPath: f[1], Unit: f[3]}
		}
	}
	return m
}()

// GrantableSignal is a catalogue signal a grant may name by itself (`signals:<Name>`).
type GrantableSignal struct {
	Name    string // the catalogue (DIMO) name
	VSSPath string // e.g. Vehicle.Speed
	Unit    string // e.g. km/h, or ""
}

// LookupGrantableSignal returns the catalogue signal name, if a grant may name it by itself.
func LookupGrantableSignal(name string) (GrantableSignal, bool) {
	g, ok := grantableSignals[name]
	return g, ok
}

// SignalPermission returns the per-signal permission of the catalogue signal name: "signals:" + name.
func SignalPermission(name string) string { return SignalPermissionPrefix + name }

// SignalOf returns the signal a per-signal permission names ("signals:speed" → "speed"), and false for
// anything else (a whole permission, an unknown name, a location signal).
func SignalOf(p string) (string, bool) {
	name, ok := strings.CutPrefix(p, SignalPermissionPrefix)
	if _, known := grantableSignals[name]; !ok || !known {
		return "", false
	}
	return name, true
}

// GrantablePermission reports whether a Grant may carry p: a permission name (KnownPermission), or
// `signals:<name>` for a catalogue signal that `signals` guards.
func GrantablePermission(p string) bool {
	if KnownPermission(p) {
		return true
	}
	_, ok := SignalOf(p)
	return ok
}
