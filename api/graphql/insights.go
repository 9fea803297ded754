package graphql

import (
	"context"
	"math"
	"sort"
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

// detect reads what mechanism m needs of vehicle and finds its segments in [from, to). It reads runs and
// active minutes (telemetry.Reader's Runs and Active), which a store answers from its roll-ups, and turns
// them into the points and spans package segment takes, so that detection finds what it would in every
// value.
func (q *queryResolver) detect(ctx context.Context, vehicle uint64, since time.Time, m segment.Mechanism, cfg segment.Config, from, to time.Time) ([]segment.Segment, error) {
	lo := max(from.Add(-segment.Lookback(m, cfg)).UnixMilli(), since.UnixMilli())
	hi := to.UnixMilli()
	var in segment.Input
	var err error
	switch m {
	case segment.Ignition:
		in.Ignition, err = q.levels(ctx, vehicle, sigIgnition, lo, hi, false)
	case segment.Frequency:
		in.Active, err = q.active(ctx, vehicle, lo, hi, cfg.SignalCountThreshold)
	case segment.ChangePoint:
		in.Active, err = q.active(ctx, vehicle, lo, hi, 10)
	case segment.Idling:
		in.RPM, in.Speed, err = q.idlingPoints(ctx, vehicle, lo, hi, cfg)
	case segment.Refuel:
		in.Fuel, err = q.levels(ctx, vehicle, sigFuel, lo, hi, true)
	case segment.Recharge:
		in.SoC, err = q.levels(ctx, vehicle, sigSoC, lo, hi, true)
		in.Advanced = q.advanced(ctx, vehicle, lo, hi, &err)
	default:
		return nil, codedError(CodeBadRequest, "mechanism: unknown detection mechanism %q", m)
	}
	if err != nil {
		return nil, err
	}
	segs := segment.Detect(m, in, from.UnixMilli(), hi, q.cfg.Now().UnixMilli(), cfg)
	return segs, err // err: set by Advanced
}

// levels reads a signal in [lo, hi) as the first value of every run of equal values (and, with last, the
// last value too): all that ignition detection (which looks at changes) and rise detection (whose
// troughs and peaks are the last and first of equal values) see of it.
func (q *queryResolver) levels(ctx context.Context, vehicle uint64, signal string, lo, hi int64, last bool) ([]segment.Point, error) {
	runs, err := q.cfg.Telemetry.Runs(ctx, telemetry.RunsQuery{Vehicle: vehicle, Signal: signal, Lo: lo, Hi: hi})
	if err != nil {
		return nil, err
	}
	out := make([]segment.Point, 0, 2*len(runs))
	for _, r := range runs {
		out = append(out, segment.Point{Time: r.Start, Value: r.First})
		if last && r.End != r.Start {
			out = append(out, segment.Point{Time: r.End, Value: r.Last})
		}
	}
	return out, nil
}

// active reads the active minutes of vehicle in [lo, hi): at least minCount values of 2 signals.
func (q *queryResolver) active(ctx context.Context, vehicle uint64, lo, hi int64, minCount int) ([]segment.Span, error) {
	spans, err := q.cfg.Telemetry.Active(ctx, telemetry.ActiveQuery{Vehicle: vehicle, Lo: lo / segment.WindowMs * segment.WindowMs,
		Hi: (hi + segment.WindowMs - 1) / segment.WindowMs * segment.WindowMs, MinCount: minCount, MinSignals: 2})
	out := make([]segment.Span, len(spans))
	for i, s := range spans {
		out[i] = segment.Span{Start: s.Start, End: s.End}
	}
	return out, err
}

// idlingPoints reads engine speed and speed for idling detection: speed as the first value of each run
// of zero and non-zero values, engine speed as runs of the classes at most 0, idle (above 0, at most
// maxIdleRpm) and above, the idle ones split at gaps of more than maxGap. A run outside the idle class is
// its first value (which ends an idle period as the others would); an idle run is what idleRun makes
// of it.
func (q *queryResolver) idlingPoints(ctx context.Context, vehicle uint64, lo, hi int64, cfg segment.Config) ([]segment.Point, []segment.Point, error) {
	maxGap := int64(cfg.MaxGapSeconds) * 1000
	speedRuns, err := q.cfg.Telemetry.Runs(ctx, telemetry.RunsQuery{Vehicle: vehicle, Signal: telemetry.SignalSpeed, Lo: lo, Hi: hi,
		Cuts: []float64{math.Nextafter(0, -1), 0}})
	if err != nil {
		return nil, nil, err
	}
	speed := make([]segment.Point, len(speedRuns))
	for i, r := range speedRuns {
		speed[i] = segment.Point{Time: r.Start, Value: r.First}
	}
	// Runs of a class without gaps first (gaps matter only between idle values, and a store answers
	// whole units wider than any gap only so), then the idle runs again, split at gaps.
	cuts := []float64{0, float64(cfg.MaxIdleRpm)}
	classRuns, err := q.cfg.Telemetry.Runs(ctx, telemetry.RunsQuery{Vehicle: vehicle, Signal: sigRPM, Lo: lo, Hi: hi, Cuts: cuts})
	if err != nil {
		return nil, nil, err
	}
	var rpm []segment.Point
	for _, c := range classRuns {
		if c.First <= 0 || c.First > float64(cfg.MaxIdleRpm) {
			rpm = append(rpm, segment.Point{Time: c.Start, Value: c.First})
			continue
		}
		rpmRuns, err := q.cfg.Telemetry.Runs(ctx, telemetry.RunsQuery{Vehicle: vehicle, Signal: sigRPM, Lo: c.Start, Hi: c.End + 1,
			Cuts: cuts, MaxGap: maxGap})
		if err != nil {
			return nil, nil, err
		}
		for _, r := range rpmRuns {
			pts, err := q.idleRun(ctx, vehicle, r, speed, maxGap)
			if err != nil {
				return nil, nil, err
			}
			rpm = append(rpm, pts...)
		}
	}
	return rpm, speed, nil
}

// idleRun is what idling detection sees of a run of idle engine speed values: points no more than maxGap
// apart from its first value to its last while the vehicle stood, its first value (not idle) while it
// moved, and every value if it started or stopped in between.
func (q *queryResolver) idleRun(ctx context.Context, vehicle uint64, r telemetry.Run, speed []segment.Point, maxGap int64) ([]segment.Point, error) {
	// the speed in force at r.Start, and whether another takes over by r.End
	k := sort.Search(len(speed), func(i int) bool { return speed[i].Time > r.Start })
	switch {
	case k < len(speed) && speed[k].Time <= r.End:
		return q.points(ctx, vehicle, sigRPM, r.Start, r.End+1)
	case k == 0 || speed[k-1].Value == 0:
		var rpm []segment.Point
		for t := r.Start; t < r.End; t += maxGap {
			rpm = append(rpm, segment.Point{Time: t, Value: r.First})
		}
		return append(rpm, segment.Point{Time: r.End, Value: r.Last}), nil
	}
	return []segment.Point{{Time: r.Start, Value: r.First}}, nil
}

// advanced tells rise detection whether the odometer advanced more than 0.5 km from its reading at or
// before a (or its first in [lo, hi) if none) to its last at or before b, from four one-bucket
// aggregations; it reports an error in *errp.
func (q *queryResolver) advanced(ctx context.Context, vehicle uint64, lo, hi int64, errp *error) func(a, b int64) bool {
	agg := func(l, h int64, name string) (float64, bool) {
		var out float64
		var ok bool
		if l >= h || *errp != nil {
			return 0, false
		}
		err := q.cfg.Telemetry.Aggregate(ctx, telemetry.Aggregation{Vehicle: vehicle, Signal: sigOdometer, Kind: telemetry.KindNumber,
			From: l, Step: h - l, Lo: l, Hi: h, Aggs: []string{name}}, func(_ int64, _ string, v any) {
			out, _ = telemetry.AsFloat(v)
			ok = true
		})
		if err != nil && *errp == nil {
			*errp = err
		}
		return out, ok
	}
	return func(a, b int64) bool {
		vi, ok := agg(lo, min(a+1, hi), telemetry.AggLast)
		if ok { // the reading at or before a; the last at or before b must come after it
			n, _ := agg(a+1, min(b+1, hi), telemetry.AggCount)
			vj, _ := agg(a+1, min(b+1, hi), telemetry.AggLast)
			return n > 0 && vj-vi > 0.5
		}
		// none at or before a: the first reading, and the last at or before b if it is another
		vi, _ = agg(lo, hi, telemetry.AggFirst)
		n, _ := agg(lo, min(b+1, hi), telemetry.AggCount)
		vj, _ := agg(lo, min(b+1, hi), telemetry.AggLast)
		return n >= 2 && vj-vi > 0.5
	}
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

// summaries aggregates the requests over each span (one read per signal for all of them) and counts the
// events (of names, or all) in it.
func (q *queryResolver) summaries(ctx context.Context, vehicle uint64, reqs []summaryRequest, names []string, evs []telemetry.Event,
	spans []telemetry.Span) ([][]exec.SignalAggregationValue, [][]exec.EventCount, error) {
	vals := make([]map[[2]string]float64, len(spans))
	done := map[string]bool{}
	for _, r := range reqs {
		if done[r.signal.Name] {
			continue
		}
		done[r.signal.Name] = true
		var aggs []string
		for _, o := range reqs {
			if o.signal.Name == r.signal.Name {
				aggs = append(aggs, o.agg)
			}
		}
		err := telemetry.AggregateSpans(ctx, q.cfg.Telemetry, telemetry.Aggregation{Vehicle: vehicle, Signal: r.signal.Name, Kind: r.signal.Kind,
			Aggs: aggs}, spans, func(i int, agg string, v any) {
			if f, err := telemetry.AsFloat(v); err == nil {
				if vals[i] == nil {
					vals[i] = map[[2]string]float64{}
				}
				vals[i][[2]string{r.signal.Name, agg}] = f
			}
		})
		if err != nil {
			return nil, nil, err
		}
	}
	sigs := make([][]exec.SignalAggregationValue, len(spans))
	counts := make([][]exec.EventCount, len(spans))
	for i, sp := range spans {
		sigs[i] = []exec.SignalAggregationValue{}
		for _, r := range reqs {
			if v, ok := vals[i][[2]string{r.signal.Name, r.agg}]; ok {
				sigs[i] = append(sigs[i], exec.SignalAggregationValue{Name: r.signal.Name, Agg: r.agg, Value: v})
			}
		}
		counts[i] = eventCounts(names, evs, sp.Start, sp.End)
	}
	return sigs, counts, nil
}

// eventCounts counts the events (of names, or all) that began in [lo, hi).
func eventCounts(names []string, evs []telemetry.Event, lo, hi int64) []exec.EventCount {
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
	return ec
}

// locations returns where the vehicle was at the first (or last) location value in each span, as the
// caller may see it: precise with location, the H3 cell centre with location:approximate, else nil (and
// nil for a span without a location). The timestamp is the span's start (or end).
func (q *queryResolver) locations(ctx context.Context, vehicle uint64, g grants, spans []telemetry.Span, last bool) ([]*exec.SignalLocation, error) {
	out := make([]*exec.SignalLocation, len(spans))
	precise, approx := g.allowed[ledger.PermLocation], g.allowed[ledger.PermLocationApproximate]
	if !precise && !approx {
		return out, nil
	}
	agg := telemetry.AggFirst
	if last {
		agg = telemetry.AggLast
	}
	err := telemetry.AggregateSpans(ctx, q.cfg.Telemetry, telemetry.Aggregation{Vehicle: vehicle, Signal: telemetry.SignalLocation,
		Kind: telemetry.KindLocation, Aggs: []string{agg}}, spans, func(i int, _ string, v any) {
		b, ok := v.([]byte)
		if !ok {
			return
		}
		lat, lon, hdop, err := telemetry.DecodeLocation(b)
		if err != nil {
			return
		}
		loc := &exec.Location{Latitude: lat, Longitude: lon, Hdop: hdop}
		if !precise {
			c := ApproximateLocation(loc.Latitude, loc.Longitude)
			loc = &c
		}
		t := time.UnixMilli(spans[i].Start).UTC()
		if last {
			t = time.UnixMilli(spans[i].End).UTC()
		}
		out[i] = &exec.SignalLocation{Timestamp: t, Value: loc}
	})
	return out, err
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
	// the page, then its summaries and locations: one read per signal for all its segments
	var page []segment.Segment
	for _, s := range segs {
		if after != nil && s.Start <= after.UnixMilli() {
			continue
		}
		if len(page) == n {
			break
		}
		page = append(page, s)
	}
	whole := make([]telemetry.Span, len(page))  // [Start, End]: the summaries
	starts := make([]telemetry.Span, len(page)) // [Start, End): the first location
	ends := make([]telemetry.Span, len(page))   // [Start, End] of a segment that ended: the last location
	for i, s := range page {
		whole[i], starts[i] = telemetry.Span{Start: s.Start, End: s.End + 1}, telemetry.Span{Start: s.Start, End: s.End}
		if !s.Ongoing {
			ends[i] = whole[i]
		}
	}
	firstLocs, err := q.locations(ctx, vehicle, g, starts, false)
	if err != nil {
		return nil, err
	}
	lastLocs, err := q.locations(ctx, vehicle, g, ends, true)
	if err != nil {
		return nil, err
	}
	sigs, counts, err := q.summaries(ctx, vehicle, reqs, names, evs, whole)
	if err != nil {
		return nil, err
	}
	out := make([]exec.Segment, 0, len(page))
	for i, s := range page {
		seg := exec.Segment{ID: segment.ID(vehicle, m, s.Start), Duration: s.Duration(), IsOngoing: s.Ongoing, StartedBeforeRange: s.StartedBefore}
		if seg.Start = firstLocs[i]; seg.Start == nil {
			seg.Start = noLocation(s.Start)
		}
		seg.Start.Timestamp = time.UnixMilli(s.Start).UTC()
		if !s.Ongoing {
			if seg.End = lastLocs[i]; seg.End == nil {
				seg.End = noLocation(s.End)
			}
			seg.End.Timestamp = time.UnixMilli(s.End).UTC()
		}
		seg.Signals, seg.EventCounts = sigs[i], counts[i]
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
	days := segment.Days(segs, dayFrom, dayTo, loc)
	// each day's summary, and the locations of its first and last segments: one read per signal for all
	spans := make([]telemetry.Span, len(days))
	firsts := make([]telemetry.Span, len(days))
	lasts := make([]telemetry.Span, len(days))
	for i, d := range days {
		spans[i] = telemetry.Span{Start: max(d.Start, since), End: min(d.End, end.UnixMilli())}
		if len(d.Segments) > 0 {
			first, last := segs[d.Segments[0]], segs[d.Segments[len(d.Segments)-1]]
			firsts[i] = telemetry.Span{Start: first.Start, End: first.End + 1}
			if !last.Ongoing {
				lasts[i] = telemetry.Span{Start: last.Start, End: last.End + 1}
			}
		}
	}
	sigs, counts, err := q.summaries(ctx, vehicle, reqs, names, evs, spans)
	if err != nil {
		return nil, err
	}
	firstLocs, err := q.locations(ctx, vehicle, g, firsts, false)
	if err != nil {
		return nil, err
	}
	lastLocs, err := q.locations(ctx, vehicle, g, lasts, true)
	if err != nil {
		return nil, err
	}
	out := make([]exec.DailyActivity, 0, len(days))
	for i, d := range days {
		out = append(out, exec.DailyActivity{SegmentCount: len(d.Segments), Duration: d.Seconds, Signals: sigs[i], EventCounts: counts[i],
			Start: firstLocs[i], End: lastLocs[i]})
	}
	q.recordEntry(ctx, vehicle, g, []string{ledger.PermInsights}, dayFrom, end, len(out), "ok")
	return out, nil
}
