package export

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/klauspost/compress/flate"
	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/segment"
	"github.com/glovebox/glovebox/tlog"
)

// FormatVersion is the archive format; it is part of every ETag, so that a node that builds archives
// differently never resumes an older one.
const FormatVersion = 1

// Log is what an export reads of the Merkle log (tlog.Log and postgres.Log have it).
type Log interface {
	Latest() (size int64, checkpoint []byte)
	Origin() string
	InclusionProof(index, size int64) (xtlog.RecordProof, error)
}

// Source is where an export reads from. Access is decided by Plan (only an owner of the vehicle gets a
// plan); the stores are only read.
type Source struct {
	State     telemetry.StateReader
	Entries   ledger.EntrySource // the log's entries, to find the vehicle's
	Log       Log
	LogKey    string // the log's note verifier key, to check a snapshot's checkpoint
	Telemetry telemetry.Reader
	AccessLog accesslog.Store
	Catalog   *telemetry.Catalog // default telemetry.DefaultCatalog
	Now       func() time.Time   // default time.Now
}

// Request asks for one vehicle's export.
type Request struct {
	Vehicle  uint64
	Caller   common.Address
	From, To time.Time // the zero time: open
	// Snapshot is a Plan.Snapshot token of an earlier export, to rebuild the same archive; "" takes a new
	// snapshot now.
	Snapshot string
}

// Errors of Plan that callers branch on (the API maps them to its error codes).
var (
	ErrUnknownVehicle = errors.New("no such vehicle")
	ErrNotOwner       = errors.New("the caller never owned the vehicle")
	ErrInvertedRange  = errors.New("from is not before to")
	ErrBadSnapshot    = errors.New("not a snapshot of this node")
)

// Period is one interval of ownership: [From, To) in unix ms; To is 0 while it lasts.
type Period struct {
	Owner     string `json:"owner"`
	From      int64  `json:"-"`
	To        int64  `json:"-"`
	FromIndex int64  `json:"fromIndex"`        // the RegisterVehicle or TransferVehicle entry that began it
	ToIndex   int64  `json:"toIndex"`          // the TransferVehicle entry that ended it, -1 while it lasts
	FromTime  string `json:"from"`             // RFC 3339
	ToTime    string `json:"to,omitempty"`     // RFC 3339, absent while it lasts
	Current   bool   `json:"current,omitzero"` // it lasts at the snapshot
}

func (p Period) String() string {
	to := p.ToTime
	if to == "" {
		to = "now"
	}
	return fmt.Sprintf("%s's from %s (entry %d) to %s (entry %d)", p.Owner, p.FromTime, p.FromIndex, to, p.ToIndex)
}

// window is [lo, hi) in unix ms.
type window struct{ lo, hi int64 }

func (w window) has(t int64) bool { return w.lo <= t && t < w.hi }

// Plan is one export, decided and ready to write: the snapshot, the caller's periods and the windows of
// time it covers. Write may be called any number of times and writes the same bytes each time, as long
// as the stores keep what they held.
type Plan struct {
	src        *Source
	req        Request
	size       int64
	checkpoint []byte
	at         int64 // the snapshot time, unix ms
	lo, hi     int64 // the range asked, clamped to [min, at]
	periods    []Period
	windows    []window
	vehicle    ledger.Vehicle
	entries    []loggedEntry // the vehicle's entries the archive carries, by index
}

type loggedEntry struct {
	index int64
	raw   []byte
	e     *ledger.Entry
}

