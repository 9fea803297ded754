package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/telemetry"
)

// Reader is a telemetry store under test for reads: written through telemetry.Store, read through
// telemetry.Reader.
type Reader interface {
	Telemetry
	telemetry.Reader
}

// The read suite's data set: vehicle 1 has six records from source a within three minutes of t0 (two of
// them measured at the same millisecond), vehicle 2 one record from source b at the same time (none of
// its values may leak into vehicle 1's answers), vehicle 3 one record of 300 samples, large enough that
// a store compressing big events does so.
var (
	readA  = common.HexToAddress("0x00000000000000000000000000000000000000aa")
	readB  = common.HexToAddress("0x00000000000000000000000000000000000000bb")
	readT0 = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
)

// at is t0 plus s seconds, in unix ms.
func at(s float64) int64 { return readT0.UnixMilli() + int64(s*1000) }

type readRecord struct {
	vehicle uint64
	source  common.Address
	id      string
	secs    float64
	signals []telemetry.EventSignal
}

func readData() []readRecord {
	sig := func(name string, secs float64, v any) telemetry.EventSignal {
		return telemetry.EventSignal{Name: name, Timestamp: time.UnixMilli(at(secs)), Value: v}
	}
	loc := func(lat, lon, hdop float64) telemetry.Location {
		return telemetry.Location{Latitude: lat, Longitude: lon, HDOP: hdop}
	}
	recs := []readRecord{
		{1, readA, "r1", 10, []telemetry.EventSignal{sig("speed", 10, 10.0), sig("powertrainType", 10, "COMBUSTION"),
			sig("currentLocationCoordinates", 10, loc(52, 13, 1)), sig("isIgnitionOn", 10, true)}},
		{1, readA, "r2", 20, []telemetry.EventSignal{sig("speed", 20, 30.0), sig("powertrainType", 20, "ELECTRIC"),
			sig("currentLocationCoordinates", 20, loc(53, 14, 3))}},
		{1, readA, "r2b", 20, []telemetry.EventSignal{sig("exteriorAirTemperature", 20, 4.5)}},
		{1, readA, "r3", 70, []telemetry.EventSignal{sig("speed", 70, 20.0), sig("powertrainType", 70, "ELECTRIC"),
			sig("isIgnitionOn", 70, false)}},
		{1, readA, "r4", 80, []telemetry.EventSignal{sig("speed", 80, 50.0), sig("powertrainType", 80, "HYBRID"),
			sig("currentLocationCoordinates", 80, loc(54, 15, 5))}},
		{1, readA, "r5", 130, []telemetry.EventSignal{sig("speed", 130, 40.0), sig("powertrainType", 130, "COMBUSTION")}},
		{2, readB, "x", 20, []telemetry.EventSignal{sig("speed", 20, 99.0), sig("powertrainType", 20, "BEV"),
			sig("currentLocationCoordinates", 20, loc(1, 2, 3)), sig("isIgnitionOn", 20, true)}},
	}
	// vehicle 4 has two sources at once (a device of each kind): a sends speed and the temperature, b
	// speed, each newest at another time
	recs = append(recs,
		readRecord{4, readA, "s1", 10, []telemetry.EventSignal{sig("speed", 10, 10.0), sig("exteriorAirTemperature", 10, 5.0)}},
		readRecord{4, readB, "s2", 20, []telemetry.EventSignal{sig("speed", 20, 20.0)}},
		readRecord{4, readA, "s3", 30, []telemetry.EventSignal{sig("speed", 30, 30.0)}},
		readRecord{4, readB, "s4", 40, []telemetry.EventSignal{sig("speed", 40, 40.0)}})
	big := readRecord{vehicle: 3, source: readA, id: "big", secs: 300}
	for i := range 300 {
		big.signals = append(big.signals, sig("speed", float64(i), float64(i%120)))
	}
	return append(recs, big)
}

