package credential

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// Log is what the issuer reads of the Merkle log: the latest checkpoint, entries and inclusion proofs
// (tlog.Log and postgres.Log).
type Log interface {
	Latest() (size int64, checkpoint []byte)
	Entry(ctx context.Context, index int64) ([]byte, error)
	InclusionProof(index, size int64) (xtlog.RecordProof, error)
}

// Source is where the issuer gathers a credential's inputs from. Access is decided before (package
// access): Gather only reads.
type Source struct {
	State     telemetry.StateReader
	Log       Log
	Telemetry telemetry.Reader // SQLite's or PostgreSQL's store
	Catalog   *telemetry.Catalog
}

// More refusals of issuance.
var (
	ErrNotPaired       = errors.New("no device was paired to the vehicle")
	ErrBeforeOwnership = errors.New("the period starts before the caller's ownership")
)

// Gather collects what req needs about vehicle: since is when the current owner got the vehicle (nothing
// measured before it is used), now the issuer's clock.
func (s *Source) Gather(ctx context.Context, req Request, vehicle uint64, since, now time.Time) (Input, error) {
	if err := req.Validate(now); err != nil {
		return Input{}, err
	}
	var pairings []ledger.Pairing
	s.State(func(st *ledger.State) { pairings = st.PairingsOf(vehicle) })
	lo, hi := ms(since), ms(now)+1
	switch req.Type {
	case TypeOdometer:
		hi = ms(*req.At) + 1
	case TypeMileage, TypeMovement:
		lo, hi = ms(*req.From), ms(*req.To)+1
	}
	if lo < ms(since) {
		return Input{}, fmt.Errorf("%w: from %s is before %s, when the vehicle changed hands", ErrBeforeOwnership,
			utc(lo).Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	}
	if req.Type == TypeOdometer && hi <= ms(since) {
		return Input{}, fmt.Errorf("%w: at %s is before %s, when the vehicle changed hands", ErrBeforeOwnership,
			req.At.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	}
	if !slices.ContainsFunc(pairings, func(p ledger.Pairing) bool { return p.FromTime < hi && (p.ToIndex < 0 || p.ToTime > lo) }) {
		return Input{}, fmt.Errorf("%w between %s and %s", ErrNotPaired, utc(lo).Format(time.RFC3339), utc(hi-1).Format(time.RFC3339))
	}
	g := &gatherer{s: s, ctx: ctx, vehicle: vehicle, since: ms(since), pairings: pairings, recs: map[recKey]telemetry.StoredRecord{},
		parsed: map[recKey]*telemetry.Record{}}
	in := Input{Vehicle: vehicle}
	var err error
	switch req.Type {
	case TypeOdometer:
		_, err = g.lastReading(SignalOdometer, g.since, hi)
	case TypeVIN:
		_, err = g.lastReading(SignalVIN, g.since, hi)
	case TypeMileage:
		err = g.mileage(ms(*req.From), hi)
	case TypeMovement:
		in.Positions, err = g.positions(lo, hi-1)
		return in, err
	}
	if err != nil {
		return Input{}, err
	}
	in.Evidence, err = g.evidence()
	return in, err
}

type recKey struct {
	source common.Address
	id     string
}

type gatherer struct {
	s        *Source
	ctx      context.Context
	vehicle  uint64
	since    int64
	pairings []ledger.Pairing
	recs     map[recKey]telemetry.StoredRecord
	parsed   map[recKey]*telemetry.Record // the records readings read, nil for one that does not parse
}

// found is a reading and the record that carries it.
type found struct {
	reading
	rec telemetry.StoredRecord
}

// readings returns the values of signal (a number or a string) in a stored record (nil if it carries
// none or does not parse). The record is read as a stored one (telemetry.Catalog.ParseStored: it passed
// every check of Parse at ingest) once per issuance: the records kept as evidence are checked in that
// form (Issue), without reading them again.
func (g *gatherer) readings(r telemetry.StoredRecord, signal string) []reading {
	if !bytes.Contains(r.Event, []byte(signal)) {
		return nil
	}
	k := recKey{r.Source, r.ID}
	rec, ok := g.parsed[k]
	if !ok {
		rec, _ = g.s.Catalog.ParseStored(r.Event) // nil if it does not parse
		g.parsed[k] = rec
	}
	if rec == nil {
		return nil
	}
	var out []reading
	for _, v := range rec.Values {
		if v.Signal.Name == signal && (v.Signal.Kind == telemetry.KindNumber || v.Signal.Kind == telemetry.KindString) {
			out = append(out, reading{Time: v.Time, Number: v.Number, String: v.String})
		}
	}
	return out
}

// scan reads every record measured in [lo, hi) and returns the reading of signal with the greatest
// (last) or smallest time in [rlo, rhi).
func (g *gatherer) scan(signal string, lo, hi, rlo, rhi int64, last bool) (found, bool, error) {
	var best found
	ok := false
	q := telemetry.RecordsQuery{Vehicle: g.vehicle, Lo: lo, Hi: hi, AfterTime: lo, Limit: 256}
	for {
		page, err := g.s.Telemetry.Records(g.ctx, q)
		if err != nil {
			return found{}, false, fmt.Errorf("couldn't read the records of vehicle %d: %w", g.vehicle, err)
		}
		for _, r := range page {
			for _, rd := range g.readings(r, signal) {
				if rd.Time < rlo || rd.Time >= rhi {
					continue
				}
				if !ok || (last && rd.Time >= best.Time) || (!last && rd.Time < best.Time) {
					best, ok = found{rd, r}, true
				}
			}
		}
		if len(page) < q.Limit {
			return best, ok, nil
		}
		q.AfterTime, q.AfterSeq = page[len(page)-1].Time, page[len(page)-1].Seq
	}
}

// nearEnd finds a reading of signal measured in [lo, hi), as late as it can cheaply: it reads the
// records of windows growing backwards from hi (1 s, 4 s, 16 s, …) and stops at the first window that
// holds one, taking the latest reading in it. A record's signals are assumed to be measured within a
// minute of the record's time; readings are taken by their own timestamps.
func (g *gatherer) nearEnd(signal string, lo, hi int64) (found, bool, error) {
	for w := int64(1000); ; w *= 4 {
		from := max(lo, hi-w)
		f, ok, err := g.scan(signal, from-time.Minute.Milliseconds(), hi+time.Minute.Milliseconds(), from, hi, true)
		if err != nil || ok || from == lo {
			return f, ok, err
		}
	}
}

// nearStart is nearEnd from the other side: the earliest reading of the first window after lo that
// holds one.
func (g *gatherer) nearStart(signal string, lo, hi int64) (found, bool, error) {
	for w := int64(1000); ; w *= 4 {
		to := min(hi, lo+w)
		f, ok, err := g.scan(signal, lo-time.Minute.Milliseconds(), to+time.Minute.Milliseconds(), lo, to, false)
		if err != nil || ok || to == hi {
			return f, ok, err
		}
	}
}

// buckets aggregates signal over [lo, hi) in buckets of step aligned to UTC (step divides a day).
func (g *gatherer) buckets(signal string, lo, hi, step int64, aggs ...string) (from int64, out map[int64]map[string]any, err error) {
	sig, ok := g.s.Catalog.Lookup(signal)
	if !ok {
		return 0, nil, fmt.Errorf("signal %s is not in the catalogue", signal)
	}
	from = lo - lo%step
	out = map[int64]map[string]any{}
	err = g.s.Telemetry.Aggregate(g.ctx, telemetry.Aggregation{Vehicle: g.vehicle, Signal: signal, Kind: sig.Kind, From: from,
		Step: step, Lo: lo, Hi: hi, Aggs: aggs}, func(b int64, agg string, v any) {
		if out[b] == nil {
			out[b] = map[string]any{}
		}
		out[b][agg] = v
	})
	if err != nil {
		return 0, nil, fmt.Errorf("couldn't aggregate %s of vehicle %d: %w", signal, g.vehicle, err)
	}
	return from, out, nil
}

func lastKey(m map[int64]map[string]any) (int64, bool) {
	best, ok := int64(0), false
	for k := range m {
		if !ok || k > best {
			best, ok = k, true
		}
	}
	return best, ok
}

const (
	day    = int64(24 * time.Hour / time.Millisecond)
	second = int64(time.Second / time.Millisecond)
	hour   = int64(time.Hour / time.Millisecond)
	minute = int64(time.Minute / time.Millisecond)
)

// lastReading finds the last reading of signal measured in [lo, hi) and keeps its record.
func (g *gatherer) lastReading(signal string, lo, hi int64) (found, error) {
	f, ok, err := g.find(signal, lo, hi, true)
	if err != nil {
		return found{}, err
	}
	if !ok {
		return found{}, fmt.Errorf("%w: no %s measured between %s and %s", ErrNoReadings, signal,
			utc(lo).Format(time.RFC3339), utc(hi-1).Format(time.RFC3339))
	}
	g.keep(f.rec)
	return f, nil
}

// find finds the last (or the first) reading of signal measured in [lo, hi): the day, the hour and the
// minute that hold it from the signal's history, then the record among that minute's. It returns false
// when the history has none.
func (g *gatherer) find(signal string, lo, hi int64, last bool) (found, bool, error) {
	if last { // a car that reports every second or minute has one in the minute before hi: no aggregation
		if f, ok, err := g.nearEnd(signal, max(lo, hi-minute), hi); err != nil || ok {
			return f, ok, err
		}
	}
	agg := telemetry.AggFirst
	if last {
		agg = telemetry.AggLast
	}
	for _, step := range []int64{day, hour, minute} {
		from, b, err := g.buckets(signal, lo, hi, step, agg)
		if err != nil {
			return found{}, false, err
		}
		k, ok := lastKey(b)
		if !last {
			k, ok = firstKey(b)
		}
		if !ok {
			return found{}, false, nil
		}
		lo, hi = max(lo, from+k*step), min(hi, from+(k+1)*step)
	}
	near := g.nearStart
	if last {
		near = g.nearEnd
	}
	f, ok, err := near(signal, lo, hi)
	if err != nil {
		return found{}, false, err
	}
	if !ok {
		return found{}, false, fmt.Errorf("%w: the history has %s in the minute from %s, but no stored record carries it", ErrNoReadings,
			signal, utc(lo).Format(time.RFC3339))
	}
	return f, true, nil
}

func firstKey(m map[int64]map[string]any) (int64, bool) {
	best, ok := int64(0), false
	for k := range m {
		if !ok || k < best {
			best, ok = k, true
		}
	}
	return best, ok
}

// chainReading finds a reading of signal measured in [lo, hi) for a mileage's chain, as late as it
// cheaply can: not necessarily the last one (any reading in range keeps the chain within its gap), so it
// first reads only the records measured in the 15 seconds before hi, then those of the rest of the minute
// before hi, newest first, and takes the latest reading of the first that has one in range; failing
// that, the last reading (find). A car that reports every few seconds is answered by one or two records.
func (g *gatherer) chainReading(signal string, lo, hi int64) (found, bool, error) {
	to := hi
	for _, w := range []int64{15 * second, minute} {
		from := max(lo, hi-w)
		if from >= to {
			break
		}
		page, err := g.s.Telemetry.Records(g.ctx, telemetry.RecordsQuery{Vehicle: g.vehicle, Lo: from, Hi: to, AfterTime: from, Limit: 64})
		if err != nil {
			return found{}, false, fmt.Errorf("couldn't read the records of vehicle %d: %w", g.vehicle, err)
		}
		for i := len(page) - 1; i >= 0; i-- {
			var best found
			ok := false
			for _, rd := range g.readings(page[i], signal) {
				if rd.Time >= lo && rd.Time < hi && (!ok || rd.Time > best.Time) {
					best, ok = found{rd, page[i]}, true
				}
			}
			if ok {
				return best, true, nil
			}
		}
		to = from
	}
	return g.find(signal, lo, hi, true)
}

func (g *gatherer) keep(r telemetry.StoredRecord) { g.recs[recKey{r.Source, r.ID}] = r }

// mileage gathers the readings of a mileage over [from, to]: the last at or before from and to, and
// between them the chain that shows the odometer never went backwards: from each reading of the chain,
// the next is the latest at most MaxReadingGap later (in practice one a day), or, after a longer
// silence, the first reading after it (which the verifier accepts only if the odometer did not move). It
// refuses (ErrRollback) when the hourly first, last, lowest and highest readings show a rollback
// anywhere between the two bounds, so that a rollback inside one step of the chain, which the verifier
// cannot see, is not issued either.
func (g *gatherer) mileage(from, hi int64) error {
	start, err := g.lastReading(SignalOdometer, g.since, from+1)
	if err != nil {
		return fmt.Errorf("%w (the reading at or before from)", err)
	}
	end, err := g.lastReading(SignalOdometer, g.since, hi)
	if err != nil {
		return err
	}
	if end.Time < from {
		return fmt.Errorf("%w: no odometer reading between from (%s) and to (%s)", ErrNoReadings,
			utc(from).Format(time.RFC3339), utc(hi-1).Format(time.RFC3339))
	}
	if end.Time == start.Time {
		return nil
	}
	lo, hi := start.Time, end.Time+1
	hfrom, hours, err := g.buckets(SignalOdometer, lo, hi, hour, telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax)
	if err != nil {
		return err
	}
	keys := make([]int64, 0, len(hours))
	for k := range hours {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	prevLast := math.Inf(-1)
	for _, k := range keys {
		h := hours[k]
		first, _ := h[telemetry.AggFirst].(float64)
		last, _ := h[telemetry.AggLast].(float64)
		lowest, _ := h[telemetry.AggMin].(float64)
		highest, _ := h[telemetry.AggMax].(float64)
		if first < prevLast || lowest < first || highest > last {
			return fmt.Errorf("%w in the hour from %s (first %v km, last %v km, lowest %v km, highest %v km, previous %v km)",
				ErrRollback, utc(hfrom+k*hour).Format(time.RFC3339), first, last, lowest, highest, prevLast)
		}
		prevLast = last
	}
	gap := MaxReadingGap.Milliseconds()
	for prev := start.Time; end.Time-prev > gap; {
		f, ok, err := g.chainReading(SignalOdometer, prev+1, prev+gap+1)
		if err != nil {
			return err
		}
		if !ok { // silent for longer than the gap: the first reading after it
			if f, ok, err = g.find(SignalOdometer, prev+gap+1, end.Time, false); err != nil {
				return err
			}
			if !ok {
				break // the end reading follows
			}
		}
		g.keep(f.rec)
		prev = f.Time
	}
	return nil
}

// positions samples the vehicle's positions in [lo, hi): the first and the last of every hour.
func (g *gatherer) positions(lo, hi int64) ([]Position, error) {
	from, b, err := g.buckets(SignalLocation, lo, hi, hour, telemetry.AggFirst, telemetry.AggLast)
	if err != nil {
		return nil, err
	}
	var out []Position
	for k, aggs := range b {
		at := from + k*hour
		for i, agg := range []string{telemetry.AggFirst, telemetry.AggLast} {
			enc, ok := aggs[agg].([]byte)
			if !ok {
				continue
			}
			lat, lon, _, err := telemetry.DecodeLocation(enc)
			if err != nil {
				return nil, err
			}
			// The bucket's first value stands at its start, the last just before its end.
			t := max(at, lo)
			if i == 1 {
				t = min(at+hour, hi) - 1
			}
			out = append(out, Position{Time: utc(t), Lat: lat, Lon: lon})
		}
	}
	return out, nil
}

// evidence builds the evidence of the kept records: their pairings with inclusion proofs against the
// latest checkpoint.
func (g *gatherer) evidence() (*Evidence, error) {
	size, cp := g.s.Log.Latest()
	ev := &Evidence{Checkpoint: string(cp), Pairings: []LoggedPairing{}, Records: []SignedRecord{}}
	recs := make([]telemetry.StoredRecord, 0, len(g.recs))
	for _, r := range g.recs {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b telemetry.StoredRecord) int {
		if a.Time != b.Time {
			return int(max(-1, min(1, a.Time-b.Time)))
		}
		return int(max(-1, min(1, a.Seq-b.Seq)))
	})
	done := map[int64]bool{}
	for _, r := range recs {
		ev.Records = append(ev.Records, SignedRecord{Event: string(r.Event), Signature: fmt.Sprintf("0x%x", r.Signature), Pairing: r.Pairing})
		ev.parsed = append(ev.parsed, g.parsed[recKey{r.Source, r.ID}])
		if done[r.Pairing] {
			continue
		}
		done[r.Pairing] = true
		i := slices.IndexFunc(g.pairings, func(p ledger.Pairing) bool { return p.FromIndex == r.Pairing })
		if i < 0 {
			return nil, fmt.Errorf("record %s names pairing entry %d, which the ledger does not know for vehicle %d", r.ID, r.Pairing, g.vehicle)
		}
		p := g.pairings[i]
		start, err := g.logged(p.FromIndex, size)
		if err != nil {
			return nil, err
		}
		lp := LoggedPairing{Start: start}
		if p.ToIndex >= 0 && p.ToIndex < size {
			end, err := g.logged(p.ToIndex, size)
			if err != nil {
				return nil, err
			}
			lp.End = &end
		}
		ev.Pairings = append(ev.Pairings, lp)
	}
	return ev, nil
}

func (g *gatherer) logged(index, size int64) (LoggedEntry, error) {
	if index >= size {
		return LoggedEntry{}, fmt.Errorf("entry %d is not yet under the latest checkpoint (%d entries)", index, size)
	}
	entry, err := g.s.Log.Entry(g.ctx, index)
	if err != nil {
		return LoggedEntry{}, fmt.Errorf("couldn't read log entry %d: %w", index, err)
	}
	proof, err := g.s.Log.InclusionProof(index, size)
	if err != nil {
		return LoggedEntry{}, fmt.Errorf("couldn't prove log entry %d in tree %d: %w", index, size, err)
	}
	le := LoggedEntry{Index: index, Entry: entry, Proof: make([][]byte, len(proof))}
	for i, h := range proof {
		le.Proof[i] = h[:]
	}
	return le, nil
}