// Plan decides an export: the vehicle must exist and the caller must have owned it at some time up to the
// snapshot. It reads the vehicle's log entries (from its registration to the snapshot's size).
func (s *Source) Plan(ctx context.Context, req Request) (*Plan, error) {
	if s.Catalog == nil {
		s.Catalog = telemetry.DefaultCatalog
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if !req.From.IsZero() && !req.To.IsZero() && !req.From.Before(req.To) {
		return nil, fmt.Errorf("%w: from %s, to %s", ErrInvertedRange, req.From.UTC().Format(time.RFC3339), req.To.UTC().Format(time.RFC3339))
	}
	var v ledger.Vehicle
	var ok bool
	s.State(func(st *ledger.State) { v, ok = st.Vehicle(req.Vehicle) })
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownVehicle, req.Vehicle)
	}
	p := &Plan{src: s, req: req, vehicle: v}
	if req.Snapshot == "" {
		p.at = now().UnixMilli()
		p.size, p.checkpoint = s.Log.Latest()
	} else if err := p.openSnapshot(req.Snapshot, now().UnixMilli()); err != nil {
		return nil, err
	}
	if v.RegisteredAt >= p.size {
		return nil, fmt.Errorf("%w: vehicle %d was registered after the snapshot", ErrUnknownVehicle, req.Vehicle)
	}
	if err := p.readEntries(ctx); err != nil {
		return nil, err
	}
	p.ownership()
	if len(p.periods) == 0 {
		return nil, fmt.Errorf("%w: %s never owned vehicle %d", ErrNotOwner, req.Caller.Hex(), req.Vehicle)
	}
	// The range ends with the snapshot time, included: a record measured then and received by then is in.
	p.lo, p.hi = math.MinInt64, p.at+1
	if !req.From.IsZero() {
		p.lo = ceilMilli(req.From)
	}
	if !req.To.IsZero() {
		p.hi = min(p.hi, ceilMilli(req.To))
	}
	for _, per := range p.periods {
		to := per.To
		if to == 0 {
			to = p.at + 1
		}
		if w := (window{max(per.From, p.lo), min(to, p.hi)}); w.lo < w.hi {
			p.windows = append(p.windows, w)
		}
	}
	p.keepEntries()
	return p, nil
}

func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// Snapshot returns the token that asks for this plan's snapshot again: the snapshot time and the signed
// checkpoint, "AT.BASE64URL".
func (p *Plan) Snapshot() string {
	return strconv.FormatInt(p.at, 10) + "." + base64.RawURLEncoding.EncodeToString(p.checkpoint)
}

