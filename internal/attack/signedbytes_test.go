package attack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// signedEvent signs the bytes of a record of dev for vehicle at t carrying one signal, with every
// occurrence of old in the bytes replaced by new (to write a name with JSON escapes).
func signedEvent(t *testing.T, dev testnode.Key, vehicle uint64, id string, at time.Time, sig telemetry.EventSignal, old, new string) telemetry.Submission {
	t.Helper()
	ev, err := telemetry.NewEvent(dev.Address, vehicle, id, at, []telemetry.EventSignal{sig})
	if err != nil {
		t.Fatal(err)
	}
	if old != "" {
		ev = bytes.ReplaceAll(ev, []byte(old), []byte(new))
	}
	sub, err := telemetry.Sign(ev, dev.Key)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestRawRecordsGuardEverySignalAsGraphQLDoes stores records that carry, each, one guarded signal —
// the position (its name also written with a JSON escape), altitude, heading, the VIN — and one that
// carries only speed. rawRecords hands each to a caller only if the caller may read every signal in it,
// as GraphQL decides for the signals themselves; the rest are counted as withheld.
func TestRawRecordsGuardEverySignalAsGraphQLDoes(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vid, ledger.KindHardware)
	at := time.Now().Add(time.Second).Truncate(time.Second)
	loc := telemetry.Location{Latitude: 57.70887, Longitude: 11.97456, HDOP: 1}
	subs := []telemetry.Submission{
		signedEvent(t, dev, vid, "escaped-position", at, telemetry.EventSignal{Name: telemetry.SignalLocation, Timestamp: at, Value: loc},
			`"currentLocationCoordinates"`, `"currentLocation\u0043oordinates"`),
		signedEvent(t, dev, vid, "escaped-everywhere", at.Add(time.Second), telemetry.EventSignal{Name: telemetry.SignalLocation, Timestamp: at.Add(time.Second), Value: loc},
			`"currentLocationCoordinates"`, `"\u0063\u0075\u0072\u0072\u0065\u006e\u0074\u004c\u006f\u0063\u0061\u0074\u0069\u006f\u006e\u0043\u006f\u006f\u0072\u0064\u0069\u006e\u0061\u0074\u0065\u0073"`),
		signedEvent(t, dev, vid, "position", at.Add(2*time.Second), telemetry.EventSignal{Name: telemetry.SignalLocation, Timestamp: at.Add(2 * time.Second), Value: loc}, "", ""),
		signedEvent(t, dev, vid, "altitude", at.Add(3*time.Second), telemetry.EventSignal{Name: "currentLocationAltitude", Timestamp: at.Add(3 * time.Second), Value: 412.0}, "", ""),
		signedEvent(t, dev, vid, "heading", at.Add(4*time.Second), telemetry.EventSignal{Name: "currentLocationHeading", Timestamp: at.Add(4 * time.Second), Value: 271.0}, "", ""),
		signedEvent(t, dev, vid, "vin", at.Add(5*time.Second), telemetry.EventSignal{Name: "vehicleIdentificationVIN", Timestamp: at.Add(5 * time.Second), Value: "YV1XZK9V5P2000001"}, "", ""),
		signedEvent(t, dev, vid, "speed", at.Add(6*time.Second), telemetry.EventSignal{Name: "speed", Timestamp: at.Add(6 * time.Second), Value: 42.0}, "", ""),
	}
	res, err := n.Client.PostEvents(context.Background(), subs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("record %s: %s %s", r.ID, r.Status, r.Message)
		}
	}
	query := fmt.Sprintf(`{ rawRecords(tokenId: %d, from: %q, to: %q) { withheld nodes { id } } }`, vid,
		at.Add(-time.Minute).UTC().Format(time.RFC3339), at.Add(time.Minute).UTC().Format(time.RFC3339))
	for _, tc := range []struct {
		perms    []string // nil: the owner
		ids      string
		withheld float64
	}{
		{[]string{"raw"}, "speed", 6},
		{[]string{"raw", "signals", "location:approximate"}, "speed", 6},
		{[]string{"raw", "location"}, "escaped-position escaped-everywhere position altitude heading speed", 1},
		{[]string{"raw", "credentials"}, "vin speed", 5},
		{[]string{"raw", "location", "credentials"}, "escaped-position escaped-everywhere position altitude heading vin speed", 0},
		{nil, "escaped-position escaped-everywhere position altitude heading vin speed", 0},
	} {
		t.Run(strings.Join(tc.perms, ","), func(t *testing.T) {
			caller := owner
			if tc.perms != nil {
				appOwner := testnode.NewKey(t)
				app := n.App(t, appOwner)
				n.Grant(t, owner, vid, app.Address, time.Now().Add(time.Hour).Unix(), tc.perms...)
				caller = app
			}
			a := graphQL(t, n, n.SignIn(t, caller), query)
			if len(a.Errors) != 0 {
				t.Fatalf("%s", a.Raw)
			}
			conn := a.Data["rawRecords"].(map[string]any)
			var ids []string
			for _, node := range conn["nodes"].([]any) {
				ids = append(ids, node.(map[string]any)["id"].(string))
			}
			if got := strings.Join(ids, " "); got != tc.ids || conn["withheld"] != tc.withheld {
				t.Errorf("got %q withheld %v, want %q withheld %v", got, conn["withheld"], tc.ids, tc.withheld)
			}
		})
	}
}
