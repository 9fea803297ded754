package telemetry

import (
	"cmp"
	"slices"
)

// FoldRuns builds the runs of q (RunsQuery) from a signal's values, which scan hands over in time order:
// the reference the stores' Runs are held to (store/postgres reads its values this way).
func FoldRuns(q RunsQuery, scan func(yield func(t int64, v float64) error) error) ([]Run, error) {
	var out []Run
	var cls float64
	class := func(v float64) float64 {
		if q.Cuts == nil {
			return v
		}
		return float64(q.Class(v))
	}
	err := scan(func(t int64, v float64) error {
		c := class(v)
		if n := len(out); n > 0 && c == cls && (q.MaxGap == 0 || t-out[n-1].End <= q.MaxGap) {
			out[n-1].End, out[n-1].Last, out[n-1].Count = t, v, out[n-1].Count+1
			return nil
		}
		out = append(out, Run{Start: t, End: t, First: v, Last: v, Count: 1})
		cls = c
		return nil
	})
	return out, err
}

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
