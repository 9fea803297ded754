package telemetry

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
)

// Reader is the one way anything reads stored telemetry: the GraphQL API, the benchmarks and any future
// reader (insights, exports, webhooks) ask it and never the tables behind it. store/sqlite and
// store/postgres implement it, and store/storetest's read suite holds both to the same answers on the
// same data.
//
// Every read names one vehicle and a cut-off (since, or Aggregation.Lo): a value or record measured
// before it MUST NOT be returned, so that a caller can confine an answer to the current owner's period
// (access.Decision.Since) without filtering it again. Times are unix milliseconds, UTC. A Reader never
// decides who may read what: its callers ask package access first.
//
// A Reader answers from the derived tables (signals, latest) for values and from the records as received
// for Records. A store whose derived tables are written after the records (SQLite's indexer) MAY answer
// Aggregate, Latest and Summary without the newest records for a moment; Records MUST include every
// record whose Write returned.
type Reader interface {
	History
	Events

	// Latest returns the newest value of every signal of vehicle measured at or after since, in no
	// particular order. Callers MUST NOT modify the rows (a store may hand out a cached slice).
	Latest(ctx context.Context, vehicle uint64, since int64) ([]LatestRow, error)

	// LatestFrom returns the newest value of every signal of vehicle that source (the device that signed
	// the records) measured at or after since, in no particular order: Latest restricted to one source.
	// A store keeps it from the version that introduced it on (older values are not attributed), and
	// after a deletion does not restore a source's older values in place of deleted ones.
	LatestFrom(ctx context.Context, vehicle uint64, source common.Address, since int64) ([]LatestRow, error)

	// Summary returns, for every signal of vehicle with values measured at or after since, how many there
	// are and when the first and the last were measured, in no particular order.
	Summary(ctx context.Context, vehicle uint64, since int64) ([]SignalSummary, error)

	// Records returns up to q.Limit records of q.Vehicle measured in [q.Lo, q.Hi) and after the position
	// (q.AfterTime, q.AfterSeq), in (Time, Seq) order, each with the exact event bytes its device signed
	// (decompressed if the store compressed them). A page shorter than q.Limit is the last.
	Records(ctx context.Context, q RecordsQuery) ([]StoredRecord, error)

	// Runs returns the runs of a numeric (or boolean) signal in q's range, in time order (RunsQuery). Segment
	// detection reads signals this way: a month of a signal that changes a few times a day is a few hundred
	// runs, which a store with roll-ups finds without reading every value.
	Runs(ctx context.Context, q RunsQuery) ([]Run, error)

	// Active returns the minutes of q.Vehicle in [q.Lo, q.Hi) (unix ms, whole minutes) in which at least
	// q.MinCount values of at least q.MinSignals distinct numeric or boolean signals were measured, merged
	// into spans of consecutive minutes, in time order. Frequency analysis and change-point detection read
	// activity this way.
	Active(ctx context.Context, q ActiveQuery) ([]Span, error)
}

// RunsQuery asks for the runs of one numeric or boolean signal of a vehicle measured in [Lo, Hi) (unix ms).
// A run is a maximal sequence of consecutive values (in time order) that are all of one class, each
// measured at most MaxGap ms after the one before it (MaxGap 0: any gap). Without Cuts every distinct
// value is a class of its own; with Cuts (ascending), the class of a value v is how many cuts are below
// it, so Cuts {0, 1000} makes three classes: v <= 0, 0 < v <= 1000 and v > 1000.
type RunsQuery struct {
	Vehicle uint64
	Signal  string
	Lo, Hi  int64
	Cuts    []float64
	MaxGap  int64
}

// Class returns the class of v under q.Cuts (Cuts given).
func (q RunsQuery) Class(v float64) int {
	n := 0
	for _, c := range q.Cuts {
		if v > c {
			n++
		}
	}
	return n
}

// Run is one run of values (RunsQuery): when its first and last value were measured, those values, and
// how many values it has.
type Run struct {
	Start, End  int64 // unix ms
	First, Last float64
	Count       int64
}

// ActiveQuery asks which minutes of a vehicle were active (Reader.Active).
type ActiveQuery struct {
	Vehicle              uint64
	Lo, Hi               int64 // unix ms, multiples of 60,000
	MinCount, MinSignals int
}

// Span is [Start, End) in unix ms.
type Span struct{ Start, End int64 }

// MinuteMs is a minute in milliseconds, the unit of Reader.Active.
const MinuteMs = 60_000

// LatestRow is the newest stored value of one signal of a vehicle: Val a float64 (or int64) for numbers
// and booleans, a string for strings, an encoded location (EncodeLocation) for locations. Callers must
// not modify Val.
type LatestRow struct {
	Name string
	Time int64 // unix ms
	Val  any
}

// SignalSummary is how many values of one signal a vehicle has and when the first and last were measured.
type SignalSummary struct {
	Name        string
	Count       int64
	First, Last int64 // unix ms
}

// RecordsQuery asks for one page of a vehicle's records (Reader.Records). The position (AfterTime,
// AfterSeq) is the (Time, Seq) of the last record of the previous page; for the first page it is (Lo, 0),
// since sequence numbers start at 1.
type RecordsQuery struct {
	Vehicle             uint64
	Lo, Hi              int64 // measurement times, unix ms: [Lo, Hi)
	AfterTime, AfterSeq int64
	Limit               int
}

// StoredRecord is one record as stored: the device-signed event bytes and signature, when it was
// received, and the log index of the pairing entry that was in force at its time.
type StoredRecord struct {
	// Seq orders records stored at the same measurement time; it is unique within a store.
	Seq       int64
	Source    common.Address
	ID        string
	Vehicle   uint64
	Time      int64 // measured, unix ms
	Received  int64 // unix ms
	Pairing   int64 // log index of the PairDevice entry
	Event     []byte
	Signature []byte
}