func (p *Plan) openSnapshot(tok string, now int64) error {
	at, cp, ok := strings.Cut(tok, ".")
	ms, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || ms <= 0 || ms > now || strconv.FormatInt(ms, 10) != at {
		return fmt.Errorf("%w: a snapshot is the time and checkpoint an export named", ErrBadSnapshot)
	}
	raw, err := base64.RawURLEncoding.DecodeString(cp)
	if err != nil {
		return fmt.Errorf("%w: the checkpoint is not base64url", ErrBadSnapshot)
	}
	v, err := note.NewVerifier(p.src.LogKey)
	if err != nil {
		return fmt.Errorf("export: the node's log key: %w", err)
	}
	size, _, err := tlog.OpenCheckpoint(raw, p.src.Log.Origin(), v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if latest, _ := p.src.Log.Latest(); size > latest {
		return fmt.Errorf("%w: its log size %d is beyond this node's %d", ErrBadSnapshot, size, latest)
	}
	p.at, p.size, p.checkpoint = ms, size, raw
	return nil
}

// vehicleOf returns the vehicle a transaction names, for the types that name one.
func vehicleOf(tx *ledger.Tx) (uint64, bool) {
	switch tx.Type {
	case ledger.TypeRegisterVehicle, ledger.TypeRegisterDevice, ledger.TypeRegisterApp, ledger.TypeUpdateApp:
		return 0, false
	}
	if !tx.VehicleID.IsUint64() {
		return 0, false
	}
	return tx.VehicleID.Uint64(), true
}

// readEntries reads the vehicle's entries from its registration to the snapshot's size, and the
// registrations of the devices paired to it.
func (p *Plan) readEntries(ctx context.Context) error {
	const chunk = 1024
	devices := map[common.Address]bool{}
	for from := p.vehicle.RegisteredAt; from < p.size; from += chunk {
		n := min(chunk, p.size-from)
		raws, err := p.src.Entries(ctx, from, n)
		if err != nil {
			return fmt.Errorf("couldn't read log entries %d..%d: %w", from, from+n, err)
		}
		for i, raw := range raws {
			idx := from + int64(i)
			e, err := ledger.UnmarshalEntry(raw)
			if err != nil {
				return fmt.Errorf("log entry %d: %w", idx, err)
			}
			id, ok := vehicleOf(e.Tx)
			if idx == p.vehicle.RegisteredAt || (ok && id == p.req.Vehicle) {
				p.entries = append(p.entries, loggedEntry{idx, raw, e})
				if e.Tx.Type == ledger.TypePairDevice {
					devices[e.Tx.Device] = true
				}
			}
		}
	}
	for a := range devices {
		var d ledger.Device
		var ok bool
		p.src.State(func(st *ledger.State) { d, ok = st.Device(a) })
		if !ok {
			return fmt.Errorf("device %s paired to vehicle %d is not registered", a.Hex(), p.req.Vehicle)
		}
		raws, err := p.src.Entries(ctx, d.RegisteredAt, 1)
		if err != nil || len(raws) != 1 {
			return fmt.Errorf("couldn't read log entry %d: %v", d.RegisteredAt, err)
		}
		e, err := ledger.UnmarshalEntry(raws[0])
		if err != nil {
			return fmt.Errorf("log entry %d: %w", d.RegisteredAt, err)
		}
		p.entries = append(p.entries, loggedEntry{d.RegisteredAt, raws[0], e})
	}
	slices.SortFunc(p.entries, func(a, b loggedEntry) int { return cmpInt(a.index, b.index) })
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ownership derives the caller's periods from the entries.
func (p *Plan) ownership() {
	all := periodsOf(p.entries)
	for _, per := range all {
		if strings.EqualFold(per.Owner, p.req.Caller.Hex()) {
			p.periods = append(p.periods, per)
		}
	}
}

// periodsOf walks a vehicle's entries (by index) and returns every ownership period.
func periodsOf(entries []loggedEntry) []Period {
	var out []Period
	begin := func(owner common.Address, le loggedEntry) {
		if n := len(out); n > 0 {
			out[n-1].To, out[n-1].ToIndex = le.e.AcceptTime, le.index
			out[n-1].ToTime, out[n-1].Current = stamp(le.e.AcceptTime), false
		}
		out = append(out, Period{Owner: owner.Hex(), From: le.e.AcceptTime, FromIndex: le.index, ToIndex: -1,
			FromTime: stamp(le.e.AcceptTime), Current: true})
	}
	for _, le := range entries {
		switch le.e.Tx.Type {
		case ledger.TypeRegisterVehicle:
			if len(out) == 0 {
				begin(le.e.Tx.Owner, le)
			}
		case ledger.TypeTransferVehicle:
			begin(le.e.Tx.To, le)
		}
	}
	return out
}

// keepEntries drops the grant entries outside the windows: the structural entries (registration,
// transfers, pairings, burn, device registrations) stay, since records and periods are checked against
// them.
func (p *Plan) keepEntries() {
	p.entries = slices.DeleteFunc(p.entries, func(le loggedEntry) bool {
		switch le.e.Tx.Type {
		case ledger.TypeGrant, ledger.TypeRevoke, ledger.TypeRenounce:
			return !p.inWindows(le.e.AcceptTime)
		case ledger.TypeRegisterVehicle, ledger.TypeRegisterDevice, ledger.TypePairDevice, ledger.TypeUnpairDevice,
			ledger.TypeTransferVehicle, ledger.TypeBurnVehicle:
			return false
		}
		// Other entries naming the vehicle (types added later) go where grants go: inside the periods.
		return !p.inWindows(le.e.AcceptTime)
	})
}

func (p *Plan) inWindows(t int64) bool {
	return slices.ContainsFunc(p.windows, func(w window) bool { return w.has(t) })
}

// ETag returns the strong entity tag of the archive: a hash of everything its bytes are a function of.
func (p *Plan) ETag() string {
	h := sha256.New()
	fmt.Fprintf(h, "glovebox-export/%d\n%d\n%s\n%d\n%d\n%d\n", FormatVersion, p.req.Vehicle, p.req.Caller.Hex(), p.at, p.lo, p.hi)
	h.Write(p.checkpoint)
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// Filename is a name to save the archive under.
func (p *Plan) Filename() string {
	return fmt.Sprintf("glovebox-vehicle-%d-%s.zip", p.req.Vehicle, time.UnixMilli(p.at).UTC().Format("20060102T150405Z"))
}

// stamp formats unix ms as the archive's times.
func stamp(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

// Compression is the deflate level of the members: fast, since an export is as large as a car's history.
const Compression = 1

// Write writes the archive to w. It streams: it holds one page of records at a time, whatever the size.
func (p *Plan) Write(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	zw := zip.NewWriter(bw)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) { return flate.NewWriter(out, Compression) })
	a := &archive{p: p, zw: zw, ctx: ctx, counts: map[string]int64{}}
	steps := []struct {
		name string
		f    func(io.Writer) (int64, error)
	}{
		{"README.txt", a.readme},
		{"export.json", a.manifest},
		{"checkpoint.txt", a.writeCheckpoint},
		{"ledger.ndjson", a.ledger},
		{"catalogue.csv", a.catalogue},
		{"records.ndjson", a.records},
		{"signals.csv", a.signalsCSV},
		{"signals.ndjson", nil}, // written during signals.csv's pass
		{"events.ndjson", a.events},
		{"trips.ndjson", a.trips},
		{"grants.ndjson", a.grants},
		{"access-log.ndjson", a.accessLog},
		{"summary.json", a.summary},
	}
	defer a.closeSide()
	for _, s := range steps {
		if s.f == nil {
			// Written during signals.csv's pass, compressed aside: copied in as it is.
			if err := a.copySide(s.name); err != nil {
				return err
			}
			continue
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: s.name, Method: zip.Deflate, Modified: time.UnixMilli(p.at).UTC()})
		if err != nil {
			return fmt.Errorf("couldn't start %s: %w", s.name, err)
		}
		aw := newAsyncWriter(fw)
		mw := bufio.NewWriterSize(aw, 32<<10)
		n, err := s.f(mw)
		if err == nil {
			err = mw.Flush()
		}
		if cerr := aw.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("couldn't write %s: %w", s.name, err)
		}
		a.counts[s.name] = n
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("couldn't finish the archive: %w", err)
	}
	return bw.Flush()
}

