package sqlite

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// TestTheIndexerTakesTheValuesWriteWasHanded writes records parsed (as the ingester hands them) and
// unparsed, and checks that the indexer uses a parsed record's values rather than parsing its event
// again: the handed speed is changed after parsing, so only the handed value can reach the index.
func TestTheIndexerTakesTheValuesWriteWasHanded(t *testing.T) {
	ctx := context.Background()
	tel := openTempTelemetry(t)
	at := time.Now().Truncate(time.Millisecond)
	for _, tc := range []struct {
		name   string
		parsed bool
		want   float64
	}{
		{"a record handed parsed is not parsed again", true, 11},
		{"a record written unparsed is parsed from storage", false, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at = at.Add(time.Millisecond)
			var handed *float64
			if tc.parsed {
				handed = &tc.want
			}
			if _, err := tel.Write(ctx, []*telemetry.Record{speedRecord(t, 1, tc.name, at, 20, handed)}); err != nil {
				t.Fatal(err)
			}
			if _, err := tel.Index(ctx); err != nil {
				t.Fatal(err)
			}
			wantLatestSpeed(t, tel, 1, tc.want)
		})
	}
}

// speedRecord returns a record of vehicle, from the device whose address is the vehicle's number, with one
// speed value measured at at. With handed set it is parsed, as the ingester hands records to Write, and
// its speed then changed to *handed: only the handoff can bring that value to the index.
func speedRecord(t *testing.T, vehicle uint64, id string, at time.Time, speed float64, handed *float64) *telemetry.Record {
	t.Helper()
	src := common.BigToAddress(new(big.Int).SetUint64(vehicle))
	ev, err := telemetry.NewEvent(src, vehicle, id, at, []telemetry.EventSignal{{Name: "speed", Timestamp: at, Value: speed}})
	if err != nil {
		t.Fatal(err)
	}
	if handed == nil {
		return &telemetry.Record{Source: src, ID: id, VehicleID: vehicle, Time: at.UnixMilli(), Received: at.UnixMilli(), Event: ev}
	}
	r, err := telemetry.DefaultCatalog.ParseStored(ev)
	if err != nil {
		t.Fatal(err)
	}
	r.Values[0].Number = *handed
	return r
}

// wantLatestSpeed fails the test unless the latest value of vehicle is one speed, want.
func wantLatestSpeed(t *testing.T, tel *Telemetry, vehicle uint64, want float64) {
	t.Helper()
	rows, err := tel.Latest(context.Background(), vehicle, 0)
	if err != nil || len(rows) != 1 {
		t.Fatalf("vehicle %d: latest %+v (%v), want speed %v", vehicle, rows, err, want)
	}
	if got, err := telemetry.AsFloat(rows[0].Val); err != nil || got != want {
		t.Fatalf("vehicle %d: latest %+v (%v), want speed %v", vehicle, rows, err, want)
	}
}

// openTempTelemetry opens a store in a temporary directory, closed when the test ends.
func openTempTelemetry(t *testing.T) *Telemetry {
	t.Helper()
	tel, err := OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Close() })
	return tel
}
