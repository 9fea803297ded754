package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/tlog"
)

// The checks of Verify, named in a Failure.
const (
	CheckLayout     = "layout"     // the members, their order, and each one's syntax
	CheckCheckpoint = "checkpoint" // checkpoint.txt is signed by the log key and matches export.json
	CheckLedger     = "ledger"     // every entry of ledger.ndjson is in the checkpoint's tree, about the vehicle
	CheckPeriods    = "periods"    // export.json's periods and windows are what the entries say
	CheckSignature  = "signature"  // every record is signed by its source device
	CheckRecord     = "record"     // every record is about the vehicle, once, in order, in a window, before the snapshot
	CheckPairing    = "pairing"    // every record's device was paired to the vehicle at its time by the entry it names
	CheckValues     = "values"     // signals.csv and signals.ndjson hold exactly the records' values
	CheckSummary    = "summary"    // summary.json counts what the members hold
)

// Checks lists the checks in the order Verify runs them.
var Checks = []string{CheckLayout, CheckCheckpoint, CheckLedger, CheckPeriods, CheckSignature, CheckRecord, CheckPairing, CheckValues, CheckSummary}

// Failure is a failed check of an archive: which check, where (member and line, 0 when the member as a
// whole) and why.
type Failure struct {
	Check  string
	File   string
	Line   int
	Reason string
}

func (f *Failure) Error() string {
	where := f.File
	if f.Line > 0 {
		where = fmt.Sprintf("%s line %d", f.File, f.Line)
	}
	if where == "" {
		return fmt.Sprintf("check %s failed: %s", f.Check, f.Reason)
	}
	return fmt.Sprintf("check %s failed at %s: %s", f.Check, where, f.Reason)
}

func failf(check, file string, line int, format string, args ...any) *Failure {
	return &Failure{Check: check, File: file, Line: line, Reason: fmt.Sprintf(format, args...)}
}

// Report is what Verify found in an archive that passed every check.
type Report struct {
	Vehicle       uint64
	Owner         string
	Periods       []Period
	LogSize       int64
	Records       int64
	Values        int64
	Devices       []string  // the records' sources, sorted
	First, Last   time.Time // the first and last record's measurement time (zero without records)
	Files         map[string]int64
	ChecksPassed  []string
	SnapshotToken string
}

// members is the archive's layout: every member, in order.
var members = []string{"README.txt", "export.json", "checkpoint.txt", "ledger.ndjson", "catalogue.csv", "records.ndjson",
	"signals.csv", "signals.ndjson", "events.ndjson", "trips.ndjson", "grants.ndjson", "access-log.ndjson", "summary.json"}

// Verify checks an export archive offline against the log's note verifier key (as /v1/node publishes it).
// It needs nothing but the archive and the key: no node, no network. It returns the first failed check
// as a *Failure.
func Verify(zr *zip.Reader, logKey string) (*Report, error) {
	v := &verifier{zr: zr, files: map[string]*zip.File{}, cat: telemetry.DefaultCatalog}
	if len(zr.File) != len(members) {
		return nil, failf(CheckLayout, "", 0, "the archive has %d members, want %d (%s)", len(zr.File), len(members), strings.Join(members, ", "))
	}
	for i, f := range zr.File {
		if f.Name != members[i] {
			return nil, failf(CheckLayout, f.Name, 0, "member %d is %q, want %q", i+1, f.Name, members[i])
		}
		v.files[f.Name] = f
	}
	rep := &Report{}
	for _, step := range []func(*Report) error{v.manifest, func(r *Report) error { return v.checkpoint(r, logKey) }, v.ledger, v.periods,
		v.records, v.summary} {
		if err := step(rep); err != nil {
			return nil, err
		}
	}
	rep.ChecksPassed = slices.Clone(Checks)
	return rep, nil
}

type verifier struct {
	zr    *zip.Reader
	files map[string]*zip.File
	cat   *telemetry.Catalog

	m        Manifest
	at       int64
	windows  []window
	size     int64
	root     xtlog.Hash
	entries  []loggedEntry
	pairings map[int64]pairing
	counts   map[string]int64
}

