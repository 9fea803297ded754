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
	tel, err := OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	src := common.BigToAddress(big.NewInt(1))
	at := time.Now().Truncate(time.Millisecond)
	record := func(id string, speed float64, parsed bool) *telemetry.Record {
		ev, err := telemetry.NewEvent(src, 1, id, at, []telemetry.EventSignal{{Name: "speed", Timestamp: at, Value: speed}})
		if err != nil {
			t.Fatal(err)
		}
		if !parsed {
			return &telemetry.Record{Source: src, ID: id, VehicleID: 1, Time: at.UnixMilli(), Received: at.UnixMilli(), Event: ev}
		}
		r, err := telemetry.DefaultCatalog.ParseStored(ev)
		if err != nil {
			t.Fatal(err)
		}
		r.Values[0].Number = speed + 1 // what the indexer must take
		return r
	}
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
			if _, err := tel.Write(ctx, []*telemetry.Record{record(tc.name, tc.want-map[bool]float64{true: 1}[tc.parsed], tc.parsed)}); err != nil {
				t.Fatal(err)
			}
			if _, err := tel.Index(ctx); err != nil {
				t.Fatal(err)
			}
			rows, err := tel.Latest(ctx, 1, 0)
			if err != nil || len(rows) != 1 {
				t.Fatalf("latest %+v (%v), want speed %v", rows, err, tc.want)
			}
			if got, err := telemetry.AsFloat(rows[0].Val); err != nil || got != tc.want {
				t.Fatalf("latest %+v (%v), want speed %v", rows, err, tc.want)
			}
		})
	}
}
