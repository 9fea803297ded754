package sim

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glovebox/glovebox/client"
	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/telemetry"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkPaired asserts that the node holds every vehicle of specs, owned by its owner, with its device
// paired.
func checkPaired(t *testing.T, c *client.Client, specs []Spec) {
	t.Helper()
	for _, s := range specs {
		v, err := c.Vehicle(t.Context(), s.VehicleID)
		if err != nil {
			t.Fatalf("vehicle %d: %v", s.VehicleID, err)
		}
		if !strings.EqualFold(v.Owner, s.Owner.Hex()) || v.Make != s.Make || v.Model != s.Model || v.Year != s.Year {
			t.Fatalf("vehicle %d is %s %s %d of %s", s.VehicleID, v.Make, v.Model, v.Year, v.Owner)
		}
		paired := false
		for _, p := range v.Devices {
			paired = paired || (strings.EqualFold(p.Device, s.Device.Hex()) && p.Kind == s.DeviceKind)
		}
		if !paired {
			t.Fatalf("vehicle %d: device %s (%s) is not paired: %+v", s.VehicleID, s.Device.Hex(), s.DeviceKind, v.Devices)
		}
	}
}

// TestSimulatorAgainstNode sets a fleet up on a real node through signed transactions, streams records
// in real time, runs again on the same keys, then posts a few simulated minutes of fast-mode records:
// every record must be accepted.
func TestSimulatorAgainstNode(t *testing.T) {
	var ahead atomic.Int64 // the node's clock, ahead of the real one for the fast mode below
	n := testnode.Start(t, testnode.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	dir := t.TempDir()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	opts := Options{Node: n.URL, Vehicles: 10, Rate: 100 * time.Millisecond, Duration: 2 * time.Second, Seed: 11,
		KeysDir: dir, Logger: logger, StatusEvery: 500 * time.Millisecond}
	st, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if st.Setup.Registered != 10 || st.Setup.Devices != 10 || st.Setup.Paired != 10 || st.Setup.Reused != 0 {
		t.Fatalf("setup %+v", st.Setup)
	}
	keys, err := LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Specs) != 10 || keys.Seed != 11 || keys.Node != n.URL {
		t.Fatalf("keys file: %d vehicles, seed %d, node %s", len(keys.Specs), keys.Seed, keys.Node)
	}
	want := Specs(11, 10)
	for i, s := range keys.Specs {
		if s.Owner != want[i].Owner || s.Device != want[i].Device {
			t.Fatalf("vehicle %d: keys not derived from the seed", i)
		}
	}
	checkPaired(t, n.Client, keys.Specs)
	for _, line := range []string{"fleet ready", "msg=status", "msg=done"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no %q in the log:\n%s", line, logs.String())
		}
	}

	// A second run on the same keys reuses the fleet and registers the extra vehicles only.
	opts.Vehicles = 12
	opts.Duration = time.Second
	st2, err := Run(t.Context(), opts)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if st2.Setup.Reused != 10 || st2.Setup.Registered != 2 || st2.Setup.Paired != 2 {
		t.Fatalf("second setup %+v", st2.Setup)
	}
	keys2, err := LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys.Specs {
		if keys2.Specs[i].VehicleID != keys.Specs[i].VehicleID {
			t.Fatalf("vehicle %d got a new id on the second run", i)
		}
	}
	checkPaired(t, n.Client, keys2.Specs)

	// A keys file that lost a vehicle id: the device's pairing to a vehicle of the same owner is adopted.
	lost := append([]Spec(nil), keys2.Specs...)
	lost[0].VehicleID = 0
	res, err := Setup(t.Context(), n.Client, lost, logger, nil)
	if err != nil || res.Reused != 12 || res.Registered+res.Devices+res.Paired != 0 || lost[0].VehicleID != keys2.Specs[0].VehicleID {
		t.Fatalf("setup with a lost id: %+v, %v, vehicle %d", res, err, lost[0].VehicleID)
	}

	for _, s := range []Stats{st, st2} {
		if s.Records == 0 || s.Accepted == 0 || s.Accepted+s.Duplicates != s.Sent || s.RejectedTotal() != 0 || s.Failures != 0 {
			t.Fatalf("run stats %+v\n%s", s, logs.String())
		}
	}

	// Fast mode on the registered fleet: four simulated minutes from now, one delivery per tick, so that
	// trips, backfill and every kind of record reach the node. The node's clock jumps five minutes ahead
	// first: a record dated ahead of it would be held until its time.
	fleet, err := NewFleetFromSpecs(11, keys2.Specs, time.Now())
	ahead.Store(int64(5 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tr := NewHTTPTransport(n.URL)
	var sent, driving int
	for i := 0; i < 240; i++ {
		recs := fleet.Step(time.Second)
		if len(recs) == 0 {
			continue
		}
		res, err := tr.Send(context.Background(), Submissions(recs))
		if err != nil {
			t.Fatal(err)
		}
		for k, r := range res {
			if r.Status != telemetry.StatusAccepted {
				t.Fatalf("record %s of vehicle %d: %s %s\n%s", recs[k].ID, recs[k].VehicleID, r.Status, r.Message, recs[k].Submission.Event)
			}
			if recs[k].State.Phase == PhaseDriving {
				driving++
			}
		}
		sent += len(recs)
	}
	if driving == 0 {
		t.Errorf("no driving records among %d", sent)
	}
	t.Logf("fast mode: %d records accepted, %d while driving", sent, driving)
}
