package graphql_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// TestSourceFilterAnswersWhatThatDeviceSent pairs a second device (of the other kind) to the fixture's
// vehicle, which sends a newer speed: signalsLatest without a source answers it, with a source the newest
// value each device sent, whichever way the source is spelled.
func TestSourceFilterAnswersWhatThatDeviceSent(t *testing.T) {
	f := newFixture(t)
	phone := f.n.PairedDevice(t, f.owner, f.vehicle, ledger.KindSoftware)
	at := f.base.Add(3 * time.Second) // after the fixture's records
	f.post(t, testnode.Record(t, phone, f.vehicle, "p1", at, telemetry.EventSignal{Name: "speed", Timestamp: at, Value: 77.0}))
	dev, ph := f.dev.Address.Hex(), phone.Address.Hex()
	const q = `{ signalsLatest(tokenId: %d%s) { speed { value } isIgnitionOn { value } powertrainType { value } } }`
	for _, tc := range []struct {
		name   string
		filter string
		want   string // speed, isIgnitionOn, powertrainType
	}{
		{"no filter: the newest of either device", ``, "77 1 BEV"},
		{"the hardware device, checksummed", fmt.Sprintf(`, filter: {source: %q}`, dev), "50.25 1 BEV"},
		{"the hardware device, lower case", fmt.Sprintf(`, filter: {source: %q}`, strings.ToLower(dev)), "50.25 1 BEV"},
		{"the phone as DIMO's DID, upper-case hex", fmt.Sprintf(`, filter: {source: "did:ethr:137:0x%s"}`, strings.ToUpper(ph[2:])), "77 <nil> <nil>"},
		{"a device that never sent for the vehicle", `, filter: {source: "0x00000000000000000000000000000000000000aa"}`, "<nil> <nil> <nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, f.h, f.owner.Address, fmt.Sprintf(q, f.vehicle, tc.filter))
			if len(r.Errors) > 0 {
				t.Fatalf("errors: %s", r.Raw)
			}
			got := fmt.Sprint(r.get("signalsLatest.speed.value"), " ", r.get("signalsLatest.isIgnitionOn.value"), " ",
				r.get("signalsLatest.powertrainType.value"))
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSourceFilterRefusals: a source that is not an address or DIMO's DID of one, and the queries that
// take no source, are BAD_REQUEST; a caller without access is refused as without the filter.
func TestSourceFilterRefusals(t *testing.T) {
	f := newFixture(t)
	stranger := testnode.NewKey(t)
	dev := f.dev.Address.Hex()
	for _, tc := range []struct {
		name   string
		caller testnode.Key
		query  string
		code   string
	}{
		{"an address one digit short", f.owner, fmt.Sprintf(`{ signalsLatest(tokenId: %d, filter: {source: %q}) { lastSeen } }`, f.vehicle, dev[:41]), "BAD_REQUEST"},
		{"an address with a space", f.owner, fmt.Sprintf(`{ signalsLatest(tokenId: %d, filter: {source: %q}) { lastSeen } }`, f.vehicle, " "+dev), "BAD_REQUEST"},
		{"a DID without a chain id", f.owner, fmt.Sprintf(`{ availableSignals(tokenId: %d, filter: {source: "did:ethr::%s"}) }`, f.vehicle, dev), "BAD_REQUEST"},
		{"a DID of another method", f.owner, fmt.Sprintf(`{ signalsSnapshot(tokenId: %d, filter: {source: "did:key:137:%s"}) { lastSeen } }`, f.vehicle, dev), "BAD_REQUEST"},
		{"signals takes no source", f.owner, fmt.Sprintf(`{ signals(tokenId: %d, interval: "1h", from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", filter: {source: %q}) { timestamp } }`,
			f.vehicle, dev), "BAD_REQUEST"},
		{"dataSummary takes no source", f.owner, fmt.Sprintf(`{ dataSummary(tokenId: %d, filter: {source: %q}) { numberOfSignals } }`, f.vehicle, dev), "BAD_REQUEST"},
		{"a stranger with a valid source", stranger, fmt.Sprintf(`{ signalsSnapshot(tokenId: %d, filter: {source: %q}) { lastSeen } }`, f.vehicle, dev), "FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, do(t, f.h, tc.caller.Address, tc.query), tc.code, "50.25")
		})
	}
}
