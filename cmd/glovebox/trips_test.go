package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// TestTripsCommand: `glovebox trips` lists the owner's trip with its distance, top speed and driving
// events, as a table and as JSON, and refuses a stranger.
func TestTripsCommand(t *testing.T) {
	clearEnv(t)
	// The node's clock jumps ten minutes ahead after the pairing, so that the five-minute trip that
	// follows it is over.
	var ahead atomic.Int64
	n := testnode.Start(t, testnode.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := func(name string) (testnode.Key, string) {
		k := testnode.NewKey(t)
		p := filepath.Join(dir, name+".json")
		b, err := keystore.EncryptKey(&keystore.Key{Address: k.Address, PrivateKey: k.Key}, "correct horse battery staple",
			keystore.LightScryptN, keystore.LightScryptP)
		if err == nil {
			err = os.WriteFile(p, b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		return k, p
	}
	owner, ownerFile := keyFile("owner")
	_, strangerFile := keyFile("stranger")
	vehicle := n.Vehicle(t, owner)
	dev := n.PairedDevice(t, owner, vehicle, ledger.KindHardware)
	base := time.Now().Add(time.Second).Truncate(time.Second)
	ahead.Store(int64(10 * time.Minute))
	sig := func(name string, at time.Duration, v any) telemetry.EventSignal {
		return telemetry.EventSignal{Name: name, Timestamp: base.Add(at), Value: v}
	}
	res, err := n.Client.PostEvents(t.Context(), []telemetry.Submission{
		testnode.Record(t, dev, vehicle, "a", base, sig("isIgnitionOn", 0, true), sig("powertrainTransmissionTravelledDistance", 0, 1000.0)),
		testnode.Record(t, dev, vehicle, "b", base.Add(10*time.Second), sig("speed", 10*time.Second, 64.0)),
		testnode.Record(t, dev, vehicle, "c", base.Add(11*time.Second), sig("speed", 11*time.Second, 40.0)), // −24 km/h in a second
		testnode.Record(t, dev, vehicle, "d", base.Add(12*time.Second), sig("speed", 12*time.Second, 40.0)),
		testnode.Record(t, dev, vehicle, "e", base.Add(5*time.Minute), sig("isIgnitionOn", 5*time.Minute, false),
			sig("powertrainTransmissionTravelledDistance", 5*time.Minute, 1004.26), sig("speed", 5*time.Minute, 0.0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != telemetry.StatusAccepted {
			t.Fatalf("record %s: %s %s", r.ID, r.Status, r.Message)
		}
	}
	if _, err := n.Telemetry.Index(t.Context()); err != nil {
		t.Fatal(err)
	}
	args := func(key string, extra ...string) []string {
		return append([]string{"trips", "--vehicle", strconv.FormatUint(vehicle, 10), "--key", key, "--passphrase-file", pass,
			"--node", n.URL, "--from", base.Add(-time.Hour).Format(time.RFC3339), "--to", base.Add(time.Hour).Format(time.RFC3339)}, extra...)
	}

	code, out, errOut := runCLI(t, args(ownerFile, "--timezone", "UTC")...)
	if code != 0 {
		t.Fatalf("trips: %d %s %s", code, out, errOut)
	}
	for _, want := range []string{
		"trips of vehicle " + strconv.FormatUint(vehicle, 10),
		base.UTC().Format("2006-01-02 15:04") + "  5m0s      4.3 km    64 km/h    1 harsh braking",
		"1 trips, 4.3 km, 5m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}

	code, out, errOut = runCLI(t, args(ownerFile, "--json")...)
	var trips []tripView
	if err := json.Unmarshal([]byte(out), &trips); code != 0 || err != nil || len(trips) != 1 {
		t.Fatalf("trips --json: %d %v %s %s", code, err, out, errOut)
	}
	tr := trips[0]
	if tr.Start != base.UTC().Format(time.RFC3339Nano) || tr.DurationSeconds != 300 || *tr.DistanceKm != 4.3 || *tr.MaxSpeedKph != 64 ||
		tr.Events["behavior.harshBraking"] != 1 || tr.IsOngoing || len(tr.ID) == 0 {
		t.Errorf("trip %+v", tr)
	}

	if code, out, errOut = runCLI(t, args(strangerFile)...); code != 1 || !strings.Contains(errOut, "FORBIDDEN") {
		t.Errorf("a stranger's trips: %d %s %s", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, args(ownerFile, "--timezone", "Mars/Olympus")...); code != 2 || !strings.Contains(errOut, "--timezone") {
		t.Errorf("a bad time zone: %d %s", code, errOut)
	}
}
