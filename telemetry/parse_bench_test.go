package telemetry_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/sim"
	"github.com/glovebox/glovebox/telemetry"
)

// tenSignals is the benchmarks' record of ten signals (sim.TenSignals), as a device sends it.
func tenSignals(b *testing.B) []byte {
	at := time.Date(2026, 11, 20, 9, 58, 0, 0, time.UTC)
	ev, err := telemetry.NewEvent(common.HexToAddress("0x8ba1f109551bD432803012645Ac136ddd64DBA72"), 7, "r1", at, sim.TenSignals(at, 7))
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkParse is the ingest's parse of a record of ten signals (strict: the JSON text checked);
// BenchmarkParseStored the indexer's of the same record read back.
func BenchmarkParse(b *testing.B) {
	sub := &telemetry.Submission{Event: tenSignals(b), Signature: make([]byte, 65)}
	now := time.Now().UnixMilli()
	for b.Loop() {
		if _, err := telemetry.DefaultCatalog.Parse(sub, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStored(b *testing.B) {
	ev := tenSignals(b)
	for b.Loop() {
		if _, err := telemetry.DefaultCatalog.ParseStored(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseSubmissions is the decoding of a body of POST /v1/events: 500 envelopes of the record of
// ten signals (b.N bodies; the figure a record is ns/op ÷ 500).
func BenchmarkParseSubmissions(b *testing.B) {
	sub := telemetry.Submission{Event: tenSignals(b), Signature: make([]byte, 65)}
	subs := make([]telemetry.Submission, 500)
	for i := range subs {
		subs[i] = sub
	}
	body, err := json.Marshal(subs)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := telemetry.ParseSubmissions(body, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
