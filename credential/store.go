package credential

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// IssuedVIN is a VIN credential as issued, kept so that the GraphQL vinVCLatest (DIMO's query) can answer
// with the latest one issued for a vehicle.
type IssuedVIN struct {
	Vehicle    uint64
	Caller     common.Address // who asked for it
	IssuedAt   time.Time      // iat
	Expires    time.Time      // exp
	VIN        string
	MeasuredAt time.Time      // when the device reported the VIN
	RecordedBy common.Address // the device whose signed record carried it
	SDJWT      string         // the credential as issued, every disclosure the caller got included
}

// VINStore keeps the latest VIN credential of each vehicle. The implementations are store/sqlite's and
// store/postgres's Credentials; the conformance suite is storetest.TestAttestations.
type VINStore interface {
	// PutVIN keeps v as its vehicle's latest VIN credential, durably when it returns.
	PutVIN(ctx context.Context, v IssuedVIN) error
	// LatestVIN returns the VIN credential of vehicle issued last at or after since (the current owner's
	// period), and false when there is none.
	LatestVIN(ctx context.Context, vehicle uint64, since time.Time) (IssuedVIN, bool, error)
}

// DisclosedEvidence returns the evidence a credential discloses, or nil when it discloses none, WITHOUT
// verifying anything: for the node, to decide whether a caller may see a credential it issued (the
// signals of the evidence's records), before handing it out.
func DisclosedEvidence(sdjwt string) (*Evidence, error) {
	_, encoded, _, err := split(sdjwt)
	if err != nil {
		return nil, err
	}
	for _, enc := range encoded {
		d, err := parseDisclosure(enc)
		if err != nil {
			return nil, err
		}
		if d.Name != DisclosureEvidence {
			continue
		}
		ev, err := decodeEvidence(d.Value)
		if err != nil {
			return nil, fmt.Errorf("the evidence does not decode: %w", err)
		}
		return ev, nil
	}
	return nil, nil
}

// Recorder returns the source of the evidence's last record: the device whose signed record a VIN
// credential rests on (the zero address without records).
func (ev *Evidence) Recorder() common.Address {
	if ev == nil || len(ev.Records) == 0 {
		return common.Address{}
	}
	var e struct {
		Source string `json:"source"`
	}
	if json.Unmarshal([]byte(ev.Records[len(ev.Records)-1].Event), &e) != nil {
		return common.Address{}
	}
	return common.HexToAddress(e.Source)
}
