package series_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
	"github.com/glovebox/glovebox/telemetry/series"
)

const h0 = int64(1_793_491_200_000) // 2026-11-01T00:00:00Z

func TestHourIsTheStartOfTheUTCHour(t *testing.T) {
	for _, tc := range []struct{ t, want int64 }{
		{h0, h0}, {h0 + 1, h0}, {h0 + series.HourMs - 1, h0}, {h0 + series.HourMs, h0 + series.HourMs},
		{0, 0}, {-1, -series.HourMs}, {-series.HourMs, -series.HourMs},
	} {
		if got := series.Hour(tc.t); got != tc.want {
			t.Errorf("Hour(%d) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

func TestMergeKeepsTheFirstValueStoredAtEachMillisecond(t *testing.T) {
	p := func(t int64, v float64) series.Point { return series.Point{T: t, V: v} }
	for _, tc := range []struct {
		name     string
		old, add []series.Point
		want     string
	}{
		{"into nothing, out of order", nil, []series.Point{p(3, 30), p(1, 10), p(2, 20)}, "[1:10 2:20 3:30]"},
		{"between and around", []series.Point{p(2, 20), p(4, 40)}, []series.Point{p(5, 50), p(1, 10), p(3, 30)}, "[1:10 2:20 3:30 4:40 5:50]"},
		{"a time already stored keeps its value", []series.Point{p(2, 20)}, []series.Point{p(2, 99), p(3, 30)}, "[2:20 3:30]"},
		{"of two new values at one time the first wins", nil, []series.Point{p(2, 21), p(1, 10), p(2, 22)}, "[1:10 2:21]"},
		{"nothing new", []series.Point{p(1, 10)}, nil, "[1:10]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			for i, x := range series.Merge(tc.old, tc.add) {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%d:%v", x.T, x.V)
			}
			if got = "[" + got + "]"; got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEveryKindRoundTripsWithItsSummary(t *testing.T) {
	loc := telemetry.EncodeLocation(52.52, 13.405, 0.9)
	for _, tc := range []struct {
		name string
		kind telemetry.Kind
		pts  []series.Point
		want series.Chunk // without Data and Sum
		sum  float64
	}{
		{"numbers", telemetry.KindNumber, []series.Point{{h0, 0.1}, {h0 + 1000, 0.2}, {h0 + 2000, 0.3}},
			series.Chunk{Start: h0, End: h0 + 2000, Count: 3, First: 0.1, Last: 0.3, Min: 0.1, Max: 0.3}, 0.6},
		{"booleans", telemetry.KindBool, []series.Point{{h0, 1.0}, {h0 + 5, 0.0}},
			series.Chunk{Start: h0, End: h0 + 5, Count: 2, First: 1.0, Last: 0.0, Min: 0, Max: 1}, 1},
		{"strings", telemetry.KindString, []series.Point{{h0, "ICE"}, {h0 + 10, "ICE"}, {h0 + 20, "BEV"}},
			series.Chunk{Start: h0, End: h0 + 20, Count: 3, First: "ICE", Last: "BEV"}, 0},
		{"string lists as JSON", telemetry.KindStrings, []series.Point{{h0, `["a","b"]`}},
			series.Chunk{Start: h0, End: h0, Count: 1, First: `["a","b"]`, Last: `["a","b"]`}, 0},
		{"locations", telemetry.KindLocation, []series.Point{{h0 + 7, loc}},
			series.Chunk{Start: h0 + 7, End: h0 + 7, Count: 1, First: loc, Last: loc}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := series.Encode(tc.kind, tc.pts)
			if err != nil || len(cs) != 1 {
				t.Fatalf("Encode: %d chunks, %v", len(cs), err)
			}
			c := cs[0]
			if got := c.Sum.Float64(); got != tc.sum {
				t.Errorf("sum %v, want %v", got, tc.sum)
			}
			got, err := series.Decode(tc.kind, c.Data, nil)
			if err != nil || !reflect.DeepEqual(got, tc.pts) {
				t.Errorf("Decode: %v %v, want %v", got, err, tc.pts)
			}
			c.Data, c.Sum = nil, chunk.Sum{}
			if !reflect.DeepEqual(c, tc.want) {
				t.Errorf("summary %+v, want %+v", c, tc.want)
			}
		})
	}
}

func TestAnHourOfManyValuesSplitsIntoChunksOfAtMostMaxValues(t *testing.T) {
	pts := make([]series.Point, chunk.MaxValues*2+5)
	for i := range pts {
		pts[i] = series.Point{T: h0 + int64(i)*100, V: float64(i)}
	}
	cs, err := series.Encode(telemetry.KindNumber, pts)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	var back []series.Point
	for _, c := range cs {
		counts = append(counts, c.Count)
		if back, err = series.Decode(telemetry.KindNumber, c.Data, back); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(counts, []int{16384, 16384, 5}) || cs[1].Start != h0+16384*100 || !reflect.DeepEqual(back, pts) {
		t.Fatalf("counts %v, second start %d, %d values back", counts, cs[1].Start, len(back))
	}
}

func TestBadInputIsAnErrorNeverAPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind telemetry.Kind
		pts  []series.Point
		want string
	}{
		{"two hours", telemetry.KindNumber, []series.Point{{h0, 1.0}, {h0 + series.HourMs, 2.0}},
			"values from 1793491200000 to 1793494800000 span more than the UTC hour from 1793491200000"},
		{"a string among numbers", telemetry.KindNumber, []series.Point{{h0, "x"}}, "a number value at 1793491200000 is a string, not a float64"},
		{"a number among strings", telemetry.KindString, []series.Point{{h0, 1.0}}, "a string value at 1793491200000 is a float64, not a string"},
		{"a short location", telemetry.KindLocation, []series.Point{{h0, []byte{1}}}, "location at 1793491200000: a stored location is 24 bytes, not 1"},
		{"times not increasing", telemetry.KindNumber, []series.Point{{h0 + 5, 1.0}, {h0 + 5, 2.0}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := series.Encode(tc.kind, tc.pts)
			if err == nil || (tc.want != "" && err.Error() != tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := series.Decode(telemetry.KindNumber, []byte{0, 5, 1}, nil); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("a truncated chunk: %v, want ErrCorrupt", err)
	}
}
