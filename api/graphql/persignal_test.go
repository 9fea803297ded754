package graphql_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/api/graphql"
	"github.com/glovebox/glovebox/ledger"
)

// odometer is the signal the per-signal grants of these tests name.
const odometer = "powertrainTransmissionTravelledDistance"

// perSignalCaller is one caller of the per-signal matrix.
type perSignalCaller struct {
	name string
	addr common.Address
}

// perSignalFixture is the fixture of the per-signal matrix: the owner, an app granted
// `signals:<odometer>` only, one granted it with `location:approximate`, one whose grant was revoked and one
// whose grant expired.
func perSignalFixture(t *testing.T) (*fixture, []perSignalCaller) {
	f := newFixture(t)
	odo, odoApprox, revoked, expired := f.n.App(t, f.owner), f.n.App(t, f.owner), f.n.App(t, f.owner), f.n.App(t, f.owner)
	expiry := time.Now().Add(time.Hour)
	far := expiry.Add(time.Hour).Unix()
	f.n.Grant(t, f.owner, f.vehicle, odo.Address, far, ledger.SignalPermission(odometer))
	f.n.Grant(t, f.owner, f.vehicle, odoApprox.Address, far, ledger.SignalPermission(odometer), ledger.PermLocationApproximate)
	f.n.Grant(t, f.owner, f.vehicle, revoked.Address, far, ledger.SignalPermission(odometer))
	f.n.Grant(t, f.owner, f.vehicle, expired.Address, expiry.Unix(), ledger.SignalPermission(odometer))
	rev := &ledger.Tx{Type: ledger.TypeRevoke, App: revoked.Address}
	rev.VehicleID.SetUint64(f.vehicle)
	f.n.Submit(t, rev, f.owner)
	f.setNow(expiry.Add(time.Second))
	return f, []perSignalCaller{{"owner", f.owner.Address}, {"signals:x", odo.Address}, {"signals:x+approximate", odoApprox.Address},
		{"revoked", revoked.Address}, {"expired", expired.Address}}
}

// mismatch is one cell of a matrix whose answer is not the expected one, under the query field it reads.
type mismatch struct{ field, msg string }

