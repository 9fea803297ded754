package graphql

import (
	"context"
	"sort"
	"time"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
	"github.com/glovebox/glovebox/api/graphql/internal/schemagen"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

func (q *queryResolver) DataSummary(ctx context.Context, tokenID int, filter *exec.SignalFilter) (*exec.DataSummary, error) {
	if tokenID < 0 {
		return nil, codedError(CodeBadRequest, "tokenId %d: vehicle ids are not negative", tokenID)
	}
	if filter != nil && filter.Source != nil {
		return nil, codedError(CodeBadRequest, "filter.source: dataSummary takes no source (signalsLatest, availableSignals and signalsSnapshot do)")
	}
	vehicle := uint64(tokenID)
	g, err := decided(ctx, vehicle)
	if err != nil {
		return nil, err
	}
	if !g.any() && !g.allowed[ledger.PermInsights] {
		q.record(ctx, vehicle, g, 0, "forbidden")
		return nil, errNothingReadable()
	}
	sums, err := q.cfg.Telemetry.Summary(ctx, vehicle, g.since.UnixMilli())
	if err != nil {
		return nil, err
	}
	epoch := time.Unix(0, 0).UTC() // firstSeen and lastSeen when nothing is listed (non-null in DIMO's schema)
	out := &exec.DataSummary{FirstSeen: epoch, LastSeen: epoch, AvailableSignals: []string{}, SignalDataSummary: []exec.SignalDataSummary{},
		EventDataSummary: []exec.EventDataSummary{}}
	add := func(name string, n uint64, first, last time.Time) {
		out.SignalDataSummary = append(out.SignalDataSummary, exec.SignalDataSummary{Name: name, NumberOfSignals: n, FirstSeen: first, LastSeen: last})
	}
	for _, sum := range sums {
		s, ok := q.cfg.Catalog.Lookup(sum.Name)
		if !ok {
			continue
		}
		n := uint64(sum.Count)
		f, l := time.UnixMilli(sum.First).UTC(), time.UnixMilli(sum.Last).UTC()
		precise, approx := g.signal(s), s.Name == telemetry.SignalLocation && g.allowed[ledger.PermLocationApproximate]
		if precise {
			add(sum.Name, n, f, l)
		}
		if approx {
			add(schemagen.ApproximateLocationField, n, f, l)
		}
		if precise || approx { // each stored value counts once
			out.NumberOfSignals += n
		}
	}
	sort.Slice(out.SignalDataSummary, func(i, j int) bool { return out.SignalDataSummary[i].Name < out.SignalDataSummary[j].Name })
	for i, s := range out.SignalDataSummary {
		out.AvailableSignals = append(out.AvailableSignals, s.Name)
		if i == 0 || s.FirstSeen.Before(out.FirstSeen) {
			out.FirstSeen = s.FirstSeen
		}
		if i == 0 || s.LastSeen.After(out.LastSeen) {
			out.LastSeen = s.LastSeen
		}
	}
	if g.allowed[ledger.PermInsights] {
		sums, err := q.cfg.Telemetry.EventSummaries(ctx, vehicle, g.since.UnixMilli())
		if err != nil {
			return nil, err
		}
		for _, s := range sums {
			out.EventDataSummary = append(out.EventDataSummary, exec.EventDataSummary{Name: s.Name, NumberOfEvents: uint64(s.Count),
				FirstSeen: time.UnixMilli(s.First).UTC(), LastSeen: time.UnixMilli(s.Last).UTC()})
		}
	}
	q.record(ctx, vehicle, g, int(out.NumberOfSignals), "ok")
	return out, nil
}
