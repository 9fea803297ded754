package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/jackc/pgx/v5"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/series"
)

var _ telemetry.Reader = (*Telemetry)(nil)

// valueColumn is the column of the signals and latest tables holding values of kind k.
func valueColumn(k telemetry.Kind) string {
	switch k {
	case telemetry.KindString, telemetry.KindStrings:
		return "str"
	case telemetry.KindLocation:
		return "loc"
	}
	return "num"
}

// Aggregate implements telemetry.History (and so telemetry.Reader) from the chunks and rows of the
// signal (read). FIRST, LAST, MIN, MAX, AVG and COUNT take a chunk that lies wholly inside the range and
// inside one bucket from its summary without decoding it (AVG from the exact sums, chunk.Sum), and a
// chunk of numbers that does not from its five-minute slot summaries when each of its slots in the range
// lies inside the range and one bucket; the other chunks at the range's and buckets' ends, and every
// chunk for the other aggregations, a value filter (Keep) or NoRollup, are decoded and folded with
// telemetry.FoldHistory, the reference every answer is byte-identical to.
func (t *Telemetry) Aggregate(ctx context.Context, a telemetry.Aggregation, put func(b int64, agg string, v any)) error {
	// FoldHistory over no values checks the aggregations and the range.
	if err := telemetry.FoldHistory(a, func(func(int64, any) error) error { return nil }, put); err != nil || a.Step <= 0 || a.Lo >= a.Hi {
		return err
	}
	id, ok, err := t.nameID(ctx, a.Signal)
	if err != nil || !ok {
		return err
	}
	numeric := a.Kind == telemetry.KindNumber || a.Kind == telemetry.KindBool
	q := readQuery{vehicle: a.Vehicle, name: id, lo: a.Lo, hi: a.Hi, class: classOf(a.Kind)}
	summaries := !a.NoRollup && a.Keep == nil
	for _, agg := range a.Aggs {
		switch agg {
		case telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount:
		default:
			summaries = false
		}
	}
	if summaries {
		q.summary = func(c *chunkSum) bool { return (c.start-a.From)/a.Step == (c.end-a.From)/a.Step }
		if numeric {
			q.slot = func(s *series.Slot) bool { return (s.Start-a.From)/a.Step == (s.End-a.From)/a.Step }
		}
	}
	pieces, err := t.read(ctx, q)
	if err != nil {
		return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
	}
	ps := pieces[id]
	if !summaries {
		return telemetry.FoldHistory(a, func(yield func(t int64, v any) error) error {
			for _, p := range ps {
				for _, x := range p.pts {
					if err := yield(x.T, x.V); err != nil {
						return err
					}
				}
			}
			return nil
		}, put)
	}
	var cur int64 = -1
	var acc bucket
	at := func(b int64) {
		if b != cur {
			acc.put(cur, a.Aggs, put)
			cur, acc = b, bucket{}
		}
	}
	for _, p := range ps {
		if p.sum != nil {
			at((p.sum.start - a.From) / a.Step)
			if err := acc.addChunk(a.Vehicle, p.sum, numeric); err != nil {
				return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
			}
			continue
		}
		if p.slot != nil {
			at((p.slot.Start - a.From) / a.Step)
			acc.addSlot(p.slot)
			continue
		}
		for _, x := range p.pts {
			at((x.T - a.From) / a.Step)
			acc.addValue(x.V, numeric)
		}
	}
	acc.put(cur, a.Aggs, put)
	return nil
}

// nameID returns the id of a signal name, and false if no value of it was ever stored.
func (t *Telemetry) nameID(ctx context.Context, name string) (int32, bool, error) {
	t.mu.Lock()
	id, ok := t.names[name]
	t.mu.Unlock()
	if ok {
		return id, true, nil
	}
	err := t.pool.QueryRow(ctx, `SELECT id FROM names WHERE name = $1`, name).Scan(&id)
	if err == pgx.ErrNoRows {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("couldn't look up signal %s: %w", name, err)
	}
	t.mu.Lock()
	t.names[name] = id
	t.mu.Unlock()
	return id, true, nil
}

