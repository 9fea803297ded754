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

	// Latest returns the newest value of every signal of vehicle measured at or after since, in no
	// particular order. Callers MUST NOT modify the rows (a store may hand out a cached slice).
	Latest(ctx context.Context, vehicle uint64, since int64) ([]LatestRow, error)

	// Summary returns, for every signal of vehicle with values measured at or after since, how many there
	// are and when the first and the last were measured, in no particular order.
	Summary(ctx context.Context, vehicle uint64, since int64) ([]SignalSummary, error)

	// Records returns up to q.Limit records of q.Vehicle measured in [q.Lo, q.Hi) and after the position
	// (q.AfterTime, q.AfterSeq), in (Time, Seq) order, each with the exact event bytes its device signed
	// (decompressed if the store compressed them). A page shorter than q.Limit is the last.
	Records(ctx context.Context, q RecordsQuery) ([]StoredRecord, error)
}

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