type pairing struct {
	device   common.Address
	from, to int64 // [from, to) unix ms
}

func (v *verifier) open(name string) (io.ReadCloser, error) {
	rc, err := v.files[name].Open()
	if err != nil {
		return nil, failf(CheckLayout, name, 0, "%v", err)
	}
	return rc, nil
}

func (v *verifier) readAll(name string) ([]byte, error) {
	rc, err := v.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, failf(CheckLayout, name, 0, "%v", err)
	}
	return b, nil
}

func parseStamp(s string) (int64, error) {
	t, err := time.Parse("2006-01-02T15:04:05.000Z", s)
	if err != nil || stamp(t.UnixMilli()) != s {
		return 0, fmt.Errorf("%q is not a time as the archive writes them", s)
	}
	return t.UnixMilli(), nil
}

func (v *verifier) manifest(rep *Report) error {
	b, err := v.readAll("export.json")
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v.m); err != nil {
		return failf(CheckLayout, "export.json", 0, "%v", err)
	}
	if v.m.Format != FormatVersion {
		return failf(CheckLayout, "export.json", 0, "format %d, this verifier reads %d", v.m.Format, FormatVersion)
	}
	if v.at, err = parseStamp(v.m.At); err != nil {
		return failf(CheckLayout, "export.json", 0, "snapshotTime: %v", err)
	}
	for i, w := range v.m.Windows {
		lo, err1 := parseStamp(w[0])
		hi, err2 := parseStamp(w[1])
		if err := errors.Join(err1, err2); err != nil || lo >= hi {
			return failf(CheckLayout, "export.json", 0, "window %d is not a range: %v", i, err)
		}
		v.windows = append(v.windows, window{lo, hi})
	}
	rep.Vehicle, rep.Owner, rep.Periods, rep.LogSize, rep.SnapshotToken = v.m.Vehicle, v.m.Owner, v.m.Periods, v.m.LogSize, v.m.Snapshot
	return nil
}

func (v *verifier) checkpoint(_ *Report, logKey string) error {
	cp, err := v.readAll("checkpoint.txt")
	if err != nil {
		return err
	}
	nv, err := note.NewVerifier(logKey)
	if err != nil {
		return failf(CheckCheckpoint, "", 0, "the log key: %v", err)
	}
	if nv.Name() != v.m.Origin {
		return failf(CheckCheckpoint, "export.json", 0, "the log origin is %q, but the key is %q's", v.m.Origin, nv.Name())
	}
	if v.size, v.root, err = tlog.OpenCheckpoint(cp, v.m.Origin, nv); err != nil {
		return failf(CheckCheckpoint, "checkpoint.txt", 0, "not signed by the log key: %v", err)
	}
	if v.size != v.m.LogSize {
		return failf(CheckCheckpoint, "checkpoint.txt", 0, "the checkpoint is of size %d, export.json says %d", v.size, v.m.LogSize)
	}
	return nil
}

// lines calls f with each line of a member (without its newline) and its number, and counts them.
func (v *verifier) lines(name string, f func(line []byte, n int) error) error {
	rc, err := v.open(name)
	if err != nil {
		return err
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, 256<<10)
	n := 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return failf(CheckLayout, name, n+1, "a line longer than %d bytes", r.Size())
		}
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				return failf(CheckLayout, name, n+1, "the last line has no newline")
			}
			n++
			if err := f(line[:len(line)-1], n); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return failf(CheckLayout, name, n+1, "%v", err)
		}
	}
	if v.counts == nil {
		v.counts = map[string]int64{}
	}
	v.counts[name] = int64(n)
	return nil
}