// build turns a readRecord into a parsed record, with received time and pairing index derived from it.
func (r readRecord) build(t testing.TB) *telemetry.Record {
	t.Helper()
	ev, err := telemetry.NewEvent(r.source, r.vehicle, r.id, time.UnixMilli(at(r.secs)), r.signals)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := telemetry.DefaultCatalog.Parse(&telemetry.Submission{Event: ev, Signature: make([]byte, 65)}, at(r.secs)+1000)
	if err != nil {
		t.Fatalf("building record %s: %v", r.id, err)
	}
	rec.Received = at(r.secs) + 5
	rec.Pairing.FromIndex = int64(10 + r.vehicle)
	rec.Signature[0], rec.Signature[64] = byte(len(r.id)), 28
	return rec
}

// TestReader runs the read cases against one data set: open returns a new, empty store, and settle (nil
// when Write alone suffices) brings its derived tables up to date with what was written, as its indexer
// would. The expectations are literal: every store must give exactly these answers.
func TestReader(t *testing.T, open func(t *testing.T) Reader, settle func(ctx context.Context, s Reader) error) {
	ctx := context.Background()
	s := open(t)
	data := readData()
	var recs []*telemetry.Record
	for _, r := range data {
		recs = append(recs, r.build(t))
	}
	// Two batches, the second holding the two records measured at the same time in order.
	for _, batch := range [][]*telemetry.Record{recs[:1], recs[1:]} {
		out, err := s.Write(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, st := range out {
			if st != telemetry.StatusAccepted {
				t.Fatalf("record %s: %s", batch[i].ID, st)
			}
		}
	}
	if settle != nil {
		if err := settle(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("aggregations", func(t *testing.T) { testAggregations(t, s) })
	t.Run("aggregations over spans", func(t *testing.T) { testAggregateSpans(t, s) })
	t.Run("latest", func(t *testing.T) { testLatest(t, s) })
	t.Run("latest from a source", func(t *testing.T) { testLatestFrom(t, s) })
	t.Run("summary", func(t *testing.T) { testSummary(t, s) })
	t.Run("records", func(t *testing.T) { testRecords(t, s, recs) })
	t.Run("runs", func(t *testing.T) { testRuns(t, s) })
	t.Run("active", func(t *testing.T) { testActive(t, s) })
}

func testRuns(t *testing.T, s Reader) {
	ctx := context.Background()
	tests := []struct {
		name    string
		vehicle uint64
		signal  string
		lo, hi  float64 // seconds after t0
		cuts    []float64
		maxGap  int64
		want    []string // "start-end first-last count", times in seconds after t0
	}{
		{"every value its own class", 1, "speed", 0, 200, nil, 0,
			[]string{"10-10 10-10 1", "20-20 30-30 1", "70-70 20-20 1", "80-80 50-50 1", "130-130 40-40 1"}},
		{"classes", 1, "speed", 0, 200, []float64{25}, 0,
			[]string{"10-10 10-10 1", "20-20 30-30 1", "70-70 20-20 1", "80-130 50-40 2"}},
		{"split at gaps", 1, "speed", 0, 200, []float64{25}, 30_000,
			[]string{"10-10 10-10 1", "20-20 30-30 1", "70-70 20-20 1", "80-80 50-50 1", "130-130 40-40 1"}},
		{"a boolean", 1, "isIgnitionOn", 0, 200, nil, 0, []string{"10-10 1-1 1", "70-70 0-0 1"}},
		{"the range", 1, "speed", 15, 80, nil, 0, []string{"20-20 30-30 1", "70-70 20-20 1"}},
		{"another vehicle", 2, "speed", 0, 200, nil, 0, []string{"20-20 99-99 1"}},
		{"whole minutes of one class", 3, "speed", 0, 300, []float64{59.5}, 0,
			[]string{"0-59 0-59 60", "60-119 60-119 60", "120-179 0-59 60", "180-239 60-119 60", "240-299 0-59 60"}},
		{"whole minutes, gaps allowed", 3, "speed", 0, 300, []float64{59.5}, 60_000,
			[]string{"0-59 0-59 60", "60-119 60-119 60", "120-179 0-59 60", "180-239 60-119 60", "240-299 0-59 60"}},
		{"unaligned ends", 3, "speed", 30.5, 250, []float64{59.5}, 0,
			[]string{"31-59 31-59 29", "60-119 60-119 60", "120-179 0-59 60", "180-239 60-119 60", "240-249 0-9 10"}},
		{"one class", 3, "speed", 0, 300, []float64{1000}, 0, []string{"0-299 0-59 300"}},
		{"never measured", 1, "powertrainFuelSystemRelativeLevel", 0, 200, nil, 0, nil},
		{"empty range", 1, "speed", 100, 100, nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := s.Runs(ctx, telemetry.RunsQuery{Vehicle: tt.vehicle, Signal: tt.signal, Lo: at(tt.lo), Hi: at(tt.hi), Cuts: tt.cuts, MaxGap: tt.maxGap})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range runs {
				got = append(got, fmt.Sprintf("%g-%g %g-%g %d", float64(r.Start-readT0.UnixMilli())/1000, float64(r.End-readT0.UnixMilli())/1000,
					r.First, r.Last, r.Count))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func testActive(t *testing.T, s Reader) {
	ctx := context.Background()
	tests := []struct {
		name                 string
		vehicle              uint64
		lo, hi               float64 // seconds after t0
		minCount, minSignals int
		want                 []string // "start-end" in seconds after t0
	}{
		// vehicle 1's minutes: 4 values of 3 signals, 3 of 2, 1 of 1 (strings and locations do not count)
		{"any value", 1, 0, 180, 1, 1, []string{"0-180"}},
		{"two signals", 1, 0, 180, 1, 2, []string{"0-120"}},
		{"three values", 1, 0, 180, 3, 2, []string{"0-120"}},
		{"four values", 1, 0, 180, 4, 2, []string{"0-60"}},
		{"hours around them", 1, -3600 * 6, 3600 * 2, 3, 1, []string{"0-120"}},
		{"the range", 1, 60, 120, 1, 1, []string{"60-120"}},
		{"one signal", 3, 0, 300, 60, 1, []string{"0-300"}},
		{"not two", 3, 0, 300, 1, 2, nil},
		{"another vehicle", 2, 0, 180, 1, 1, []string{"0-60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, err := s.Active(ctx, telemetry.ActiveQuery{Vehicle: tt.vehicle, Lo: at(tt.lo), Hi: at(tt.hi), MinCount: tt.minCount, MinSignals: tt.minSignals})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sp := range spans {
				got = append(got, fmt.Sprintf("%g-%g", float64(sp.Start-readT0.UnixMilli())/1000, float64(sp.End-readT0.UnixMilli())/1000))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// testAggregateSpans holds telemetry.AggregateSpans (a store's SpanAggregator, or one Aggregate per span)
// to the answers one bucket per span gives.
func testAggregateSpans(t *testing.T, s Reader) {
	ctx := context.Background()
	stats := []string{telemetry.AggFirst, telemetry.AggLast, telemetry.AggMin, telemetry.AggMax, telemetry.AggAvg, telemetry.AggCount}
	sp := func(lo, hi float64) telemetry.Span { return telemetry.Span{Start: at(lo), End: at(hi)} }
	tests := []struct {
		name  string
		a     telemetry.Aggregation
		spans []telemetry.Span
		want  []string // "span/AGG=value", sorted
	}{
		{"numbers over spans: an unaligned one, one of whole minutes and ends, none, an empty one, a day, a millisecond",
			telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber, Aggs: stats},
			[]telemetry.Span{sp(0, 25), sp(60, 135), sp(200, 300), sp(30, 30), sp(-21600, 64800), sp(10, 10.001)}, []string{
				"0/AVG=20", "0/COUNT=2", "0/FIRST=10", "0/LAST=30", "0/MAX=30", "0/MIN=10",
				"1/AVG=36.666666666666664", "1/COUNT=3", "1/FIRST=20", "1/LAST=40", "1/MAX=50", "1/MIN=20",
				"4/AVG=30", "4/COUNT=5", "4/FIRST=10", "4/LAST=40", "4/MAX=50", "4/MIN=10",
				"5/AVG=10", "5/COUNT=1", "5/FIRST=10", "5/LAST=10", "5/MAX=10", "5/MIN=10"}},
		{"a span that leaves out some of a minute's values", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			Aggs: stats}, []telemetry.Span{sp(15, 90)}, []string{
			"0/AVG=33.333333333333336", "0/COUNT=3", "0/FIRST=30", "0/LAST=50", "0/MAX=50", "0/MIN=20"}},
		{"locations, first and last", telemetry.Aggregation{Vehicle: 1, Signal: "currentLocationCoordinates", Kind: telemetry.KindLocation,
			Aggs: []string{telemetry.AggFirst, telemetry.AggLast}}, []telemetry.Span{sp(15, 90), sp(0, 11)}, []string{
			"0/FIRST=loc(53,14,3)", "0/LAST=loc(54,15,5)", "1/FIRST=loc(52,13,1)", "1/LAST=loc(52,13,1)"}},
		{"booleans", telemetry.Aggregation{Vehicle: 1, Signal: "isIgnitionOn", Kind: telemetry.KindBool,
			Aggs: []string{telemetry.AggMax, telemetry.AggLast}}, []telemetry.Span{sp(0, 60), sp(0, 120)}, []string{
			"0/LAST=1", "0/MAX=1", "1/LAST=0", "1/MAX=1"}},
		{"another vehicle's values stay out", telemetry.Aggregation{Vehicle: 2, Signal: "speed", Kind: telemetry.KindNumber,
			Aggs: []string{telemetry.AggMax}}, []telemetry.Span{sp(0, 25), sp(25, 200)}, []string{"0/MAX=99"}},
		{"a signal no one measured", telemetry.Aggregation{Vehicle: 1, Signal: "powertrainTractionBatteryStateOfChargeCurrent",
			Kind: telemetry.KindNumber, Aggs: []string{telemetry.AggFirst}}, []telemetry.Span{sp(0, 300)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := telemetry.AggregateSpans(ctx, s, tt.a, tt.spans, func(i int, agg string, v any) {
				if _, ok := v.(int64); ok {
					t.Errorf("span %d %s: int64 %v, want float64", i, agg, v)
				}
				got = append(got, fmt.Sprintf("%d/%s=%s", i, agg, show(tt.a.Kind, v)))
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// show renders a value as the suite compares it: numbers with %g (whatever their Go type), strings
// quoted, locations as loc(lat,lon,hdop).
func show(kind telemetry.Kind, v any) string {
	switch kind {
	case telemetry.KindLocation:
		b, ok := v.([]byte)
		if !ok {
			return fmt.Sprintf("%T(%v)", v, v)
		}
		lat, lon, hdop, err := telemetry.DecodeLocation(b)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("loc(%g,%g,%g)", lat, lon, hdop)
	case telemetry.KindNumber, telemetry.KindBool:
		switch v.(type) {
		case float64, int64:
			return fmt.Sprint(v)
		}
	case telemetry.KindString, telemetry.KindStrings:
		if x, ok := v.(string); ok {
			return fmt.Sprintf("%q", x)
		}
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func testAggregations(t *testing.T, s Reader) {
	ctx := context.Background()
	minute, day := int64(60_000), int64(86_400_000)
	dayStart := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).UnixMilli()
	num := []string{telemetry.AggAvg, telemetry.AggMin, telemetry.AggMax, telemetry.AggFirst, telemetry.AggLast, telemetry.AggMedian, telemetry.AggRand}
	str := []string{telemetry.AggTop, telemetry.AggUnique, telemetry.AggFirst, telemetry.AggLast, telemetry.AggRand}
	loc := []string{telemetry.AggMean, telemetry.AggFirst, telemetry.AggLast, telemetry.AggRand}
	tests := []struct {
		name string
		a    telemetry.Aggregation
		want map[string]string // "bucket/AGG" → value as show renders it (RAND: the value telemetry.RandIndex picks)
	}{
		{"numbers in minute buckets", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: num}, map[string]string{
			"0/AVG": "20", "0/MIN": "10", "0/MAX": "30", "0/FIRST": "10", "0/LAST": "30", "0/MED": "20", "0/RAND": "10",
			"1/AVG": "35", "1/MIN": "20", "1/MAX": "50", "1/FIRST": "20", "1/LAST": "50", "1/MED": "35", "1/RAND": "50",
			"2/AVG": "40", "2/MIN": "40", "2/MAX": "40", "2/FIRST": "40", "2/LAST": "40", "2/MED": "40", "2/RAND": "40",
		}},
		{"numbers in buckets that are no roll-up unit", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: 90_000, Lo: at(0), Hi: at(180), Aggs: num}, map[string]string{
			"0/AVG": "27.5", "0/MIN": "10", "0/MAX": "50", "0/FIRST": "10", "0/LAST": "50", "0/MED": "25", "0/RAND": "20",
			"1/AVG": "40", "1/MIN": "40", "1/MAX": "40", "1/FIRST": "40", "1/LAST": "40", "1/MED": "40", "1/RAND": "40",
		}},
		{"numbers in one day's bucket", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: dayStart, Step: day, Lo: dayStart, Hi: dayStart + day, Aggs: num}, map[string]string{
			"0/AVG": "30", "0/MIN": "10", "0/MAX": "50", "0/FIRST": "10", "0/LAST": "40", "0/MED": "30", "0/RAND": "20",
		}},
		{"the owner's cut-off inside the first bucket leaves out what came before it", telemetry.Aggregation{Vehicle: 1, Signal: "speed",
			Kind: telemetry.KindNumber, From: at(0), Step: minute, Lo: at(15), Hi: at(180), Aggs: num}, map[string]string{
			"0/AVG": "30", "0/MIN": "30", "0/MAX": "30", "0/FIRST": "30", "0/LAST": "30", "0/MED": "30", "0/RAND": "30",
			"1/AVG": "35", "1/MIN": "20", "1/MAX": "50", "1/FIRST": "20", "1/LAST": "50", "1/MED": "35", "1/RAND": "50",
			"2/AVG": "40", "2/MIN": "40", "2/MAX": "40", "2/FIRST": "40", "2/LAST": "40", "2/MED": "40", "2/RAND": "40",
		}},
		{"the cut-off of a day's bucket", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: dayStart, Step: day, Lo: at(75), Hi: dayStart + day, Aggs: num}, map[string]string{
			"0/AVG": "45", "0/MIN": "40", "0/MAX": "50", "0/FIRST": "50", "0/LAST": "40", "0/MED": "45", "0/RAND": "40",
		}},
		{"the end of the range is left out", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: minute, Lo: at(0), Hi: at(80), Aggs: []string{telemetry.AggMax, telemetry.AggLast}}, map[string]string{
			"0/MAX": "30", "0/LAST": "30", "1/MAX": "20", "1/LAST": "20",
		}},
		{"counts per minute, as segment detection asks", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: []string{telemetry.AggCount}}, map[string]string{
			"0/COUNT": "2", "1/COUNT": "2", "2/COUNT": "1",
		}},
		{"counts with the other aggregations", telemetry.Aggregation{Vehicle: 1, Signal: "isIgnitionOn", Kind: telemetry.KindBool,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: []string{telemetry.AggMax, telemetry.AggCount, telemetry.AggLast}}, map[string]string{
			"0/MAX": "1", "0/COUNT": "1", "0/LAST": "1", "1/MAX": "0", "1/COUNT": "1", "1/LAST": "0",
		}},
		{"booleans", telemetry.Aggregation{Vehicle: 1, Signal: "isIgnitionOn", Kind: telemetry.KindBool,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: num}, map[string]string{
			"0/AVG": "1", "0/MIN": "1", "0/MAX": "1", "0/FIRST": "1", "0/LAST": "1", "0/MED": "1", "0/RAND": "1",
			"1/AVG": "0", "1/MIN": "0", "1/MAX": "0", "1/FIRST": "0", "1/LAST": "0", "1/MED": "0", "1/RAND": "0",
		}},
		{"strings", telemetry.Aggregation{Vehicle: 1, Signal: "powertrainType", Kind: telemetry.KindString,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: str}, map[string]string{
			"0/TOP": `"COMBUSTION"`, "0/UNIQUE": `"[\"COMBUSTION\",\"ELECTRIC\"]"`, "0/FIRST": `"COMBUSTION"`, "0/LAST": `"ELECTRIC"`, "0/RAND": `"COMBUSTION"`,
			"1/TOP": `"ELECTRIC"`, "1/UNIQUE": `"[\"ELECTRIC\",\"HYBRID\"]"`, "1/FIRST": `"ELECTRIC"`, "1/LAST": `"HYBRID"`, "1/RAND": `"HYBRID"`,
			"2/TOP": `"COMBUSTION"`, "2/UNIQUE": `"[\"COMBUSTION\"]"`, "2/FIRST": `"COMBUSTION"`, "2/LAST": `"COMBUSTION"`, "2/RAND": `"COMBUSTION"`,
		}},
		{"locations", telemetry.Aggregation{Vehicle: 1, Signal: "currentLocationCoordinates", Kind: telemetry.KindLocation,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: loc}, map[string]string{
			"0/MEAN": "loc(52.5,13.5,2)", "0/FIRST": "loc(52,13,1)", "0/LAST": "loc(53,14,3)", "0/RAND": "loc(52,13,1)",
			"1/MEAN": "loc(54,15,5)", "1/FIRST": "loc(54,15,5)", "1/LAST": "loc(54,15,5)", "1/RAND": "loc(54,15,5)",
		}},
		{"numbers kept by a filter, read from the values", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: num, Keep: func(v any) bool { f, ok := v.(float64); return ok && f > 15 }}, map[string]string{
			"0/AVG": "30", "0/MIN": "30", "0/MAX": "30", "0/FIRST": "30", "0/LAST": "30", "0/MED": "30", "0/RAND": "30",
			"1/AVG": "35", "1/MIN": "20", "1/MAX": "50", "1/FIRST": "20", "1/LAST": "50", "1/MED": "35", "1/RAND": "50",
			"2/AVG": "40", "2/MIN": "40", "2/MAX": "40", "2/FIRST": "40", "2/LAST": "40", "2/MED": "40", "2/RAND": "40",
		}},
		{"a filter that keeps nothing gives no buckets", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: num, Keep: func(any) bool { return false }}, map[string]string{}},
		{"locations kept by a filter", telemetry.Aggregation{Vehicle: 1, Signal: "currentLocationCoordinates", Kind: telemetry.KindLocation,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: loc, Keep: func(v any) bool {
				b, _ := v.([]byte)
				lat, _, _, err := telemetry.DecodeLocation(b)
				return err == nil && lat >= 53
			}}, map[string]string{
			"0/MEAN": "loc(53,14,3)", "0/FIRST": "loc(53,14,3)", "0/LAST": "loc(53,14,3)", "0/RAND": "loc(53,14,3)",
			"1/MEAN": "loc(54,15,5)", "1/FIRST": "loc(54,15,5)", "1/LAST": "loc(54,15,5)", "1/RAND": "loc(54,15,5)",
		}},
		{"another vehicle's values", telemetry.Aggregation{Vehicle: 2, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: []string{telemetry.AggAvg}}, map[string]string{"0/AVG": "99"}},
		{"a signal never measured", telemetry.Aggregation{Vehicle: 1, Signal: "obdDTCList", Kind: telemetry.KindStrings,
			From: at(0), Step: minute, Lo: at(0), Hi: at(180), Aggs: str}, map[string]string{}},
		{"an empty range", telemetry.Aggregation{Vehicle: 1, Signal: "speed", Kind: telemetry.KindNumber,
			From: at(0), Step: minute, Lo: at(180), Hi: at(180), Aggs: num}, map[string]string{}},
	}
	for _, tt := range tests {
		for _, noRollup := range []bool{false, true} {
			name := tt.name
			if noRollup {
				name += ", from the values alone"
			}
			t.Run(name, func(t *testing.T) {
				a := tt.a
				a.NoRollup = noRollup
				got := map[string]string{}
				err := s.Aggregate(ctx, a, func(b int64, agg string, v any) {
					k := fmt.Sprintf("%d/%s", b, agg)
					if _, dup := got[k]; dup {
						t.Errorf("%s put twice", k)
					}
					got[k] = show(a.Kind, v)
				})
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, tt.want) {
					t.Errorf("got  %s\nwant %s", sorted(got), sorted(tt.want))
				}
			})
		}
	}
}

func sorted(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%s ", k, m[k])
	}
	return b.String()
}

func testLatest(t *testing.T, s Reader) {
	ctx := context.Background()
	tests := []struct {
		name    string
		vehicle uint64
		since   int64
		want    []string // "name@seconds=value", sorted
	}{
		{"every signal's newest value", 1, 0, []string{"currentLocationCoordinates@80=loc(54,15,5)", "exteriorAirTemperature@20=4.5",
			"isIgnitionOn@70=0", "powertrainType@130=\"COMBUSTION\"", "speed@130=40"}},
		{"the cut-off leaves out signals last measured before it", 1, at(75), []string{"currentLocationCoordinates@80=loc(54,15,5)",
			"powertrainType@130=\"COMBUSTION\"", "speed@130=40"}},
		{"a value measured at the cut-off is in", 1, at(130), []string{"powertrainType@130=\"COMBUSTION\"", "speed@130=40"}},
		{"nothing after the last value", 1, at(131), nil},
		{"another vehicle", 2, 0, []string{"currentLocationCoordinates@20=loc(1,2,3)", "isIgnitionOn@20=1", "powertrainType@20=\"BEV\"", "speed@20=99"}},
		{"a vehicle with two sources: the newest of either", 4, 0, []string{"exteriorAirTemperature@10=5", "speed@40=40"}},
		{"a vehicle without data", 9, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := s.Latest(ctx, tt.vehicle, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if got := latestStrings(t, rows); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// latestStrings shows latest rows as "name@seconds=value", sorted.
func latestStrings(t *testing.T, rows []telemetry.LatestRow) []string {
	t.Helper()
	var got []string
	for _, r := range rows {
		sig, ok := telemetry.DefaultCatalog.Lookup(r.Name)
		if !ok {
			t.Fatalf("latest row of unknown signal %q", r.Name)
		}
		got = append(got, fmt.Sprintf("%s@%g=%s", r.Name, float64(r.Time-readT0.UnixMilli())/1000, show(sig.Kind, r.Val)))
	}
	slices.Sort(got)
	return got
}

func testLatestFrom(t *testing.T, s Reader) {
	ctx := context.Background()
	tests := []struct {
		name    string
		vehicle uint64
		source  common.Address
		since   int64
		want    []string // "name@seconds=value", sorted
	}{
		{"the newest values a source sent, though another sent newer ones", 4, readA, 0, []string{"exteriorAirTemperature@10=5", "speed@30=30"}},
		{"the other source: only the signals it sent", 4, readB, 0, []string{"speed@40=40"}},
		{"the cut-off applies", 4, readA, at(20), []string{"speed@30=30"}},
		{"the only source of a vehicle: as Latest", 1, readA, 0, []string{"currentLocationCoordinates@80=loc(54,15,5)", "exteriorAirTemperature@20=4.5",
			"isIgnitionOn@70=0", "powertrainType@130=\"COMBUSTION\"", "speed@130=40"}},
		{"a source that never sent for the vehicle", 1, readB, 0, nil},
		{"a vehicle without data", 9, readA, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := s.LatestFrom(ctx, tt.vehicle, tt.source, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if got := latestStrings(t, rows); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func testSummary(t *testing.T, s Reader) {
	ctx := context.Background()
	tests := []struct {
		name    string
		vehicle uint64
		since   int64
		want    []string // "name count first-last" in seconds after t0, sorted
	}{
		{"every signal", 1, 0, []string{"currentLocationCoordinates 3 10-80", "exteriorAirTemperature 1 20-20", "isIgnitionOn 2 10-70",
			"powertrainType 5 10-130", "speed 5 10-130"}},
		{"since the cut-off", 1, at(75), []string{"currentLocationCoordinates 1 80-80", "powertrainType 2 80-130", "speed 2 80-130"}},
		{"another vehicle", 2, 0, []string{"currentLocationCoordinates 1 20-20", "isIgnitionOn 1 20-20", "powertrainType 1 20-20", "speed 1 20-20"}},
		{"nothing after the last value", 1, at(131), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sums, err := s.Summary(ctx, tt.vehicle, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range sums {
				got = append(got, fmt.Sprintf("%s %d %g-%g", x.Name, x.Count, float64(x.First-readT0.UnixMilli())/1000, float64(x.Last-readT0.UnixMilli())/1000))
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func testRecords(t *testing.T, s Reader, recs []*telemetry.Record) {
	ctx := context.Background()
	byID := map[string]*telemetry.Record{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	// page reads every page of q and returns the ids, page by page.
	pages := func(t *testing.T, q telemetry.RecordsQuery) [][]string {
		var out [][]string
		for range 20 {
			page, err := s.Records(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range page {
				want := byID[r.ID]
				if want == nil {
					t.Fatalf("record %q was never written", r.ID)
				}
				if r.Seq <= 0 || r.Source != want.Source || r.Vehicle != want.VehicleID || r.Time != want.Time || r.Received != want.Received ||
					r.Pairing != want.Pairing.FromIndex || string(r.Event) != string(want.Event) || string(r.Signature) != string(want.Signature[:]) {
					t.Fatalf("record %s came back as %+v", r.ID, r)
				}
				ids = append(ids, r.ID)
			}
			out = append(out, ids)
			if len(page) < q.Limit {
				return out
			}
			last := page[len(page)-1]
			q.AfterTime, q.AfterSeq = last.Time, last.Seq
		}
		t.Fatal("more than 20 pages")
		return nil
	}
	tests := []struct {
		name string
		q    telemetry.RecordsQuery
		want [][]string
	}{
		{"pages of two in (time, seq) order, the same time split across pages", telemetry.RecordsQuery{Vehicle: 1, Lo: at(0), Hi: at(180),
			AfterTime: at(0), Limit: 2}, [][]string{{"r1", "r2"}, {"r2b", "r3"}, {"r4", "r5"}, nil}},
		{"one page", telemetry.RecordsQuery{Vehicle: 1, Lo: at(0), Hi: at(180), AfterTime: at(0), Limit: 100},
			[][]string{{"r1", "r2", "r2b", "r3", "r4", "r5"}}},
		{"the cut-off leaves out earlier records", telemetry.RecordsQuery{Vehicle: 1, Lo: at(15), Hi: at(180), AfterTime: at(15), Limit: 3},
			[][]string{{"r2", "r2b", "r3"}, {"r4", "r5"}}},
		{"a record measured at the end of the range is left out", telemetry.RecordsQuery{Vehicle: 1, Lo: at(0), Hi: at(80), AfterTime: at(0), Limit: 10},
			[][]string{{"r1", "r2", "r2b", "r3"}}},
		{"another vehicle", telemetry.RecordsQuery{Vehicle: 2, Lo: at(0), Hi: at(180), AfterTime: at(0), Limit: 10}, [][]string{{"x"}}},
		{"a large record comes back as the bytes signed", telemetry.RecordsQuery{Vehicle: 3, Lo: at(0), Hi: at(600), AfterTime: at(0), Limit: 10},
			[][]string{{"big"}}},
		{"an empty range", telemetry.RecordsQuery{Vehicle: 1, Lo: at(180), Hi: at(180), AfterTime: at(180), Limit: 10}, [][]string{nil}},
	}
	if n := len(byID["big"].Event); n < 8192 {
		t.Fatalf("the large record is only %d bytes", n)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pages(t, tt.q)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