// archive is one Write in progress.
type archive struct {
	p      *Plan
	zw     *zip.Writer
	ctx    context.Context
	counts map[string]int64 // lines (or rows) per member written so far
	side   *sideMember      // signals.ndjson, written during signals.csv's pass
}

// Manifest is export.json.
type Manifest struct {
	Format   int         `json:"format"`
	Vehicle  uint64      `json:"vehicleId"`
	Make     string      `json:"make"`
	Model    string      `json:"model"`
	Year     uint16      `json:"year"`
	Owner    string      `json:"owner"`
	Periods  []Period    `json:"periods"`
	From     string      `json:"from,omitempty"` // the range asked, RFC 3339; absent when open
	To       string      `json:"to"`             // the range's end: the request's to, or the snapshot time
	Windows  [][2]string `json:"windows"`        // the periods intersected with the range: what the archive covers
	Snapshot string      `json:"snapshot"`       // the token that rebuilds this archive (?snapshot=)
	At       string      `json:"snapshotTime"`   // records received after this are not in the archive
	Origin   string      `json:"logOrigin"`
	LogSize  int64       `json:"logSize"`
}

func (a *archive) readme(w io.Writer) (int64, error) {
	_, err := io.WriteString(w, readmeText)
	return 0, err
}

func (a *archive) manifest(w io.Writer) (int64, error) {
	p := a.p
	m := Manifest{Format: FormatVersion, Vehicle: p.req.Vehicle, Owner: p.req.Caller.Hex(), Periods: p.periods, To: stamp(p.hi),
		Windows: [][2]string{}, Snapshot: p.Snapshot(), At: stamp(p.at), Origin: p.src.Log.Origin(), LogSize: p.size}
	for _, le := range p.entries {
		if le.e.Tx.Type == ledger.TypeRegisterVehicle {
			m.Make, m.Model, m.Year = le.e.Tx.Make, le.e.Tx.Model, le.e.Tx.Year
		}
	}
	if p.lo != math.MinInt64 {
		m.From = stamp(p.lo)
	}
	for _, wd := range p.windows {
		m.Windows = append(m.Windows, [2]string{stamp(wd.lo), stamp(wd.hi)})
	}
	return 0, writeJSON(w, m, true)
}

