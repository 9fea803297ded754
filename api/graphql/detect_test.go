package graphql

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/store/sqlite"
	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/segment"
)

// TestDetectionFromRunsFindsWhatTheValuesHold drives a random car for two days (trips with short stops and
// ignition flaps, idling while standing and crawling at idle engine speed, refuels, charging, coverage
// gaps), rolls most of it up and leaves the rest stale, and checks that every mechanism finds from runs
// and active minutes (what detect reads) exactly the segments it finds in every value.
func TestDetectionFromRunsFindsWhatTheValuesHold(t *testing.T) {
	ctx := context.Background()
	tel, err := sqlite.OpenTelemetry(filepath.Join(t.TempDir(), "telemetry.db"), telemetry.DefaultCatalog)
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Close()
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 5))
	src := common.HexToAddress("0x01")
	var recs []*telemetry.Record
	state := struct {
		on, moving      bool
		charging        bool
		rpm, kph        float64
		fuel, soc, odo  float64
		until           time.Time
		gapUntil, hiRes time.Time
	}{fuel: 50, soc: 40, odo: 1000}
	for at, i := base, 0; at.Before(base.Add(48 * time.Hour)); i++ {
		if !at.Before(state.until) { // a new phase
			switch rng.IntN(7) {
			case 0, 1: // parked
				state.on, state.moving, state.rpm, state.kph = false, false, 0, 0
			case 2: // idling
				state.on, state.moving, state.rpm, state.kph = true, false, 700+float64(rng.IntN(200)), 0
			case 3: // crawling at idle engine speed
				state.on, state.moving, state.rpm, state.kph = true, true, 900, 5
			case 4, 5: // driving
				state.on, state.moving, state.rpm, state.kph = true, true, 2000, 60
			case 6: // refuelling or charging, parked
				state.on, state.moving, state.rpm, state.kph = false, false, 0, 0
				if rng.IntN(2) == 0 {
					state.fuel = min(100, state.fuel+30)
				} else {
					state.charging = true
				}
			}
			state.charging = state.charging && !state.on
			state.until = at.Add(time.Duration(1+rng.IntN(40)) * time.Minute)
			if rng.IntN(10) == 0 {
				state.gapUntil = at.Add(time.Duration(2+rng.IntN(10)) * time.Minute)
			}
			state.hiRes = at.Add(time.Duration(rng.IntN(3)) * time.Minute)
		}
		step := 20 * time.Second
		if at.Before(state.hiRes) {
			step = time.Second
		}
		if at.Before(state.gapUntil) {
			at = at.Add(step)
			continue
		}
		kph := state.kph
		if state.charging {
			state.soc = min(100, state.soc+0.4)
		} else if state.moving {
			state.soc = math.Max(5, state.soc-0.02)
		}
		if state.moving {
			kph += float64(rng.IntN(3))
			state.odo += kph * step.Hours()
			state.fuel = math.Max(0, state.fuel-0.01)
		}
		on := state.on
		if on && rng.IntN(60) == 0 {
			on = false // a flap
		}
		sigs := []telemetry.EventSignal{
			{Name: "isIgnitionOn", Timestamp: at, Value: on},
			{Name: "speed", Timestamp: at, Value: kph},
			{Name: "powertrainCombustionEngineSpeed", Timestamp: at, Value: state.rpm},
			{Name: "powertrainFuelSystemRelativeLevel", Timestamp: at, Value: math.Round(state.fuel)},
			{Name: "powertrainTractionBatteryStateOfChargeCurrent", Timestamp: at, Value: math.Round(state.soc)},
			{Name: "powertrainTransmissionTravelledDistance", Timestamp: at, Value: math.Round(state.odo*10) / 10},
		}
		if rng.IntN(3) == 0 {
			sigs = sigs[:2+rng.IntN(4)]
		}
		ev, err := telemetry.NewEvent(src, 1, strconv.Itoa(i), at, sigs)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &telemetry.Record{Source: src, ID: strconv.Itoa(i), VehicleID: 1, Time: at.UnixMilli(), Received: at.UnixMilli(), Event: ev})
		at = at.Add(step)
	}
	cut := len(recs) * 9 / 10
	if _, err := tel.Write(ctx, recs[:cut]); err != nil {
		t.Fatal(err)
	}
	if _, err := tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tel.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tel.Write(ctx, recs[cut:]); err != nil { // the last hours stale
		t.Fatal(err)
	}
	if _, err := tel.Index(ctx); err != nil {
		t.Fatal(err)
	}
	now := base.Add(48 * time.Hour)
	q := (*queryResolver)(newResolver(Config{Telemetry: tel, Catalog: telemetry.DefaultCatalog, Now: func() time.Time { return now }}))

	values := func(signal string, lo, hi int64) []segment.Point {
		var out []segment.Point
		s, _ := telemetry.DefaultCatalog.Lookup(signal)
		err := tel.Aggregate(ctx, telemetry.Aggregation{Vehicle: 1, Signal: signal, Kind: s.Kind, From: lo, Step: 1, Lo: lo, Hi: hi,
			Aggs: []string{telemetry.AggLast}, NoRollup: true}, func(b int64, _ string, v any) {
			f, _ := telemetry.AsFloat(v)
			out = append(out, segment.Point{Time: lo + b, Value: f})
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(out, func(a, b segment.Point) int { return int(a.Time - b.Time) })
		return out
	}
	windows := func(lo, hi int64) []segment.Window {
		lo, hi = lo/segment.WindowMs*segment.WindowMs, (hi+segment.WindowMs-1)/segment.WindowMs*segment.WindowMs
		per := map[int64]*segment.Window{}
		for _, s := range telemetry.DefaultCatalog.Signals {
			if s.Kind != telemetry.KindNumber && s.Kind != telemetry.KindBool {
				continue
			}
			for _, p := range values(s.Name, lo, hi) {
				m := p.Time / segment.WindowMs * segment.WindowMs
				w := per[m]
				if w == nil {
					w = &segment.Window{Start: m}
					per[m] = w
				}
				w.Count++
			}
			seen := map[int64]bool{}
			for _, p := range values(s.Name, lo, hi) {
				m := p.Time / segment.WindowMs * segment.WindowMs
				if !seen[m] {
					seen[m] = true
					per[m].Distinct++
				}
			}
		}
		var out []segment.Window
		for _, w := range per {
			out = append(out, *w)
		}
		slices.SortFunc(out, func(a, b segment.Window) int { return int(a.Start - b.Start) })
		return out
	}
	configs := []segment.Config{segment.DefaultConfig,
		{MaxGapSeconds: 60, MinSegmentDurationSeconds: 60, SignalCountThreshold: 3, MaxIdleRpm: 800, MinIncreasePercent: 5, Given: true},
		{MaxGapSeconds: 900, MinSegmentDurationSeconds: 120, SignalCountThreshold: 1, MaxIdleRpm: 3000, MinIncreasePercent: 20, Given: true}}
	ranges := [][2]time.Duration{{0, 48 * time.Hour}, {7*time.Hour + 13*time.Minute + 7*time.Second, 31 * time.Hour}, {40 * time.Hour, 48 * time.Hour}}
	found := map[segment.Mechanism]int{}
	for _, m := range []segment.Mechanism{segment.Ignition, segment.Frequency, segment.ChangePoint, segment.Idling, segment.Refuel, segment.Recharge} {
		for ci, cfg := range configs {
			for _, r := range ranges {
				from, to := base.Add(r[0]), base.Add(r[1])
				got, err := q.detect(ctx, 1, time.Time{}, m, cfg, from, to)
				if err != nil {
					t.Fatal(err)
				}
				lo, hi := from.Add(-segment.Lookback(m, cfg)).UnixMilli(), to.UnixMilli()
				in := segment.Input{Ignition: values("isIgnitionOn", lo, hi), RPM: values("powertrainCombustionEngineSpeed", lo, hi),
					Speed: values("speed", lo, hi), Fuel: values("powertrainFuelSystemRelativeLevel", lo, hi),
					SoC: values("powertrainTractionBatteryStateOfChargeCurrent", lo, hi), Odometer: values("powertrainTransmissionTravelledDistance", lo, hi)}
				if m == segment.Frequency || m == segment.ChangePoint {
					in.Windows = windows(lo, hi)
				}
				want := segment.Detect(m, in, from.UnixMilli(), hi, now.UnixMilli(), cfg)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s, config %d, %s–%s:\nfrom runs   %v\nfrom values %v", m, ci, r[0], r[1], got, want)
				}
				found[m] += len(want)
			}
		}
	}
	for _, m := range []segment.Mechanism{segment.Ignition, segment.Frequency, segment.ChangePoint, segment.Idling, segment.Refuel, segment.Recharge} {
		if found[m] == 0 {
			t.Errorf("%s found nothing in any range: the car does too little", m)
		}
	}
	t.Logf("segments found: %v", found)
}