// perSignalMatrix asks h every query that reads signals (the fields under @perSignal) as each caller and
// returns the answers that differ from the literal expectations. A signal outside the grant is null with
// FORBIDDEN naming it, listings leave it out, and the history refuses a query that asks for it.
func perSignalMatrix(t *testing.T, f *fixture, h http.Handler, callers []perSignalCaller) []mismatch {
	var out []mismatch
	window := fmt.Sprintf(`tokenId: %d, interval: "1m", from: %q, to: %q`, f.vehicle,
		f.base.Add(-time.Minute).UTC().Format(time.RFC3339), f.base.Add(time.Minute).UTC().Format(time.RFC3339))
	const approxField = "currentLocationApproximateCoordinates"

	// signalsLatest, field by field
	{
		q := fmt.Sprintf(`{ signalsLatest(tokenId: %d) { speed { value } %s { value } currentLocationCoordinates { timestamp }
			%s { timestamp } } }`, f.vehicle, odometer, approxField)
		// what each caller gets of each field: a value, or the FORBIDDEN error's permission and signal
		want := map[string]map[string]string{
			"owner": {"speed": "50.25", odometer: "12345.6", "currentLocationCoordinates": "value", approxField: "value"},
			"signals:x": {"speed": "FORBIDDEN signals speed", odometer: "12345.6",
				"currentLocationCoordinates": "FORBIDDEN location currentLocationCoordinates", approxField: "FORBIDDEN location:approximate "},
			"signals:x+approximate": {"speed": "FORBIDDEN signals speed", odometer: "12345.6",
				"currentLocationCoordinates": "FORBIDDEN location currentLocationCoordinates", approxField: "value"},
			"revoked": {"speed": "FORBIDDEN signals speed", odometer: "FORBIDDEN signals " + odometer,
				"currentLocationCoordinates": "FORBIDDEN location currentLocationCoordinates", approxField: "FORBIDDEN location:approximate "},
		}
		want["expired"] = want["revoked"]
		for _, c := range callers {
			r := do(t, h, c.addr, q)
			got := map[string]string{}
			for field := range want[c.name] {
				switch v := r.get("signalsLatest." + field).(type) {
				case nil:
				case map[string]any:
					if x, ok := v["value"].(float64); ok {
						got[field] = fmt.Sprint(x)
					} else {
						got[field] = "value"
					}
				}
			}
			for _, e := range r.Errors {
				field := fmt.Sprint(e.Path[len(e.Path)-1])
				sig, _ := e.Extensions["signal"].(string)
				got[field] = fmt.Sprintf("%v %v %s", e.Extensions["code"], e.Extensions["permission"], sig)
				if sig != "" && !strings.Contains(e.Message, sig) {
					out = append(out, mismatch{"signalsLatest", fmt.Sprintf("%s: the error of %s does not name the signal: %q", c.name, field, e.Message)})
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want[c.name]) {
				out = append(out, mismatch{"signalsLatest", fmt.Sprintf("%s: got  %v\nwant %v\n%s", c.name, got, want[c.name], r.Raw)})
			}
		}
	}

	// The listings: the names each caller gets, or the error code.
	listings := map[string]struct {
		query string
		names func(r *response) []string
	}{
		"availableSignals": {fmt.Sprintf(`{ availableSignals(tokenId: %d) }`, f.vehicle), func(r *response) []string {
			return strs(r.get("availableSignals"))
		}},
		"signalsSnapshot": {fmt.Sprintf(`{ signalsSnapshot(tokenId: %d) { signals { name } } }`, f.vehicle), func(r *response) []string {
			var out []string
			for _, s := range asList(r.get("signalsSnapshot.signals")) {
				out = append(out, fmt.Sprint(s.(map[string]any)["name"]))
			}
			return out
		}},
		"dataSummary": {fmt.Sprintf(`{ dataSummary(tokenId: %d) { availableSignals signalDataSummary { name } } }`, f.vehicle), func(r *response) []string {
			return strs(r.get("dataSummary.availableSignals"))
		}},
	}
	wantNames := map[string]string{
		"owner": "[currentLocationApproximateCoordinates currentLocationCoordinates isIgnitionOn powertrainFuelSystemSupportedFuelTypes " +
			odometer + " powertrainType speed]",
		"signals:x":             "[" + odometer + "]",
		"signals:x+approximate": "[" + approxField + " " + odometer + "]",
		"revoked":               "FORBIDDEN",
		"expired":               "FORBIDDEN",
	}
	for name, l := range listings {
		for _, c := range callers {
			r := do(t, h, c.addr, l.query)
			got := fmt.Sprint(l.names(r))
			if len(r.Errors) > 0 {
				got = fmt.Sprint(r.Errors[0].Extensions["code"])
			}
			if got != wantNames[c.name] {
				out = append(out, mismatch{name, fmt.Sprintf("%s: got %s, want %s\n%s", c.name, got, wantNames[c.name], r.Raw)})
			}
		}
	}

	// signals (history)
	odoQuery := fmt.Sprintf(`{ signals(%s) { timestamp %s(agg: MAX) } }`, window, odometer)
	speedQuery := fmt.Sprintf(`{ signals(%s) { timestamp %s(agg: MAX) speed(agg: MAX) } }`, window, odometer)
	for _, tc := range []struct {
		caller, query, want string
	}{
		{"owner", odoQuery, "12345.6"},
		{"owner", speedQuery, "12345.6"},
		{"signals:x", odoQuery, "12345.6"},
		{"signals:x", speedQuery, "FORBIDDEN signals speed"},
		{"signals:x+approximate", odoQuery, "12345.6"},
		{"signals:x+approximate", speedQuery, "FORBIDDEN signals speed"},
		{"revoked", odoQuery, "FORBIDDEN signals " + odometer},
		{"expired", odoQuery, "FORBIDDEN signals " + odometer},
	} {
		i := slices.IndexFunc(callers, func(c perSignalCaller) bool { return c.name == tc.caller })
		r := do(t, h, callers[i].addr, tc.query)
		got := fmt.Sprint(r.get("signals.0." + odometer))
		if len(r.Errors) > 0 {
			e := r.Errors[0].Extensions
			got = fmt.Sprintf("%v %v %v", e["code"], e["permission"], e["signal"])
			if strings.Contains(string(r.Raw), "12345.6") {
				out = append(out, mismatch{"signals", fmt.Sprintf("%s: a refused query leaks a value: %s", tc.caller, r.Raw)})
			}
		}
		if got != tc.want {
			out = append(out, mismatch{"signals", fmt.Sprintf("%s, %s: got %s, want %s\n%s", tc.caller, tc.query, got, tc.want, r.Raw)})
		}
	}
	return out
}

// TestPerSignalGrantsThroughEveryReadPath is the permission matrix of per-signal grants (perSignalMatrix)
// through every query that reads signals, and the queries that need permissions of their own.
func TestPerSignalGrantsThroughEveryReadPath(t *testing.T) {
	f, callers := perSignalFixture(t)
	for _, m := range perSignalMatrix(t, f, f.h, callers) {
		t.Errorf("%s: %s", m.field, m.msg)
	}

	t.Run("rawRecords and insights need their own permissions", func(t *testing.T) {
		from, to := f.base.Add(-time.Minute).UTC().Format(time.RFC3339), f.base.Add(time.Minute).UTC().Format(time.RFC3339)
		for _, q := range []struct{ query, permission string }{
			{fmt.Sprintf(`{ rawRecords(tokenId: %d, from: %q, to: %q) { withheld } }`, f.vehicle, from, to), ledger.PermRaw},
			{fmt.Sprintf(`{ events(tokenId: %d, from: %q, to: %q) { name } }`, f.vehicle, from, to), ledger.PermInsights},
		} {
			for _, c := range callers[1:] {
				r := do(t, f.h, c.addr, q.query)
				if len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "FORBIDDEN" || r.Errors[0].Extensions["permission"] != q.permission {
					t.Errorf("%s: %s\n%s", c.name, q.query, r.Raw)
				}
			}
		}
	})

	t.Run("vehicle: a per-signal grant in force lets the app see the vehicle", func(t *testing.T) {
		q := fmt.Sprintf(`{ vehicle(tokenId: %d) { tokenId myGrant { permissions } } }`, f.vehicle)
		for _, c := range callers[1:] {
			r := do(t, f.h, c.addr, q)
			inForce := c.name == "signals:x" || c.name == "signals:x+approximate"
			if inForce != (len(r.Errors) == 0) || (inForce && !strings.Contains(string(r.Raw), ledger.SignalPermission(odometer))) {
				t.Errorf("%s: %s", c.name, r.Raw)
			}
		}
	})
}

// TestWithoutPerSignalTheMatrixFails takes @perSignal away from the schema (the directive resolves its
// field and decides nothing) and runs the per-signal matrix again: every query field that carried the
// directive must now answer wrongly, which proves that the directive, and not some check beside it, is
// what decides per-signal permissions.
func TestWithoutPerSignalTheMatrixFails(t *testing.T) {
	f, callers := perSignalFixture(t)
	failed := map[string]int{}
	for _, m := range perSignalMatrix(t, f, graphql.NewHandlerWithoutPerSignal(f.cfg), callers) {
		failed[m.field]++
	}
	for _, field := range []string{"signalsLatest", "availableSignals", "signalsSnapshot", "dataSummary", "signals"} {
		if failed[field] == 0 {
			t.Errorf("%s answers as the matrix expects without @perSignal: something other than the directive decides its permissions", field)
		}
	}
}

func strs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
