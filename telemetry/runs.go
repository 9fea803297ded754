package telemetry

import (
	"cmp"
	"slices"
)

// FoldRuns builds the runs of q (RunsQuery) from a signal's values, which scan hands over in time order:
// the reference the stores' Runs are held to.
func FoldRuns(q RunsQuery, scan func(yield func(t int64, v float64) error) error) ([]Run, error) {
	f := RunFolder{Query: q}
	err := scan(func(t int64, v float64) error {
		f.Add(t, v)
		return nil
	})
	return f.Runs(), err
}

// RunFolder builds the runs of Query from a signal's values in time order, one by one (Add) or in
// pieces whose values are all of one class and no further apart than MaxGap (AddPiece: a chunk's or a
// slot's summary, whose minimum and maximum are of one class), with the same result.
type RunFolder struct {
	Query RunsQuery
	out   []Run
	cls   float64 // the class of the last run
}

// Class returns the class of v: its class under Query.Cuts, or v itself without cuts.
func (f *RunFolder) Class(v float64) float64 {
	if f.Query.Cuts == nil {
		return v
	}
	return float64(f.Query.Class(v))
}

// Whole reports whether a piece of values from t0 to t1 with minimum lo and maximum hi may be added
// whole (AddPiece): all its values are of one class, none NaN, and no two further apart than MaxGap.
func (f *RunFolder) Whole(t0, t1 int64, lo, hi float64) bool {
	return lo == lo && hi == hi && f.Class(lo) == f.Class(hi) && (f.Query.MaxGap == 0 || t1-t0 <= f.Query.MaxGap)
}

// Add adds the value v measured at t, after every value added before.
func (f *RunFolder) Add(t int64, v float64) { f.AddPiece(t, t, v, v, 1) }

// AddPiece adds n values from t0 (v0) to t1 (v1), after every value added before, all of v0's class and
// no two further apart than MaxGap (Whole).
func (f *RunFolder) AddPiece(t0, t1 int64, v0, v1 float64, n int64) {
	c := f.Class(v0)
	if k := len(f.out); k > 0 && c == f.cls && (f.Query.MaxGap == 0 || t0-f.out[k-1].End <= f.Query.MaxGap) {
		f.out[k-1].End, f.out[k-1].Last, f.out[k-1].Count = t1, v1, f.out[k-1].Count+n
		return
	}
	f.out = append(f.out, Run{Start: t0, End: t1, First: v0, Last: v1, Count: n})
	f.cls = c
}

// Runs returns the runs built.
func (f *RunFolder) Runs() []Run { return f.out }

// MergeSpans sorts spans and merges those that overlap or touch.
func MergeSpans(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int { return cmp.Compare(a.Start, b.Start) })
	var out []Span
	for _, s := range spans {
		if n := len(out); n > 0 && s.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, s.End)
			continue
		}
		out = append(out, s)
	}
	return out
}