func writeJSON(w io.Writer, v any, indent bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

func (a *archive) writeCheckpoint(w io.Writer) (int64, error) {
	_, err := w.Write(a.p.checkpoint)
	return 0, err
}

// LedgerLine is one line of ledger.ndjson.
type LedgerLine struct {
	Index      int64           `json:"index"`
	Type       string          `json:"type"`
	AcceptTime string          `json:"acceptTime"`
	Message    json.RawMessage `json:"message"`
	Entry      []byte          `json:"entry"` // the entry's bytes (ledger entry encoding), base64
	Proof      [][]byte        `json:"proof"` // the inclusion proof in the checkpoint's tree, base64 hashes
}

func (a *archive) ledger(w io.Writer) (int64, error) {
	var n int64
	for _, le := range a.p.entries {
		proof, err := a.p.src.Log.InclusionProof(le.index, a.p.size)
		if err != nil {
			return n, fmt.Errorf("couldn't prove entry %d in tree %d: %w", le.index, a.p.size, err)
		}
		line := LedgerLine{Index: le.index, Type: le.e.Tx.Type.String(), AcceptTime: stamp(le.e.AcceptTime),
			Message: le.e.Tx.MessageJSON(), Entry: le.raw, Proof: make([][]byte, len(proof))}
		for i := range proof {
			line.Proof[i] = proof[i][:]
		}
		if err := writeJSON(w, line, false); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (a *archive) catalogue(w io.Writer) (int64, error) {
	cw := newCSV(w)
	cw.row("name", "vssPath", "vssType", "type", "unit", "permission")
	for _, s := range a.p.src.Catalog.Signals {
		cw.row(s.Name, s.VSSPath, s.VSSType, s.Type, s.Unit, s.Permission)
	}
	return int64(len(a.p.src.Catalog.Signals)), cw.err
}

// RecordLine is one line of records.ndjson.
type RecordLine struct {
	ID        string `json:"id"`
	Source    string `json:"source"`
	Time      string `json:"time"`     // measured (the CloudEvents time)
	Received  string `json:"received"` // when the node accepted it
	Pairing   int64  `json:"pairing"`  // log index of the PairDevice entry that admitted it
	Event     string `json:"event"`    // the exact bytes the device signed
	Signature string `json:"signature"`
}

// eachRecord calls f with every record the archive holds, in (time, seq) order, a page at a time.
func (a *archive) eachRecord(f func(r *telemetry.StoredRecord) error) error {
	const page = 200 // records of a few KB each: a page is about a megabyte
	for _, wd := range a.p.windows {
		q := telemetry.RecordsQuery{Vehicle: a.p.req.Vehicle, Lo: wd.lo, Hi: wd.hi, AfterTime: wd.lo, Limit: page}
		for {
			recs, err := a.p.src.Telemetry.Records(a.ctx, q)
			if err != nil {
				return fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
			}
			for i := range recs {
				r := &recs[i]
				if r.Received > a.p.at || r.Pairing >= a.p.size {
					continue // after the snapshot
				}
				if err := f(r); err != nil {
					return err
				}
			}
			if len(recs) < page {
				break
			}
			q.AfterTime, q.AfterSeq = recs[len(recs)-1].Time, recs[len(recs)-1].Seq
		}
	}
	return nil
}

func (a *archive) records(w io.Writer) (int64, error) {
	var n int64
	err := a.inOrder(func(c *chunk) {
		for _, r := range c.recs {
			c.a = AppendRecordLine(c.a, r)
		}
		c.n = int64(len(c.recs))
	}, func(c *chunk) error {
		n += c.n
		_, err := w.Write(c.a)
		return err
	})
	return n, err
}

// AppendRecordLine appends the records.ndjson line of r.
func AppendRecordLine(b []byte, r *telemetry.StoredRecord) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"source":"`...)
	b = append(b, r.Source.Hex()...)
	b = append(b, `","time":"`...)
	b = append(b, stamp(r.Time)...)
	b = append(b, `","received":"`...)
	b = append(b, stamp(r.Received)...)
	b = append(b, `","pairing":`...)
	b = strconv.AppendInt(b, r.Pairing, 10)
	b = append(b, `,"event":`...)
	b = appendJSONString(b, string(r.Event))
	b = append(b, `,"signature":"0x`...)
	b = hex.AppendEncode(b, r.Signature)
	return append(b, "\"}\n"...)
}

// values parses a stored record's signal values (nil for an events record).
func values(cat *telemetry.Catalog, r *telemetry.StoredRecord) ([]telemetry.Value, error) {
	rec, err := cat.ParseStored(r.Event)
	if err != nil {
		return nil, fmt.Errorf("stored record %s of %s does not parse: %w", r.ID, r.Source.Hex(), err)
	}
	return rec.Values, nil
}

// signalsCSV writes signals.csv and, in the same pass (each record parsed once), signals.ndjson to a
// compressed temporary file that Write copies in as the next member (a.side).
func (a *archive) signalsCSV(w io.Writer) (int64, error) {
	var n int64
	if _, err := io.WriteString(w, CSVHeader); err != nil {
		return 0, err
	}
	side, err := newSideMember()
	if err != nil {
		return 0, err
	}
	a.side = side
	nw := bufio.NewWriterSize(side, 32<<10)
	err = a.inOrder(func(c *chunk) {
		for _, r := range c.recs {
			vs, err := values(a.p.src.Catalog, r)
			if err != nil {
				c.err = err
				return
			}
			for i := range vs {
				if a.p.inWindows(vs[i].Time) {
					c.a = AppendCSVRow(c.a, &vs[i])
					c.b = AppendValueLine(c.b, &vs[i])
					c.n++
				}
			}
		}
	}, func(c *chunk) error {
		n += c.n
		if _, err := w.Write(c.a); err != nil {
			return err
		}
		_, err := nw.Write(c.b)
		return err
	})
	if err == nil {
		err = nw.Flush()
	}
	if cerr := side.finish(); err == nil {
		err = cerr
	}
	a.counts["signals.ndjson"] = n
	return n, err
}

// copySide adds the side member, compressed already, to the archive as name.
func (a *archive) copySide(name string) error {
	s := a.side
	fw, err := a.zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.UnixMilli(a.p.at).UTC(),
		CRC32: s.crc.Sum32(), CompressedSize64: uint64(s.compressed), UncompressedSize64: uint64(s.size)})
	if err != nil {
		return fmt.Errorf("couldn't start %s: %w", name, err)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("couldn't read %s back: %w", name, err)
	}
	if _, err := io.Copy(fw, s.file); err != nil {
		return fmt.Errorf("couldn't copy %s: %w", name, err)
	}
	return nil
}

