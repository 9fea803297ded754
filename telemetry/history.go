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
