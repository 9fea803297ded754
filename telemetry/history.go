package telemetry

import "context"

// The aggregations of a history query. A store answers FIRST, LAST, AVG, MIN and MAX from roll-ups where
// it can; the others read the values.
const (
	AggAvg    = "AVG"    // numbers: the mean
	AggMin    = "MIN"    // numbers: the smallest
	AggMax    = "MAX"    // numbers: the largest
	AggFirst  = "FIRST"  // any kind: the value measured first
	AggLast   = "LAST"   // any kind: the value measured last
	AggMedian = "MED"    // numbers: the middle value (the mean of the two middle ones for an even count)
	AggRand   = "RAND"   // any kind: one value picked by a hash of vehicle, signal and bucket start
	AggTop    = "TOP"    // strings: the most frequent value (the smallest on a tie)
	AggUnique = "UNIQUE" // strings: the distinct values as a sorted JSON array
	AggMean   = "MEAN"   // locations: the mean latitude, longitude and hdop, encoded as a location
	AggCount  = "COUNT"  // numbers: how many values (a float64), for segment detection
)

// Aggregation asks for aggregations of one signal of one vehicle in buckets of Step milliseconds
// starting at From, over the measurements with times in [Lo, Hi) (unix milliseconds).
type Aggregation struct {
	Vehicle  uint64
	Signal   string
	Kind     Kind
	From     int64
	Step     int64
	Lo, Hi   int64
	Aggs     []string
	NoRollup bool // read only the values (for tests and benchmarks that compare both ways)
	// Keep, when set, admits only the values for which it returns true (a query's value filter, such as
	// GraphQL's SignalFloatFilter or SignalLocationFilter): it is called with each value in the form
	// Aggregate puts it (float64, string, or an encoded location). A store MUST aggregate only the values
	// it keeps, so it reads them one by one: roll-ups cannot be filtered.
	Keep func(v any) bool
}

// History answers history queries. Aggregate computes a's aggregations and hands each bucket's result
// to put: the bucket's index (bucket b starts at From + b*Step), the aggregation, and the value — float64
// for numbers and booleans, string for strings, an encoded location ([]byte, EncodeLocation) for
// locations. Buckets without values are not put.
type History interface {
	Aggregate(ctx context.Context, a Aggregation, put func(b int64, agg string, v any)) error
}

// SpanAggregator is a History that aggregates one signal over many spans in one read (store/sqlite, from
// its roll-ups). AggregateSpans (the function) uses it when a store has it.
type SpanAggregator interface {
	// AggregateSpans answers as the function AggregateSpans does. It is only called for an Aggregation
	// without Keep whose aggregations are among FIRST, LAST, AVG, MIN, MAX and COUNT.
	AggregateSpans(ctx context.Context, a Aggregation, spans []Span, put func(i int, agg string, v any)) error
}

// AggregateSpans computes a's aggregations (a.From, a.Step, a.Lo and a.Hi unused) over each span of
// spans ([Start, End), unix ms) and hands each span's result to put with the span's index, as Aggregate
// would for one bucket of exactly that span: spans without values are not put. Segment and day
// summaries read one signal over many trips this way, in one read where the store can (SpanAggregator).
func AggregateSpans(ctx context.Context, h History, a Aggregation, spans []Span, put func(i int, agg string, v any)) error {
	if sa, ok := h.(SpanAggregator); ok && a.Keep == nil && spanAggs(a.Aggs) {
		return sa.AggregateSpans(ctx, a, spans, put)
	}
	for i, s := range spans {
		if s.Start >= s.End {
			continue
		}
		b := a
		b.From, b.Step, b.Lo, b.Hi = s.Start, s.End-s.Start, s.Start, s.End
		if err := h.Aggregate(ctx, b, func(_ int64, agg string, v any) { put(i, agg, v) }); err != nil {
			return err
		}
	}
	return nil
}

// spanAggs tells whether every aggregation is one a SpanAggregator answers.
func spanAggs(aggs []string) bool {
	for _, agg := range aggs {
		switch agg {
		case AggFirst, AggLast, AggAvg, AggMin, AggMax, AggCount:
		default:
			return false
		}
	}
	return true
}
