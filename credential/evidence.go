package credential

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
)

// Evidence is what a verifier needs to re-derive a credential's claim without trusting the node: the
// device-signed records, the log entries that made their devices speak for the car, with inclusion
// proofs, and a checkpoint signed by the log key. It travels as the selectively disclosable claim
// "evidence".
type Evidence struct {
	// Checkpoint is the signed C2SP checkpoint note every proof is against.
	Checkpoint string `json:"checkpoint"`
	// Pairings are the pairings the records were measured under.
	Pairings []LoggedPairing `json:"pairings"`
	// Records are the device-signed records, exactly as stored.
	Records []SignedRecord `json:"records"`

	// parsed[i], when set, is Records[i].Event as Gather read it (telemetry.Catalog.ParseStored), which
	// Issue's check takes instead of reading the same bytes again.
	parsed []*telemetry.Record
}

// LoggedPairing is one pairing of a device to the vehicle: the PairDevice entry that started it and, if
// it ended before the checkpoint, the entry that ended it (UnpairDevice, TransferVehicle or BurnVehicle).
type LoggedPairing struct {
	Start LoggedEntry  `json:"start"`
	End   *LoggedEntry `json:"end,omitempty"`
}

// LoggedEntry is one log entry with its inclusion proof in the checkpoint's tree.
type LoggedEntry struct {
	Index int64    `json:"index"`
	Entry []byte   `json:"entry"` // the entry's bytes (ledger entry encoding), base64 in JSON
	Proof [][]byte `json:"proof"` // the RFC 6962 inclusion proof, hashes base64 in JSON
}

// SignedRecord is one record as its device signed it.
type SignedRecord struct {
	Event     string `json:"event"`     // the CloudEvents JSON, the exact bytes signed
	Signature string `json:"signature"` // personal_sign over Event, 0x and 130 hex digits
	Pairing   int64  `json:"pairing"`   // log index of the PairDevice entry in force at the record's time
}