// namesOf returns the names of signal ids.
func (t *Telemetry) namesOf(ctx context.Context, ids []int32) (map[int32]string, error) {
	rows, err := t.pool.Query(ctx, `SELECT id, name FROM names WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("couldn't read signal names: %w", err)
	}
	defer rows.Close()
	out := map[int32]string{}
	for rows.Next() {
		var id int32
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("couldn't read signal names: %w", err)
		}
		out[id] = name
	}
	return out, rows.Err()
}

// value is one row's value columns; of picks the one a kind is kept in.
type value struct {
	num *float64
	str *string
	loc []byte
}

func (v value) of(k telemetry.Kind) any {
	switch valueColumn(k) {
	case "str":
		if v.str != nil {
			return *v.str
		}
	case "loc":
		if v.loc != nil {
			return v.loc
		}
	default:
		if v.num != nil {
			return *v.num
		}
	}
	return nil
}

// any is the one value column that is set (nil if none).
func (v value) any() any {
	switch {
	case v.num != nil:
		return *v.num
	case v.str != nil:
		return *v.str
	case v.loc != nil:
		return v.loc
	}
	return nil
}

// Latest implements telemetry.Reader from the latest table.
func (t *Telemetry) Latest(ctx context.Context, vehicle uint64, since int64) ([]telemetry.LatestRow, error) {
	rows, err := t.pool.Query(ctx, `SELECT n.name, l.time, l.num, l.str, l.loc FROM latest l JOIN names n ON n.id = l.name
WHERE l.vehicle = $1 AND l.time >= $2`, int64(vehicle), since)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	var out []telemetry.LatestRow
	for rows.Next() {
		var r telemetry.LatestRow
		var v value
		if err := rows.Scan(&r.Name, &r.Time, &v.num, &v.str, &v.loc); err != nil {
			return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
		}
		r.Val = v.any()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d: %w", vehicle, err)
	}
	return out, nil
}

// LatestFrom implements telemetry.Reader from the latest_source table.
func (t *Telemetry) LatestFrom(ctx context.Context, vehicle uint64, source common.Address, since int64) ([]telemetry.LatestRow, error) {
	rows, err := t.pool.Query(ctx, `SELECT n.name, l.time, l.num, l.str, l.loc FROM latest_source l JOIN names n ON n.id = l.name
WHERE l.vehicle = $1 AND l.source = $2 AND l.time >= $3`, int64(vehicle), source.Bytes(), since)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d from %s: %w", vehicle, source, err)
	}
	defer rows.Close()
	var out []telemetry.LatestRow
	for rows.Next() {
		var r telemetry.LatestRow
		var v value
		if err := rows.Scan(&r.Name, &r.Time, &v.num, &v.str, &v.loc); err != nil {
			return nil, fmt.Errorf("couldn't read the latest values of vehicle %d from %s: %w", vehicle, source, err)
		}
		r.Val = v.any()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read the latest values of vehicle %d from %s: %w", vehicle, source, err)
	}
	return out, nil
}

// Summary implements telemetry.Reader from the chunks (their summaries, decoding only the one that
// straddles since) and rows of every signal.
func (t *Telemetry) Summary(ctx context.Context, vehicle uint64, since int64) ([]telemetry.SignalSummary, error) {
	pieces, err := t.read(ctx, readQuery{vehicle: vehicle, lo: since, hi: math.MaxInt64, class: -1,
		summary: func(*chunkSum) bool { return true }})
	if err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
	}
	ids := slices.Sorted(maps.Keys(pieces))
	names, err := t.namesOf(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
	}
	var out []telemetry.SignalSummary
	for _, id := range ids {
		s := telemetry.SignalSummary{Name: names[id]}
		for _, p := range pieces[id] {
			first, last, n := int64(0), int64(0), 0
			if p.sum != nil {
				first, last, n = p.sum.start, p.sum.end, p.sum.cnt
			} else {
				first, last, n = p.pts[0].T, p.pts[len(p.pts)-1].T, len(p.pts)
			}
			if s.Count == 0 {
				s.First = first
			}
			s.Last = last
			s.Count += int64(n)
		}
		out = append(out, s)
	}
	return out, nil
}

// Records implements telemetry.Reader from the records table (events are stored as received).
func (t *Telemetry) Records(ctx context.Context, q telemetry.RecordsQuery) ([]telemetry.StoredRecord, error) {
	if q.Limit <= 0 || q.Lo >= q.Hi {
		return nil, nil
	}
	rows, err := t.pool.Query(ctx, `SELECT seq, source, id, time, received, pairing, event, signature FROM records
WHERE vehicle = $1 AND time >= $2 AND time < $3 AND (time, seq) > ($4, $5) ORDER BY time, seq LIMIT $6`,
		int64(q.Vehicle), q.Lo, q.Hi, q.AfterTime, q.AfterSeq, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (telemetry.StoredRecord, error) {
		r := telemetry.StoredRecord{Vehicle: q.Vehicle}
		var source []byte
		err := row.Scan(&r.Seq, &source, &r.ID, &r.Time, &r.Received, &r.Pairing, &r.Event, &r.Signature)
		r.Source = common.BytesToAddress(source)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the records of vehicle %d: %w", q.Vehicle, err)
	}
	return out, nil
}

// Runs implements telemetry.Reader: the signal's numeric values in the range, decoded from its chunks and
// merged with its rows, folded with telemetry.FoldRuns.
func (t *Telemetry) Runs(ctx context.Context, q telemetry.RunsQuery) ([]telemetry.Run, error) {
	if q.Lo >= q.Hi {
		return nil, nil
	}
	id, ok, err := t.nameID(ctx, q.Signal)
	if err != nil || !ok {
		return nil, err
	}
	f := telemetry.RunFolder{Query: q}
	pieces, err := t.read(ctx, readQuery{vehicle: q.Vehicle, name: id, lo: q.Lo, hi: q.Hi, class: classNum,
		summary: func(c *chunkSum) bool { return c.lo != nil && c.hi != nil && f.Whole(c.start, c.end, *c.lo, *c.hi) },
		slot:    func(s *series.Slot) bool { return f.Whole(s.Start, s.End, s.Min, s.Max) }})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the runs of %s of vehicle %d: %w", q.Signal, q.Vehicle, err)
	}
	for _, p := range pieces[id] {
		switch {
		case p.sum != nil:
			fv, err1 := bytesValue(classNum, p.sum.fv)
			lv, err2 := bytesValue(classNum, p.sum.lv)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("the summary of the chunk of %s of vehicle %d from %d: %w", q.Signal, q.Vehicle, p.sum.start, err)
			}
			f.AddPiece(p.sum.start, p.sum.end, fv.(float64), lv.(float64), int64(p.sum.cnt))
		case p.slot != nil:
			f.AddPiece(p.slot.Start, p.slot.End, p.slot.First, p.slot.Last, int64(p.slot.Count))
		default:
			for _, x := range p.pts {
				f.Add(x.T, x.V.(float64))
			}
		}
	}
	return f.Runs(), nil
}

// Active implements telemetry.Reader, counting the numeric values per minute: a chunk within one minute
// counts from its summary, the others are decoded.
func (t *Telemetry) Active(ctx context.Context, q telemetry.ActiveQuery) ([]telemetry.Span, error) {
	const m = telemetry.MinuteMs
	lo, hi := q.Lo/m*m, (q.Hi+m-1)/m*m
	if lo >= hi {
		return nil, nil
	}
	pieces, err := t.read(ctx, readQuery{vehicle: q.Vehicle, lo: lo, hi: hi, class: classNum,
		summary: func(c *chunkSum) bool { return c.start/m == c.end/m }})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the activity of vehicle %d: %w", q.Vehicle, err)
	}
	type minute struct {
		count   int
		signals int
	}
	minutes := map[int64]*minute{}
	for _, ps := range pieces {
		seen := map[int64]bool{} // the minutes this signal counted in
		count := func(unit int64, n int) {
			mm := minutes[unit]
			if mm == nil {
				mm = &minute{}
				minutes[unit] = mm
			}
			mm.count += n
			if !seen[unit] {
				seen[unit] = true
				mm.signals++
			}
		}
		for _, p := range ps {
			if p.sum != nil {
				count(p.sum.start/m, p.sum.cnt)
				continue
			}
			for _, x := range p.pts {
				count(x.T/m, 1)
			}
		}
	}
	var out []telemetry.Span
	for unit, mm := range minutes {
		if int64(mm.count) >= int64(q.MinCount) && int64(mm.signals) >= int64(q.MinSignals) {
			out = append(out, telemetry.Span{Start: unit * m, End: unit*m + m})
		}
	}
	return telemetry.MergeSpans(out), nil
}

var _ telemetry.SpanAggregator = (*Telemetry)(nil)

// AggregateSpans implements telemetry.SpanAggregator with one read of the signal over all the spans: a
// chunk that lies wholly inside or wholly outside each span is taken from its summary, else a chunk of
// numbers whose five-minute slots each do from its slot summaries, the others are decoded, and each span folds what it covers as Aggregate would for one bucket of exactly that span.
func (t *Telemetry) AggregateSpans(ctx context.Context, a telemetry.Aggregation, spans []telemetry.Span, put func(i int, agg string, v any)) error {
	a.From, a.Step, a.Lo, a.Hi = 0, 1, 0, 1
	if err := telemetry.FoldHistory(a, func(func(int64, any) error) error { return nil }, func(int64, string, any) {}); err != nil {
		return err
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range spans {
		if s.Start < s.End {
			lo, hi = min(lo, s.Start), max(hi, s.End)
		}
	}
	if lo >= hi {
		return nil
	}
	id, ok, err := t.nameID(ctx, a.Signal)
	if err != nil || !ok {
		return err
	}
	// uncut tells whether no span cuts the values from start to end.
	uncut := func(start, end int64) bool {
		for _, s := range spans {
			if start < s.End && end >= s.Start && (start < s.Start || end >= s.End) {
				return false
			}
		}
		return true
	}
	numeric := a.Kind == telemetry.KindNumber || a.Kind == telemetry.KindBool
	q := readQuery{vehicle: a.Vehicle, name: id, lo: lo, hi: hi, class: classOf(a.Kind),
		summary: func(c *chunkSum) bool { return uncut(c.start, c.end) }}
	if numeric {
		q.slot = func(s *series.Slot) bool { return uncut(s.Start, s.End) }
	}
	pieces, err := t.read(ctx, q)
	if err != nil {
		return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
	}
	ps := pieces[id]
	for i, s := range spans {
		if s.Start >= s.End {
			continue
		}
		var acc bucket
		// the first piece that ends at or after the span's start (pieces are disjoint and in time order)
		j, _ := slices.BinarySearchFunc(ps, s.Start, func(p piece, t int64) int {
			if p.last() < t {
				return -1
			}
			return 1
		})
		for ; j < len(ps) && ps[j].first() < s.End; j++ {
			p := ps[j]
			if p.sum != nil {
				if err := acc.addChunk(a.Vehicle, p.sum, numeric); err != nil {
					return fmt.Errorf("couldn't read %s of vehicle %d: %w", a.Signal, a.Vehicle, err)
				}
				continue
			}
			if p.slot != nil {
				acc.addSlot(p.slot)
				continue
			}
			for _, x := range p.pts {
				if x.T >= s.Start && x.T < s.End {
					acc.addValue(x.V, numeric)
				}
			}
		}
		acc.put(0, a.Aggs, func(_ int64, agg string, v any) { put(i, agg, v) })
	}
	return nil
}
