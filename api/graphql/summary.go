package graphql

import (
	"context"
	"fmt"
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
		return nil, codedError(CodeBadRequest, "filter.source is not supported yet")
	}
	vehicle := uint64(tokenID)
	g, err := (*resolver)(q).grantsOf(ctx, vehicle)
	if err != nil {
		return nil, err
	}
	if !g.any() && !g.allowed[ledger.PermInsights] {
		q.record(ctx, vehicle, g, 0, "forbidden")
		return nil, errNothingReadable()
	}
	rows, err := q.cfg.Signals.QueryContext(ctx, q.rebind(`SELECT n.name, COUNT(*), MIN(s.time), MAX(s.time)
		FROM signals s JOIN names n ON n.id = s.name WHERE s.vehicle = ? AND s.time >= ? GROUP BY s.name`, telemetry.KindNumber),
		vehicle, g.since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
	}
	defer rows.Close()
	epoch := time.Unix(0, 0).UTC() // firstSeen and lastSeen when nothing is listed (non-null in DIMO's schema)
	out := &exec.DataSummary{FirstSeen: epoch, LastSeen: epoch, AvailableSignals: []string{}, SignalDataSummary: []exec.SignalDataSummary{}, EventDataSummary: []exec.EventDataSummary{}}
	add := func(name string, n uint64, first, last time.Time) {
		out.SignalDataSummary = append(out.SignalDataSummary, exec.SignalDataSummary{Name: name, NumberOfSignals: n, FirstSeen: first, LastSeen: last})
	}
	for rows.Next() {
		var name string
		var n uint64
		var first, last int64
		if err := rows.Scan(&name, &n, &first, &last); err != nil {
			return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
		}
		s, ok := q.cfg.Catalog.Lookup(name)
		if !ok {
			continue
		}
		f, l := time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
		precise, approx := g.allowed[s.Permission], s.Name == telemetry.SignalLocation && g.allowed[ledger.PermLocationApproximate]
		if precise {
			add(name, n, f, l)
		}
		if approx {
			add(schemagen.ApproximateLocationField, n, f, l)
		}
		if precise || approx { // each stored value counts once
			out.NumberOfSignals += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't summarize the data of vehicle %d: %w", vehicle, err)
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
		sums, err := q.cfg.Events.EventSummaries(ctx, vehicle, g.since.UnixMilli())
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