// Signals returns the catalogue names of every signal the evidence's records carry, sorted: what a
// verifier who sees the evidence learns besides the claim (a record may carry more than the signal the
// claim rests on). The issuer withholds the evidence from a caller who may not read one of them.
func (ev *Evidence) Signals(cat *telemetry.Catalog) ([]string, error) {
	seen := map[string]bool{}
	for i, r := range ev.Records {
		sig, err := parseSignature(r.Signature)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		rec, err := cat.Parse(&telemetry.Submission{Event: []byte(r.Event), Signature: sig}, math.MaxInt64/2)
		if err != nil {
			return nil, fmt.Errorf("record %d does not parse as a telemetry record: %w", i, err)
		}
		for _, v := range rec.Values {
			seen[v.Signal.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// checkedPairing is a pairing whose entries verified: the device spoke for the vehicle in [from, to).
type checkedPairing struct {
	device   common.Address
	from, to int64 // unix ms; to is MaxInt64 while in force at the checkpoint
}

// checkedEvidence is evidence whose every signature and proof verified, reduced to readings.
type checkedEvidence struct {
	odometer, vin, location []reading
}

// check verifies ev for vehicle against the log key: the checkpoint's signature, every pairing entry's
// inclusion proof, type, vehicle, device signature and time range, every record's device signature,
// subject and times; and returns the readings of the records. checkSigs false skips recovering the
// records' signatures and reads their events as stored ones (the issuer's own records were checked at
// ingest).
func (ev *Evidence) check(key *IssuerKey, vehicle uint64, cat *telemetry.Catalog, checkSigs bool) (*checkedEvidence, error) {
	return checkEvidence(key, vehicle, cat, ev.Checkpoint, ev.Pairings, len(ev.Records), func(i int) ([]byte, *telemetry.Record, string, int64, error) {
		r := &ev.Records[i]
		if !checkSigs && i < len(ev.parsed) && ev.parsed[i] != nil {
			return nil, ev.parsed[i], r.Signature, r.Pairing, nil
		}
		return []byte(r.Event), nil, r.Signature, r.Pairing, nil
	}, checkSigs)
}

// wireEvidence is Evidence as Verify decodes it: each record's event is kept as its JSON string, which
// the record's check unquotes, on every core, rather than the decoder, on one.
type wireEvidence struct {
	Checkpoint string          `json:"checkpoint"`
	Pairings   []LoggedPairing `json:"pairings"`
	Records    []wireRecord    `json:"records"`
}

type wireRecord struct {
	Event     jsontext.Value `json:"event"` // a JSON string (parseDisclosureInto checks the kind)
	Signature string         `json:"signature"`
	Pairing   int64          `json:"pairing"`
}

func (ev *wireEvidence) check(key *IssuerKey, vehicle uint64, cat *telemetry.Catalog) (*checkedEvidence, error) {
	return checkEvidence(key, vehicle, cat, ev.Checkpoint, ev.Pairings, len(ev.Records), func(i int) ([]byte, *telemetry.Record, string, int64, error) {
		r := &ev.Records[i]
		event, err := unquote(r.Event)
		if err != nil {
			return nil, nil, "", 0, fmt.Errorf("the event is not a JSON string: %w", err)
		}
		return event, nil, r.Signature, r.Pairing, nil
	}, true)
}

// unquote returns the bytes of a JSON string that the decoder validated. A device's event escapes only
// its quotes (and perhaps backslashes and control characters), one every few bytes, which one loop
// copies between, several times as fast as jsontext's general unquoting, which reads the rest (\u
// escapes, surrogate pairs).
func unquote(v jsontext.Value) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || bytes.Contains(v, []byte(`\u`)) {
		return jsontext.AppendUnquote(nil, v)
	}
	s := v[1 : len(v)-1]
	out := make([]byte, 0, len(s))
	from := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 == len(s) {
			return jsontext.AppendUnquote(nil, v) // not valid: let it say why
		}
		out = append(out, s[from:i]...)
		switch c := s[i+1]; c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default:
			return jsontext.AppendUnquote(nil, v)
		}
		i++
		from = i + 1
	}
	return append(out, s[from:]...), nil
}

// checkEvidence is check over n records that record hands out: each one's event bytes, or the event
// already read (as a stored one: checkSigs false), its signature and the pairing it names.
func checkEvidence(key *IssuerKey, vehicle uint64, cat *telemetry.Catalog, checkpoint string, logged []LoggedPairing, n int,
	record func(i int) (event []byte, parsed *telemetry.Record, signature string, pairing int64, err error), checkSigs bool) (*checkedEvidence, error) {
	v, err := note.NewVerifier(key.LogKey)
	if err != nil {
		return nil, fail(CheckCheckpoint, "%v", err)
	}
	origin, _, _ := strings.Cut(key.KeyID, "+")
	size, root, err := tlog.OpenCheckpoint([]byte(checkpoint), origin, v)
	if err != nil {
		return nil, fail(CheckCheckpoint, "the checkpoint is not signed by the log key %s: %v", key.KeyID, err)
	}
	domain := ledger.NewDomain(origin)
	pairings := map[int64]checkedPairing{}
	for i, p := range logged {
		cp, err := p.check(domain, vehicle, size, root)
		if err != nil {
			return nil, fail(CheckPairing, "pairing %d: %v", i, err)
		}
		pairings[p.Start.Index] = cp
	}
	// The records are checked on every core (parsing and signature recovery are most of the time of a
	// verification); the first failure in their order is reported.
	parts := make([]checkedEvidence, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				event, parsed, sig, pairing, err := record(i)
				if err == nil {
					err = checkRecord(event, parsed, sig, pairing, cat, vehicle, pairings, checkSigs, &parts[i])
				}
				errs[i] = err
			}
		})
	}
	wg.Wait()
	out := &checkedEvidence{}
	for i, err := range errs {
		if err != nil {
			return nil, fail(CheckRecord, "record %d: %v", i, err)
		}
		out.odometer = append(out.odometer, parts[i].odometer...)
		out.vin = append(out.vin, parts[i].vin...)
		out.location = append(out.location, parts[i].location...)
	}
	return out, nil
}