func (a *archive) closeSide() {
	if a.side != nil {
		a.side.file.Close()
		os.Remove(a.side.file.Name())
	}
}

// EventLine is one line of events.ndjson.
type EventLine struct {
	Time       string          `json:"time"`
	Name       string          `json:"name"`
	DurationNs int64           `json:"durationNs"`
	Source     string          `json:"source"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

func (a *archive) events(w io.Writer) (int64, error) {
	var n int64
	const page = 5000
	for _, wd := range a.p.windows {
		lo := wd.lo
		for lo < wd.hi {
			evs, err := a.p.src.Telemetry.Events(a.ctx, a.p.req.Vehicle, lo, wd.hi, page)
			if err != nil {
				return n, fmt.Errorf("couldn't read the events of vehicle %d: %w", a.p.req.Vehicle, err)
			}
			next := wd.hi
			if len(evs) > page {
				// More than a page: keep the events before the last one's time and go on from it, so
				// that the events of one millisecond are never split between pages.
				last := evs[len(evs)-1].Time
				cut := slices.IndexFunc(evs, func(e telemetry.Event) bool { return e.Time == last })
				if cut == 0 {
					return n, fmt.Errorf("vehicle %d has more than %d events at %s", a.p.req.Vehicle, page, stamp(last))
				}
				evs, next = evs[:cut], last
			}
			for _, e := range evs {
				line := EventLine{Time: stamp(e.Time), Name: e.Name, DurationNs: e.DurationNs, Source: e.Source}
				if e.Metadata != "" {
					line.Metadata = json.RawMessage(e.Metadata)
				}
				if err := writeJSON(w, line, false); err != nil {
					return n, err
				}
				n++
			}
			lo = next
		}
	}
	return n, nil
}

// TripLine is one line of trips.ndjson.
type TripLine struct {
	ID              string `json:"id"`
	Start           string `json:"start"`
	End             string `json:"end"`
	DurationSeconds int    `json:"durationSeconds"`
	Ongoing         bool   `json:"ongoing"`
	StartedBefore   bool   `json:"startedBefore"` // it began before the window (the window cut it)
}

// tripSignal is the signal ignition detection reads.
const tripSignal = "isIgnitionOn"

func (a *archive) trips(w io.Writer) (int64, error) {
	var n int64
	if _, ok := a.p.src.Catalog.Lookup(tripSignal); !ok {
		return 0, nil
	}
	for _, wd := range a.p.windows {
		pts, err := a.ignitionChanges(wd)
		if err != nil {
			return n, err
		}
		segs := segment.Detect(segment.Ignition, segment.Input{Ignition: pts}, wd.lo, wd.hi, a.p.at, segment.DefaultConfig)
		for _, s := range segs {
			line := TripLine{ID: segment.ID(a.p.req.Vehicle, segment.Ignition, s.Start), Start: stamp(s.Start), End: stamp(s.End),
				DurationSeconds: s.Duration(), Ongoing: s.Ongoing, StartedBefore: s.StartedBefore}
			if err := writeJSON(w, line, false); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// ignitionChanges returns the ignition values of the window at which the value changes (the first one
// included), in time order: all that ignition detection (segment.Detect) reads. They are the first values
// of the signal's runs of equal values, which a store with roll-ups finds without reading every value.
func (a *archive) ignitionChanges(wd window) ([]segment.Point, error) {
	runs, err := a.p.src.Telemetry.Runs(a.ctx, telemetry.RunsQuery{Vehicle: a.p.req.Vehicle, Signal: tripSignal, Lo: wd.lo, Hi: wd.hi})
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s of vehicle %d: %w", tripSignal, a.p.req.Vehicle, err)
	}
	out := make([]segment.Point, len(runs))
	for i, r := range runs {
		out[i] = segment.Point{Time: r.Start, Value: r.First}
	}
	return out, nil
}

// GrantLine is one line of grants.ndjson: a Grant, Revoke or Renounce of the vehicle.
type GrantLine struct {
	Index       int64    `json:"index"`
	Time        string   `json:"time"`
	Type        string   `json:"type"`
	App         string   `json:"app"`
	Permissions []string `json:"permissions,omitempty"`
	ExpiresAt   string   `json:"expiresAt,omitempty"`
	Purpose     string   `json:"purpose,omitempty"`
	TermsURI    string   `json:"termsUri,omitempty"`
}

func (a *archive) grants(w io.Writer) (int64, error) {
	var n int64
	for _, le := range a.p.entries {
		tx := le.e.Tx
		switch tx.Type {
		case ledger.TypeGrant, ledger.TypeRevoke, ledger.TypeRenounce:
		default:
			continue
		}
		line := GrantLine{Index: le.index, Time: stamp(le.e.AcceptTime), Type: tx.Type.String(), App: tx.App.Hex()}
		if tx.Type == ledger.TypeGrant {
			line.Permissions, line.Purpose, line.TermsURI = tx.Permissions, tx.Purpose, tx.TermsURI
			if tx.ExpiresAt.IsUint64() && tx.ExpiresAt.Uint64() < 253402300800 {
				line.ExpiresAt = time.Unix(int64(tx.ExpiresAt.Uint64()), 0).UTC().Format(time.RFC3339)
			}
		}
		if err := writeJSON(w, line, false); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (a *archive) accessLog(w io.Writer) (int64, error) {
	var n int64
	if a.p.src.AccessLog == nil {
		return 0, nil
	}
	const page = 500
	before := int64(0)
	for {
		es, err := a.p.src.AccessLog.List(a.ctx, a.p.req.Vehicle, before, page)
		if err != nil {
			return n, fmt.Errorf("couldn't read the access log of vehicle %d: %w", a.p.req.Vehicle, err)
		}
		for _, e := range es {
			if t := e.Time.UnixMilli(); t <= a.p.at && a.p.inWindows(t) {
				if err := writeJSON(w, e, false); err != nil {
					return n, err
				}
				n++
			}
		}
		if len(es) < page {
			return n, nil
		}
		before = es[len(es)-1].Seq
	}
}

// Summary is summary.json: how many lines (rows, for the CSV files without the header) each member holds.
type Summary struct {
	Files map[string]int64 `json:"files"`
}

func (a *archive) summary(w io.Writer) (int64, error) {
	return 0, writeJSON(w, Summary{Files: a.counts}, true)
}