func strictJSON(line []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

func (v *verifier) ledger(*Report) error {
	const name = "ledger.ndjson"
	paired := map[common.Address]bool{}
	var devices []loggedEntry
	prev := int64(-1)
	err := v.lines(name, func(line []byte, n int) error {
		var l LedgerLine
		if err := strictJSON(line, &l); err != nil {
			return failf(CheckLayout, name, n, "%v", err)
		}
		if l.Index < 0 || l.Index >= v.size {
			return failf(CheckLedger, name, n, "entry %d is not in the checkpoint's tree of %d entries", l.Index, v.size)
		}
		if l.Index <= prev {
			return failf(CheckLedger, name, n, "entry %d is out of order", l.Index)
		}
		prev = l.Index
		proof := make(xtlog.RecordProof, len(l.Proof))
		for i, h := range l.Proof {
			if len(h) != xtlog.HashSize {
				return failf(CheckLedger, name, n, "proof hash %d of entry %d is %d bytes", i, l.Index, len(h))
			}
			copy(proof[i][:], h)
		}
		if err := xtlog.CheckRecord(proof, v.size, v.root, l.Index, xtlog.RecordHash(l.Entry)); err != nil {
			return failf(CheckLedger, name, n, "entry %d is not in the checkpoint's tree: %v", l.Index, err)
		}
		e, err := ledger.UnmarshalEntry(l.Entry)
		if err != nil {
			return failf(CheckLedger, name, n, "entry %d: %v", l.Index, err)
		}
		if e.Tx.Type.String() != l.Type || stamp(e.AcceptTime) != l.AcceptTime || !bytes.Equal(e.Tx.MessageJSON(), l.Message) {
			return failf(CheckLedger, name, n, "entry %d: type, acceptTime or message do not match the entry's bytes", l.Index)
		}
		le := loggedEntry{l.Index, l.Entry, e}
		switch id, ok := vehicleOf(e.Tx); {
		case e.Tx.Type == ledger.TypeRegisterVehicle:
			if len(v.entries) != 0 {
				return failf(CheckLedger, name, n, "entry %d registers a vehicle, but the vehicle was registered before", l.Index)
			}
			v.entries = append(v.entries, le)
		case e.Tx.Type == ledger.TypeRegisterDevice:
			devices = append(devices, le)
		case ok && id == v.m.Vehicle:
			if len(v.entries) == 0 {
				return failf(CheckLedger, name, n, "entry %d comes before the vehicle's registration", l.Index)
			}
			if e.Tx.Type == ledger.TypePairDevice {
				paired[e.Tx.Device] = true
			}
			v.entries = append(v.entries, le)
		default:
			return failf(CheckLedger, name, n, "entry %d (%s) is not about vehicle %d", l.Index, e.Tx.Type, v.m.Vehicle)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(v.entries) == 0 {
		return failf(CheckLedger, name, 0, "no RegisterVehicle entry")
	}
	kinds := map[common.Address]string{}
	for _, d := range devices {
		if !paired[d.e.Tx.Device] {
			return failf(CheckLedger, name, 0, "entry %d registers device %s, which no entry pairs to vehicle %d", d.index, d.e.Tx.Device.Hex(), v.m.Vehicle)
		}
		kinds[d.e.Tx.Device] = d.e.Tx.Kind
	}
	for a := range paired {
		if kinds[a] == "" {
			return failf(CheckLedger, name, 0, "device %s is paired but its registration is not in the archive", a.Hex())
		}
	}
	v.pairings = pairingsOf(v.entries, kinds)
	return nil
}

// pairingsOf walks a vehicle's entries as the ledger applies them and returns each pairing by the index of
// its PairDevice entry: unpairing ends one, a transfer ends a software device's, a burn ends all.
func pairingsOf(entries []loggedEntry, kinds map[common.Address]string) map[int64]pairing {
	out := map[int64]pairing{}
	open := map[common.Address]int64{} // device → its PairDevice index
	end := func(a common.Address, at int64) {
		if idx, ok := open[a]; ok {
			p := out[idx]
			p.to = at
			out[idx] = p
			delete(open, a)
		}
	}
	for _, le := range entries {
		tx := le.e.Tx
		switch tx.Type {
		case ledger.TypePairDevice:
			out[le.index] = pairing{device: tx.Device, from: le.e.AcceptTime, to: math.MaxInt64}
			open[tx.Device] = le.index
		case ledger.TypeUnpairDevice:
			end(tx.Device, le.e.AcceptTime)
		case ledger.TypeTransferVehicle, ledger.TypeBurnVehicle:
			for a := range open {
				if tx.Type == ledger.TypeBurnVehicle || kinds[a] == ledger.KindSoftware {
					end(a, le.e.AcceptTime)
				}
			}
		}
	}
	return out
}

func (v *verifier) periods(*Report) error {
	var want []Period
	for _, p := range periodsOf(v.entries) {
		if strings.EqualFold(p.Owner, v.m.Owner) {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		return failf(CheckPeriods, "export.json", 0, "the ledger entries never make %s the vehicle's owner", v.m.Owner)
	}
	if len(want) != len(v.m.Periods) {
		return failf(CheckPeriods, "export.json", 0, "%d ownership periods, the ledger entries give %d", len(v.m.Periods), len(want))
	}
	for i := range want {
		g, w := v.m.Periods[i], want[i]
		if g.Owner != w.Owner || g.FromIndex != w.FromIndex || g.ToIndex != w.ToIndex || g.FromTime != w.FromTime ||
			g.ToTime != w.ToTime || g.Current != w.Current {
			return failf(CheckPeriods, "export.json", 0, "period %d is %s, the ledger entries give %s", i, g, w)
		}
	}
	// The windows are the periods within the range.
	lo, hi := int64(math.MinInt64), v.at+1
	var err error
	if v.m.From != "" {
		if lo, err = parseStamp(v.m.From); err != nil {
			return failf(CheckLayout, "export.json", 0, "from: %v", err)
		}
	}
	if hi, err = parseStamp(v.m.To); err != nil || hi > v.at+1 {
		return failf(CheckPeriods, "export.json", 0, "to %q is not a time at or before the snapshot", v.m.To)
	}
	var ws []window
	for _, p := range want {
		to := p.To
		if to == 0 {
			to = v.at + 1
		}
		if w := (window{max(p.From, lo), min(to, hi)}); w.lo < w.hi {
			ws = append(ws, w)
		}
	}
	if !slices.Equal(ws, v.windows) {
		return failf(CheckPeriods, "export.json", 0, "the windows are not the ownership periods within the range")
	}
	return nil
}

func (v *verifier) inWindows(t int64) bool {
	return slices.ContainsFunc(v.windows, func(w window) bool { return w.has(t) })
}

// recordJob is one record line on its way through signature recovery.
type recordJob struct {
	n      int
	line   RecordLine
	rec    *telemetry.Record
	signer common.Address
	fail   *Failure
}

// check parses a record line and recovers its signer (the costly part, run on all cores).
func (j *recordJob) check(raw []byte, cat *telemetry.Catalog) {
	const name = "records.ndjson"
	if err := strictJSON(raw, &j.line); err != nil {
		j.fail = failf(CheckLayout, name, j.n, "%v", err)
		return
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(j.line.Signature, "0x"))
	if err != nil || len(sig) != 65 || !strings.HasPrefix(j.line.Signature, "0x") {
		j.fail = failf(CheckSignature, name, j.n, "record %s: the signature is not 0x and 130 hex digits", j.line.ID)
		return
	}
	sub := telemetry.Submission{Event: []byte(j.line.Event), Signature: sig}
	if j.signer, err = sub.Signer(); err != nil {
		j.fail = failf(CheckSignature, name, j.n, "record %s: %v", j.line.ID, err)
		return
	}
	if j.rec, err = cat.Parse(&sub, math.MaxInt64/2); err != nil {
		j.fail = failf(CheckRecord, name, j.n, "record %s does not parse as a telemetry record: %v", j.line.ID, err)
	}
}

func (v *verifier) records(rep *Report) error {
	const name = "records.ndjson"
	csvRC, err := v.open("signals.csv")
	if err != nil {
		return err
	}
	defer csvRC.Close()
	ndRC, err := v.open("signals.ndjson")
	if err != nil {
		return err
	}
	defer ndRC.Close()
	csvR, ndR := bufio.NewReaderSize(csvRC, 64<<10), bufio.NewReaderSize(ndRC, 64<<10)
	var csvLine, ndLine int64 = 1, 0
	if err := expect(csvR, []byte(CSVHeader), "signals.csv", 1); err != nil {
		return err
	}
	devices := map[string]bool{}
	lastTime := int64(math.MinInt64)
	seen := map[string]bool{} // (source, id) of the records at lastTime: a duplicate has the same time
	var buf []byte
	apply := func(j *recordJob) error {
		if j.fail != nil {
			return j.fail
		}
		l, r := &j.line, j.rec
		if r.Source != j.signer {
			return failf(CheckSignature, name, j.n, "record %s is signed by %s, not by its source %s", l.ID, j.signer.Hex(), r.Source.Hex())
		}
		if r.ID != l.ID || r.Source.Hex() != l.Source || stamp(r.Time) != l.Time {
			return failf(CheckRecord, name, j.n, "record %s: id, source or time do not match the signed event", l.ID)
		}
		if r.VehicleID != v.m.Vehicle {
			return failf(CheckRecord, name, j.n, "record %s is about vehicle %d, not %d", l.ID, r.VehicleID, v.m.Vehicle)
		}
		received, err := parseStamp(l.Received)
		if err != nil || received > v.at {
			return failf(CheckRecord, name, j.n, "record %s was received at %s, after the snapshot %s", l.ID, l.Received, v.m.At)
		}
		if !v.inWindows(r.Time) {
			return failf(CheckRecord, name, j.n, "record %s was measured at %s, outside the owner's periods within the range", l.ID, l.Time)
		}
		if r.Time < lastTime {
			return failf(CheckRecord, name, j.n, "record %s is out of time order", l.ID)
		}
		if r.Time != lastTime {
			clear(seen)
			lastTime = r.Time
		}
		key := l.Source + "/" + l.ID
		if seen[key] {
			return failf(CheckRecord, name, j.n, "record %s of %s appears twice", l.ID, l.Source)
		}
		seen[key] = true
		p, ok := v.pairings[l.Pairing]
		if !ok {
			return failf(CheckPairing, name, j.n, "record %s names pairing entry %d, which is not a PairDevice of the vehicle in ledger.ndjson", l.ID, l.Pairing)
		}
		if p.device != r.Source {
			return failf(CheckPairing, name, j.n, "record %s is from %s, but entry %d pairs %s", l.ID, r.Source.Hex(), l.Pairing, p.device.Hex())
		}
		if r.Time < p.from || r.Time >= p.to {
			return failf(CheckPairing, name, j.n, "record %s was measured at %s, when entry %d's pairing was not in force", l.ID, l.Time, l.Pairing)
		}
		devices[l.Source] = true
		rep.Records++
		if rep.First.IsZero() {
			rep.First = time.UnixMilli(r.Time).UTC()
		}
		rep.Last = time.UnixMilli(r.Time).UTC()
		for i := range r.Values {
			val := &r.Values[i]
			if !v.inWindows(val.Time) {
				continue
			}
			if val.Time < p.from || val.Time >= p.to {
				return failf(CheckPairing, name, j.n, "record %s: %s was measured at %s, when entry %d's pairing was not in force",
					l.ID, val.Signal.Name, stamp(val.Time), l.Pairing)
			}
			rep.Values++
			csvLine++
			buf = AppendCSVRow(buf[:0], val)
			if err := expect(csvR, buf, "signals.csv", csvLine); err != nil {
				return err
			}
			ndLine++
			buf = AppendValueLine(buf[:0], val)
			if err := expect(ndR, buf, "signals.ndjson", ndLine); err != nil {
				return err
			}
		}
		return nil
	}
	if err := v.eachRecordJob(name, apply); err != nil {
		return err
	}
	if _, err := csvR.ReadByte(); err != io.EOF {
		return failf(CheckValues, "signals.csv", int(csvLine+1), "a value that no record holds")
	}
	if _, err := ndR.ReadByte(); err != io.EOF {
		return failf(CheckValues, "signals.ndjson", int(ndLine+1), "a value that no record holds")
	}
	v.counts["signals.csv"], v.counts["signals.ndjson"] = rep.Values, rep.Values
	for d := range devices {
		rep.Devices = append(rep.Devices, d)
	}
	slices.Sort(rep.Devices)
	return nil
}

// expect reads len(want) bytes of r and fails the values check unless they are want.
func expect(r *bufio.Reader, want []byte, file string, line int64) error {
	got := make([]byte, len(want))
	n, _ := io.ReadFull(r, got)
	if n < len(want) || !bytes.Equal(got, want) {
		if n < len(want) && bytes.IndexByte(got[:n], '\n') < 0 {
			return failf(CheckValues, file, int(line), "the file ends before the value %q of the records", bytes.TrimSpace(want))
		}
		if i := bytes.IndexByte(got[:n], '\n'); i >= 0 {
			got = got[:i]
		}
		return failf(CheckValues, file, int(line), "holds %q, the records hold %q", got, bytes.TrimSpace(want))
	}
	return nil
}

// eachRecordJob reads records.ndjson and calls apply with each record, in order, its signature recovered
// on all cores.
func (v *verifier) eachRecordJob(name string, apply func(*recordJob) error) error {
	const batch = 512
	workers := runtime.GOMAXPROCS(0)
	var jobs []*recordJob
	var raws [][]byte
	flush := func() error {
		var wg sync.WaitGroup
		per := (len(jobs) + workers - 1) / workers
		for w := 0; w < workers; w++ {
			lo, hi := w*per, min((w+1)*per, len(jobs))
			if lo >= hi {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					jobs[i].check(raws[i], v.cat)
				}
			}()
		}
		wg.Wait()
		for _, j := range jobs {
			if err := apply(j); err != nil {
				return err
			}
		}
		jobs, raws = jobs[:0], raws[:0]
		return nil
	}
	err := v.lines(name, func(line []byte, n int) error {
		jobs = append(jobs, &recordJob{n: n})
		raws = append(raws, bytes.Clone(line))
		if len(jobs) == batch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

func (v *verifier) summary(rep *Report) error {
	for _, name := range []string{"events.ndjson", "trips.ndjson", "grants.ndjson", "access-log.ndjson"} {
		if err := v.lines(name, func(line []byte, n int) error {
			if !json.Valid(line) {
				return failf(CheckLayout, name, n, "not a JSON value")
			}
			return nil
		}); err != nil {
			return err
		}
	}
	grants := int64(0)
	for _, le := range v.entries {
		switch le.e.Tx.Type {
		case ledger.TypeGrant, ledger.TypeRevoke, ledger.TypeRenounce:
			grants++
		}
	}
	if v.counts["grants.ndjson"] != grants {
		return failf(CheckSummary, "grants.ndjson", 0, "%d lines, ledger.ndjson holds %d grant entries", v.counts["grants.ndjson"], grants)
	}
	rows := int64(-1) // the header
	if err := v.lines("catalogue.csv", func([]byte, int) error { rows++; return nil }); err != nil {
		return err
	}
	v.counts["catalogue.csv"] = rows
	b, err := v.readAll("summary.json")
	if err != nil {
		return err
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return failf(CheckLayout, "summary.json", 0, "%v", err)
	}
	for name, n := range v.counts {
		if s.Files[name] != n {
			return failf(CheckSummary, "summary.json", 0, "%s holds %d lines, summary.json says %d", name, n, s.Files[name])
		}
	}
	rep.Files = s.Files
	return nil
}