// verifyIncluded checks that e is the entry at its index in the tree (size, root).
func (e *LoggedEntry) verifyIncluded(size int64, root xtlog.Hash) (*ledger.Entry, error) {
	if e.Index < 0 || e.Index >= size {
		return nil, fmt.Errorf("entry %d is not in the checkpoint's tree of %d entries", e.Index, size)
	}
	proof := make(xtlog.RecordProof, len(e.Proof))
	for i, h := range e.Proof {
		if len(h) != xtlog.HashSize {
			return nil, fmt.Errorf("entry %d: proof hash %d is %d bytes", e.Index, i, len(h))
		}
		copy(proof[i][:], h)
	}
	if err := xtlog.CheckRecord(proof, size, root, e.Index, xtlog.RecordHash(e.Entry)); err != nil {
		return nil, fmt.Errorf("entry %d: the inclusion proof does not verify against the checkpoint: %w", e.Index, err)
	}
	ent, err := ledger.UnmarshalEntry(e.Entry)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	return ent, nil
}

func (p *LoggedPairing) check(domain *ledger.Domain, vehicle uint64, size int64, root xtlog.Hash) (checkedPairing, error) {
	start, err := p.Start.verifyIncluded(size, root)
	if err != nil {
		return checkedPairing{}, err
	}
	tx := start.Tx
	if tx.Type != ledger.TypePairDevice {
		return checkedPairing{}, fmt.Errorf("entry %d is a %s, not a PairDevice", p.Start.Index, tx.Type)
	}
	if !tx.VehicleID.IsUint64() || tx.VehicleID.Uint64() != vehicle {
		return checkedPairing{}, fmt.Errorf("entry %d pairs vehicle %s, not %d", p.Start.Index, tx.VehicleID.Dec(), vehicle)
	}
	signers, err := domain.Signers(tx)
	if err != nil {
		return checkedPairing{}, fmt.Errorf("entry %d: %w", p.Start.Index, err)
	}
	if !containsAddress(signers, tx.Device) {
		return checkedPairing{}, fmt.Errorf("entry %d is not signed by the device %s it pairs", p.Start.Index, tx.Device.Hex())
	}
	cp := checkedPairing{device: tx.Device, from: start.AcceptTime, to: math.MaxInt64}
	if p.End != nil {
		end, err := p.End.verifyIncluded(size, root)
		if err != nil {
			return checkedPairing{}, err
		}
		et := end.Tx
		if p.End.Index <= p.Start.Index {
			return checkedPairing{}, fmt.Errorf("the ending entry %d comes before the pairing %d", p.End.Index, p.Start.Index)
		}
		sameVehicle := et.VehicleID.IsUint64() && et.VehicleID.Uint64() == vehicle
		switch {
		case et.Type == ledger.TypeUnpairDevice && sameVehicle && et.Device == tx.Device:
		case (et.Type == ledger.TypeTransferVehicle || et.Type == ledger.TypeBurnVehicle) && sameVehicle:
		default:
			return checkedPairing{}, fmt.Errorf("entry %d (%s) does not end the pairing of %s to vehicle %d", p.End.Index, et.Type, tx.Device.Hex(), vehicle)
		}
		cp.to = end.AcceptTime
	}
	return cp, nil
}

