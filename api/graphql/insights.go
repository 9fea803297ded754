package graphql

import (
	"context"

	"strings"
	"time"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/segment"
)

// The limits of events, segments and dailyActivity (DIMO's, where it has them).
const (
	MaxEvents        = 10_000
	MaxSegmentLimit  = 200
	maxInsightsRange = 31*24*time.Hour + time.Second // 31 days, and a second so that "31 days" never flakes
)

// insightsGrants decides the insights query of the enclosing field (already allowed by @requires) and
// the location permissions its start and end locations depend on.
func (q *queryResolver) insightsGrants(ctx context.Context, tokenID int) (uint64, grants, error) {
	if tokenID < 0 {
		return 0, grants{}, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	vehicle := uint64(tokenID)
	g, err := (*resolver)(q).grantsOf(ctx, vehicle)
	return vehicle, g, err
}

func checkRange(from, to time.Time) error {
	if !from.Before(to) {
		return codedError(CodeBadRequest, "from (%s) must be before to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	if to.Sub(from) > maxInsightsRange {
		return codedError(CodeBadRequest, "from and to are %s apart; at most 31 days are allowed", to.Sub(from))
	}
	return nil
}

func (q *queryResolver) Events(ctx context.Context, tokenID int, from, to time.Time, filter *exec.EventFilter) ([]exec.Event, error) {
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	if filter != nil {
		if err := checkEventNames(filter.Name, "filter.name"); err != nil {
			return nil, err
		}
	}
	vehicle, g, err := q.insightsGrants(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	lo := max(from.UnixMilli(), g.since.UnixMilli())
	evs, err := q.cfg.Telemetry.Events(ctx, vehicle, lo, to.UnixMilli(), MaxEvents)
	if err != nil {
		return nil, err
	}
	if len(evs) > MaxEvents {
		return nil, codedError(CodeBadRequest, "more than %d events between from and to: ask for a shorter range", MaxEvents)
	}
	out := []exec.Event{}
	for _, e := range evs {
		if filter != nil && (!matchString(filter.Name, e.Name) || !matchString(filter.Source, e.Source) || !matchTags(filter.Tags)) {
			continue
		}
		ev := exec.Event{Timestamp: time.UnixMilli(e.Time).UTC(), Name: e.Name, Source: e.Source, DurationNs: int(e.DurationNs)}
		if e.Metadata != "" {
			m := e.Metadata
			ev.Metadata = &m
		}
		out = append(out, ev)
	}
	q.recordEntry(ctx, vehicle, g, []string{ledger.PermInsights}, time.UnixMilli(lo), to, len(out), "ok")
	return out, nil
}

// checkEventNames refuses names that are not event names (DIMO's namespace.name pattern, here the known
// names), naming the argument.
func checkEventNames(f *exec.StringValueFilter, arg string) error {
	if f == nil {
		return nil
	}
	names := append([]string{}, f.In...)
	if f.Eq != nil {
		names = append(names, *f.Eq)
	}
	for _, n := range names {
		if !telemetry.KnownEvent(n) {
			return codedError(CodeBadRequest, "%s: no event %q (the names are %s)", arg, n, strings.Join(telemetry.EventNames, ", "))
		}
	}
	for _, o := range f.Or {
		if err := checkEventNames(&o, arg+".or"); err != nil {
			return err
		}
	}
	return nil
}

// matchString applies a StringValueFilter: every condition set holds, and one of or when it is set.
func matchString(f *exec.StringValueFilter, s string) bool {
	if f == nil {
		return true
	}
	if f.Eq != nil && s != *f.Eq || f.Neq != nil && s == *f.Neq || f.StartsWith != nil && !strings.HasPrefix(s, *f.StartsWith) {
		return false
	}
	if len(f.In) > 0 && !contains(f.In, s) || contains(f.NotIn, s) {
		return false
	}
	if len(f.Or) == 0 {
		return true
	}
	for i := range f.Or {
		if matchString(&f.Or[i], s) {
			return true
		}
	}
	return false
}

// matchTags applies a StringArrayFilter to an event's tags, of which Glovebox's events have none.
func matchTags(f *exec.StringArrayFilter) bool {
	if f == nil {
		return true
	}
	if len(f.ContainsAny) > 0 || len(f.ContainsAll) > 0 {
		return false
	}
	if len(f.Or) == 0 {
		return true
	}
	for i := range f.Or {
		if matchTags(&f.Or[i]) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// segmentConfig resolves SegmentConfig over the defaults and checks its bounds.
func segmentConfig(c *exec.SegmentConfig) (segment.Config, error) {
	cfg := segment.DefaultConfig
	if c != nil {
		cfg.Given = true
		for _, f := range []struct {
			v   *int
			dst *int
		}{{c.MaxGapSeconds, &cfg.MaxGapSeconds}, {c.MinSegmentDurationSeconds, &cfg.MinSegmentDurationSeconds},
			{c.SignalCountThreshold, &cfg.SignalCountThreshold}, {c.MaxIdleRpm, &cfg.MaxIdleRpm}, {c.MinIncreasePercent, &cfg.MinIncreasePercent}} {
			if f.v != nil {
				*f.dst = *f.v
			}
		}
	}
	if err := cfg.Check(); err != nil {
		return cfg, codedError(CodeBadRequest, "%v", err)
	}
	return cfg, nil
}

// The signals the mechanisms read.
const (
	sigIgnition = "isIgnitionOn"
	sigRPM      = "powertrainCombustionEngineSpeed"
	sigFuel     = "powertrainFuelSystemRelativeLevel"
	sigSoC      = "powertrainTractionBatteryStateOfChargeCurrent"
	sigOdometer = "powertrainTransmissionTravelledDistance"
)

// points reads every value of a numeric signal of vehicle in [lo, hi), in time order.
func (q *queryResolver) points(ctx context.Context, vehicle uint64, signal string, lo, hi int64) ([]segment.Point, error) {
	s, ok := q.cfg.Catalog.Lookup(signal)
	if !ok || lo >= hi {
		return nil, nil
	}
	var out []segment.Point
	// Buckets of one millisecond from lo: each value is its own bucket (a signal has one value per
	// vehicle and millisecond), read through the store's History.
	err := q.cfg.Telemetry.Aggregate(ctx, telemetry.Aggregation{Vehicle: vehicle, Signal: signal, Kind: s.Kind, From: lo, Step: 1,
		Lo: lo, Hi: hi, Aggs: []string{telemetry.AggLast}}, func(b int64, _ string, v any) {
		f, _ := telemetry.AsFloat(v)
		out = append(out, segment.Point{Time: lo + b, Value: f})
	})
	sortPoints(out)
	return out, err
}

func sortPoints(ps []segment.Point) {
	for i := 1; i < len(ps); i++ { // nearly sorted already: buckets come in map order from some stores
		for j := i; j > 0 && ps[j].Time < ps[j-1].Time; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// windows counts the values of every numeric signal of vehicle per minute in [lo, hi).
func (q *queryResolver) windows(ctx context.Context, vehicle uint64, lo, hi int64) ([]segment.Window, error) {
	lo, hi = lo/segment.WindowMs*segment.WindowMs, (hi+segment.WindowMs-1)/segment.WindowMs*segment.WindowMs
	type acc struct{ count, distinct int }
	per := map[int64]*acc{}
	for _, s := range q.cfg.Catalog.Signals {
		if s.Kind != telemetry.KindNumber && s.Kind != telemetry.KindBool {
			continue
		}
		err := q.cfg.Telemetry.Aggregate(ctx, telemetry.Aggregation{Vehicle: vehicle, Signal: s.Name, Kind: s.Kind, From: lo,
			Step: segment.WindowMs, Lo: lo, Hi: hi, Aggs: []string{telemetry.AggCount}}, func(b int64, _ string, v any) {
			n, _ := telemetry.AsFloat(v)
			a := per[b]
			if a == nil {
				a = &acc{}
				per[b] = a
			}
			a.count += int(n)
			a.distinct++
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]segment.Window, 0, len(per))
	for b, a := range per {
		out = append(out, segment.Window{Start: lo + b*segment.WindowMs, Count: a.count, Distinct: a.distinct})
	}
	sortWindows(out)
	return out, nil
}

func sortWindows(ws []segment.Window) {
	ps := make([]segment.Point, len(ws))
	idx := map[int64]segment.Window{}
	for i, w := range ws {
		ps[i] = segment.Point{Time: w.Start}
		idx[w.Start] = w
	}
	sortPoints(ps)
	for i, p := range ps {
		ws[i] = idx[p.Time]
	}
}

// detect reads what mechanism m needs of vehicle and finds its segments in [from, to).
func (q *queryResolver) detect(ctx context.Context, vehicle uint64, since time.Time, m segment.Mechanism, cfg segment.Config, from, to time.Time) ([]segment.Segment, error) {
	lo := max(from.Add(-segment.Lookback(m, cfg)).UnixMilli(), since.UnixMilli())
	hi := to.UnixMilli()
	var in segment.Input
	var err error
	read := func(dst *[]segment.Point, signal string) {
		if err == nil {
			*dst, err = q.points(ctx, vehicle, signal, lo, hi)
		}
	}
	switch m {
	case segment.Ignition:
		read(&in.Ignition, sigIgnition)
	case segment.Frequency, segment.ChangePoint:
		in.Windows, err = q.windows(ctx, vehicle, lo, hi)
	case segment.Idling:
		read(&in.RPM, sigRPM)
		read(&in.Speed, telemetry.SignalSpeed)
	case segment.Refuel:
		read(&in.Fuel, sigFuel)
	case segment.Recharge:
		read(&in.SoC, sigSoC)
		read(&in.Odometer, sigOdometer)
	default:
		return nil, codedError(CodeBadRequest, "mechanism: unknown detection mechanism %q", m)
	}
	if err != nil {
		return nil, err
	}
	return segment.Detect(m, in, from.UnixMilli(), hi, q.cfg.Now().UnixMilli(), cfg), nil
}

// summaryRequest is one aggregation of a segment's or a day's summary.
type summaryRequest struct {
	signal telemetry.Signal
	agg    string
}

// defaultSummary is the aggregations every summary carries, as DIMO's (per mechanism).
func defaultSummary(m segment.Mechanism) [][2]string {
	base := [][2]string{{telemetry.SignalSpeed, "MAX"}, {sigOdometer, "FIRST"}, {sigOdometer, "LAST"}}
	switch m {
	case segment.Refuel, segment.Idling:
		return append(base, [2]string{sigFuel, "FIRST"}, [2]string{sigFuel, "LAST"})
	case segment.Recharge:
		return append(base, [2]string{sigSoC, "FIRST"}, [2]string{sigSoC, "LAST"})
	}
	return append(base, [2]string{sigFuel, "FIRST"}, [2]string{sigFuel, "LAST"}, [2]string{sigSoC, "FIRST"}, [2]string{sigSoC, "LAST"})
}

// summaryRequests merges the defaults and the caller's requests (each name and aggregation once) and
// checks that every signal is numeric and readable with insights: a signal guarded by another
// permission (location) needs that permission too.
func (q *queryResolver) summaryRequests(m segment.Mechanism, reqs []exec.SegmentSignalRequest, g grants) ([]summaryRequest, error) {
	pairs := defaultSummary(m)
	for _, r := range reqs {
		pairs = append(pairs, [2]string{r.Name, string(r.Agg)})
	}
	seen := map[[2]string]bool{}
	var out []summaryRequest
	for i, p := range pairs {
		if seen[p] {
			continue
		}
		seen[p] = true
		s, ok := q.cfg.Catalog.Lookup(p[0])
		if !ok || (s.Kind != telemetry.KindNumber && s.Kind != telemetry.KindBool) {
			return nil, codedError(CodeBadRequest, "signalRequests: %q is not a numeric signal", p[0])
		}
		if s.Permission != ledger.PermSignals && !g.allowed[s.Permission] && i >= len(defaultSummary(m)) {
			e := codedError(CodeForbidden, "signalRequests: %s needs permission %q", p[0], s.Permission)
			e.Extensions["permission"] = s.Permission
			return nil, e
		}
		out = append(out, summaryRequest{*s, p[1]})
	}
	return out, nil
}

// summarize aggregates the requests over [lo, hi) and counts the events (of names, or all).
func (q *queryResolver) summarize(ctx context.Context, vehicle uint64, reqs []summaryRequest, names []string, evs []telemetry.Event, lo, hi int64) ([]exec.SignalAggregationValue, []exec.EventCount, error) {
	sigs := []exec.SignalAggregationValue{}
	if hi > lo {
		for _, r := range reqs {
			var val *float64
			err := q.cfg.Telemetry.Aggregate(ctx, telemetry.Aggregation{Vehicle: vehicle, Signal: r.signal.Name, Kind: r.signal.Kind,
				From: lo, Step: hi - lo, Lo: lo, Hi: hi, Aggs: []string{r.agg}}, func(_ int64, _ string, v any) {
				f, err := telemetry.AsFloat(v)
				if err == nil {
					val = &f
				}
			})
			if err != nil {
				return nil, nil, err
			}
			if val != nil {
				sigs = append(sigs, exec.SignalAggregationValue{Name: r.signal.Name, Agg: r.agg, Value: *val})
			}
		}
	}
	counts := map[string]int{}
	for _, e := range evs {
		if e.Time >= lo && e.Time < hi {
			counts[e.Name]++
		}
	}
	ec := []exec.EventCount{}
	if len(names) > 0 {
		for _, n := range names {
			ec = append(ec, exec.EventCount{Name: n, Count: counts[n]})
		}
	} else {
		for _, n := range telemetry.EventNames {
			if counts[n] > 0 {
				ec = append(ec, exec.EventCount{Name: n, Count: counts[n]})
			}
		}
	}
	return sigs, ec, nil
}

// location returns where the vehicle was at the first (or last) location value in [lo, hi), as the
// caller may see it: precise with location, the H3 cell centre with location:approximate, else nil.
func (q *queryResolver) location(ctx context.Context, vehicle uint64, g grants, lo, hi int64, last bool) (*exec.SignalLocation, error) {
	precise, approx := g.allowed[ledger.PermLocation], g.allowed[ledger.PermLocationApproximate]
	if !precise && !approx || hi <= lo {
		return nil, nil
	}
	agg := telemetry.AggFirst
	if last {
		agg = telemetry.AggLast
	}
	var loc *exec.Location
	err := q.cfg.Telemetry.Aggregate(ctx, telemetry.Aggregation{Vehicle: vehicle, Signal: telemetry.SignalLocation, Kind: telemetry.KindLocation,
		From: lo, Step: hi - lo, Lo: lo, Hi: hi, Aggs: []string{agg}}, func(_ int64, _ string, v any) {
		b, ok := v.([]byte)
		if !ok {
			return
		}
		lat, lon, hdop, err := telemetry.DecodeLocation(b)
		if err == nil {
			loc = &exec.Location{Latitude: lat, Longitude: lon, Hdop: hdop}
		}
	})
	if err != nil || loc == nil {
		return nil, err
	}
	if !precise {
		c := ApproximateLocation(loc.Latitude, loc.Longitude)
		loc = &c
	}
	t := time.UnixMilli(lo).UTC()
	if last {
		t = time.UnixMilli(hi).UTC()
	}
	return &exec.SignalLocation{Timestamp: t, Value: loc}, nil
}

// noLocation is DIMO's answer where a segment has no location to give (Segment.start is non-null).
func noLocation(t int64) *exec.SignalLocation {
	return &exec.SignalLocation{Timestamp: time.UnixMilli(t).UTC(), Value: &exec.Location{}}
}

func eventNames(reqs []exec.SegmentEventRequest) ([]string, error) {
	var out []string
	for _, r := range reqs {
		if !telemetry.KnownEvent(r.Name) {
			return nil, codedError(CodeBadRequest, "eventRequests: no event %q (the names are %s)", r.Name, strings.Join(telemetry.EventNames, ", "))
		}
		out = append(out, r.Name)
	}
	return out, nil
}

func (q *queryResolver) Segments(ctx context.Context, tokenID int, from, to time.Time, mechanism exec.DetectionMechanism,
	config *exec.SegmentConfig, signalRequests []exec.SegmentSignalRequest, eventRequests []exec.SegmentEventRequest, limit *int, after *time.Time) ([]exec.Segment, error) {
	if now := q.cfg.Now(); to.After(now) {
		to = now // as DIMO: "the rest of today" asks up to now
	}
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	cfg, err := segmentConfig(config)
	if err != nil {
		return nil, err
	}
	n := 100
	if limit != nil {
		n = *limit
	}
	if n < 1 || n > MaxSegmentLimit {
		return nil, codedError(CodeBadRequest, "limit must be between 1 and %d, not %d", MaxSegmentLimit, n)
	}
	names, err := eventNames(eventRequests)
	if err != nil {
		return nil, err
	}
	vehicle, g, err := q.insightsGrants(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	m := segment.Mechanism(mechanism)
	reqs, err := q.summaryRequests(m, signalRequests, g)
	if err != nil {
		return nil, err
	}
	segs, err := q.detect(ctx, vehicle, g.since, m, cfg, from, to)
	if err != nil {
		return nil, err
	}
	evs, err := q.cfg.Telemetry.Events(ctx, vehicle, max(from.Add(-segment.Lookback(m, cfg)).UnixMilli(), g.since.UnixMilli()), to.UnixMilli(), MaxEvents*10)
	if err != nil {
		return nil, err
	}
	out := []exec.Segment{}
	for _, s := range segs {
		if after != nil && s.Start <= after.UnixMilli() {
			continue
		}
		if len(out) == n {
			break
		}
		seg := exec.Segment{ID: segment.ID(vehicle, m, s.Start), Duration: s.Duration(), IsOngoing: s.Ongoing, StartedBeforeRange: s.StartedBefore}
		if seg.Start, err = q.location(ctx, vehicle, g, s.Start, s.End, false); err != nil {
			return nil, err
		}
		if seg.Start == nil {
			seg.Start = noLocation(s.Start)
		}
		seg.Start.Timestamp = time.UnixMilli(s.Start).UTC()
		if !s.Ongoing {
			if seg.End, err = q.location(ctx, vehicle, g, s.Start, s.End+1, true); err != nil {
				return nil, err
			}
			if seg.End == nil {
				seg.End = noLocation(s.End)
			}
			seg.End.Timestamp = time.UnixMilli(s.End).UTC()
		}
		sigs, counts, err := q.summarize(ctx, vehicle, reqs, names, evs, s.Start, s.End+1)
		if err != nil {
			return nil, err
		}
		seg.Signals, seg.EventCounts = sigs, counts
		out = append(out, seg)
	}
	q.recordEntry(ctx, vehicle, g, []string{ledger.PermInsights}, from, to, len(out), "ok")
	return out, nil
}

func (q *queryResolver) DailyActivity(ctx context.Context, tokenID int, from, to time.Time, mechanism exec.DetectionMechanism,
	config *exec.SegmentConfig, signalRequests []exec.SegmentSignalRequest, eventRequests []exec.SegmentEventRequest, timezone *string) ([]exec.DailyActivity, error) {
	m := segment.Mechanism(mechanism)
	if !m.Trips() {
		return nil, codedError(CodeBadRequest, "mechanism: dailyActivity takes ignitionDetection, frequencyAnalysis or changePointDetection, not %s", m)
	}
	loc := time.UTC
	if timezone != nil && *timezone != "" {
		var err error
		if loc, err = time.LoadLocation(*timezone); err != nil {
			return nil, codedError(CodeBadRequest, "timezone: %q is not an IANA time zone", *timezone)
		}
	}
	f, t := from.In(loc), to.In(loc)
	dayFrom := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc)
	dayTo := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	if dayTo.After(q.cfg.Now()) {
		return nil, codedError(CodeBadRequest, "to: the day of to (%s) is in the future", dayTo.Format("2006-01-02"))
	}
	if err := checkRange(dayFrom, dayTo.Add(time.Second)); err != nil {
		return nil, err
	}
	cfg, err := segmentConfig(config)
	if err != nil {
		return nil, err
	}
	names, err := eventNames(eventRequests)
	if err != nil {
		return nil, err
	}
	vehicle, g, err := q.insightsGrants(ctx, tokenID)
	if err != nil {
		return nil, err
	}
	reqs, err := q.summaryRequests(m, signalRequests, g)
	if err != nil {
		return nil, err
	}
	end := dayTo.AddDate(0, 0, 1)
	if end.After(q.cfg.Now()) {
		end = q.cfg.Now()
	}
	segs, err := q.detect(ctx, vehicle, g.since, m, cfg, dayFrom, end)
	if err != nil {
		return nil, err
	}
	since := g.since.UnixMilli()
	evs, err := q.cfg.Telemetry.Events(ctx, vehicle, max(dayFrom.UnixMilli(), since), end.UnixMilli(), MaxEvents*10)
	if err != nil {
		return nil, err
	}
	out := []exec.DailyActivity{}
	for _, d := range segment.Days(segs, dayFrom, dayTo, loc) {
		day := exec.DailyActivity{SegmentCount: len(d.Segments), Duration: d.Seconds}
		lo, hi := max(d.Start, since), min(d.End, end.UnixMilli())
		if day.Signals, day.EventCounts, err = q.summarize(ctx, vehicle, reqs, names, evs, lo, hi); err != nil {
			return nil, err
		}
		if len(d.Segments) > 0 {
			first, last := segs[d.Segments[0]], segs[d.Segments[len(d.Segments)-1]]
			if day.Start, err = q.location(ctx, vehicle, g, first.Start, first.End+1, false); err != nil {
				return nil, err
			}
			if !last.Ongoing {
				if day.End, err = q.location(ctx, vehicle, g, last.Start, last.End+1, true); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, day)
	}
	q.recordEntry(ctx, vehicle, g, []string{ledger.PermInsights}, dayFrom, end, len(out), "ok")
	return out, nil
}