func containsAddress(list []common.Address, a common.Address) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// checkRecord checks one record of the evidence (the event's bytes, its signature and the pairing it
// names) and appends its readings to out. checkSig false recovers no signature and reads the event as a
// stored one (telemetry.Catalog.ParseStored), or takes rec, the event so read already.
func checkRecord(event []byte, rec *telemetry.Record, signature string, pairing int64, cat *telemetry.Catalog, vehicle uint64,
	pairings map[int64]checkedPairing, checkSig bool, out *checkedEvidence) error {
	sig, err := parseSignature(signature)
	if err != nil {
		return err
	}
	sub := telemetry.Submission{Event: event, Signature: sig}
	switch {
	case checkSig:
		rec, err = cat.Parse(&sub, math.MaxInt64/2)
	case rec == nil:
		rec, err = cat.ParseStored(event)
	}
	if err != nil {
		return fmt.Errorf("the event does not parse as a telemetry record: %w", err)
	}
	if rec.VehicleID != vehicle {
		return fmt.Errorf("record %s is about vehicle %d, not %d", rec.ID, rec.VehicleID, vehicle)
	}
	if checkSig {
		signer, err := sub.Signer()
		if err != nil {
			return fmt.Errorf("record %s: %w", rec.ID, err)
		}
		if signer != rec.Source {
			return fmt.Errorf("record %s is signed by %s, not by its source %s", rec.ID, signer.Hex(), rec.Source.Hex())
		}
	}
	p, ok := pairings[pairing]
	if !ok {
		return fmt.Errorf("record %s names pairing entry %d, which the evidence does not hold", rec.ID, pairing)
	}
	if p.device != rec.Source {
		return fmt.Errorf("record %s is from %s, but pairing entry %d pairs %s", rec.ID, rec.Source.Hex(), pairing, p.device.Hex())
	}
	inPairing := func(t int64) bool { return p.from <= t && t < p.to }
	if !inPairing(rec.Time) {
		return fmt.Errorf("record %s was measured at %s, when its device was not paired to vehicle %d (pairing entry %d)",
			rec.ID, utc(rec.Time).Format("2006-01-02T15:04:05.000Z"), vehicle, pairing)
	}
	for _, v := range rec.Values {
		if !inPairing(v.Time) {
			return fmt.Errorf("record %s: %s was measured at %s, when its device was not paired to vehicle %d",
				rec.ID, v.Signal.Name, utc(v.Time).Format("2006-01-02T15:04:05.000Z"), vehicle)
		}
		rd := reading{Time: v.Time, Number: v.Number, String: v.String, Lat: v.Lat, Lon: v.Lon}
		switch v.Signal.Name {
		case SignalOdometer:
			out.odometer = append(out.odometer, rd)
		case SignalVIN:
			out.vin = append(out.vin, rd)
		case SignalLocation:
			out.location = append(out.location, rd)
		}
	}
	return nil
}

func parseSignature(s string) ([]byte, error) {
	if len(s) != 132 || !strings.HasPrefix(s, "0x") {
		return nil, fmt.Errorf("a signature is 0x and 130 hex digits")
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, fmt.Errorf("the signature is not hex")
	}
	return b, nil
}

// marshal encodes ev as json (v2) would, about four times faster for a mileage's megabyte of records:
// the records are quoted on every core, and an event that is printable ASCII, as a device writes it,
// needs only its quotes and backslashes escaped (any other is left to json).
func (ev *Evidence) marshal() ([]byte, error) {
	head, err := jsonv2.Marshal(struct {
		Checkpoint string          `json:"checkpoint"`
		Pairings   []LoggedPairing `json:"pairings"`
	}{ev.Checkpoint, ev.Pairings})
	if err != nil {
		return nil, err
	}
	parts := make([][]byte, min(runtime.GOMAXPROCS(0), len(ev.Records)))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for w := range parts {
		wg.Go(func() {
			lo, hi := w*len(ev.Records)/len(parts), (w+1)*len(ev.Records)/len(parts)
			n := 0
			for _, r := range ev.Records[lo:hi] {
				n += len(r.Event) + len(r.Event)/8 + len(r.Signature) + 64
			}
			b := make([]byte, 0, n)
			for i := lo; i < hi && errs[w] == nil; i++ {
				r := &ev.Records[i]
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"event":`...)
				b, errs[w] = appendQuoted(b, r.Event)
				b = append(b, `,"signature":`...)
				if errs[w] == nil {
					b, errs[w] = appendQuoted(b, r.Signature)
				}
				b = strconv.AppendInt(append(b, `,"pairing":`...), r.Pairing, 10)
				b = append(b, '}')
			}
			parts[w] = b
		})
	}
	wg.Wait()
	n := len(head) + len(`,"records":[]`)
	for w, p := range parts {
		if errs[w] != nil {
			return nil, errs[w]
		}
		n += len(p)
	}
	out := make([]byte, 0, n)
	out = append(append(out, head[:len(head)-1]...), `,"records":[`...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return append(out, "]}"...), nil
}

// appendQuoted appends s as a JSON string, as json (v2) writes it.
func appendQuoted(b []byte, s string) ([]byte, error) {
	n, from := len(b), 0
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x80:
			q, err := jsonv2.Marshal(s)
			return append(b[:n], q...), err
		case c == '"' || c == '\\':
			b = append(append(b, s[from:i]...), '\\', c)
			from = i + 1
		}
	}
	return append(append(b, s[from:]...), '"'), nil
}
