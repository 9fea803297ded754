package series_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/glovebox/glovebox/telemetry"
	"github.com/glovebox/glovebox/telemetry/chunk"
	"github.com/glovebox/glovebox/telemetry/series"
)

func showSlots(ss []series.Slot) string {
	out := ""
	for _, s := range ss {
		out += fmt.Sprintf("[%d+%d..%d n=%d %v..%v min=%v max=%v sum=%v]", (s.Start-h0)/series.SlotMs, s.Start%series.SlotMs,
			(s.End-h0)%series.SlotMs, s.Count, s.First, s.Last, s.Min, s.Max, s.Sum.Float64())
	}
	return out
}

func TestSlotsSummarizeEachFiveMinutesOfTheHour(t *testing.T) {
	p := func(ms int64, v float64) series.Point { return series.Point{T: h0 + ms, V: v} }
	for _, tc := range []struct {
		name string
		pts  []series.Point
		want string
	}{
		{"nothing", nil, ""},
		{"one value", []series.Point{p(1000, 2.5)}, "[0+1000..1000 n=1 2.5..2.5 min=2.5 max=2.5 sum=2.5]"},
		{"the last millisecond of a slot and the first of the next", []series.Point{p(0, 1), p(299_999, -3), p(300_000, 7)},
			"[0+0..299999 n=2 1..-3 min=-3 max=1 sum=-2][1+0..0 n=1 7..7 min=7 max=7 sum=7]"},
		{"empty slots are left out", []series.Point{p(5_000, 0.1), p(3_599_999, 0.2)},
			"[0+5000..5000 n=1 0.1..0.1 min=0.1 max=0.1 sum=0.1][11+299999..299999 n=1 0.2..0.2 min=0.2 max=0.2 sum=0.2]"},
		{"an exact sum", []series.Point{p(1, 1e16), p(2, 1), p(3, -1e16)}, "[0+1..3 n=3 1e+16..-1e+16 min=-1e+16 max=1e+16 sum=1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := series.Slots(tc.pts)
			if err != nil {
				t.Fatal(err)
			}
			if got := showSlots(ss); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			back, err := series.ParseSlots(series.AppendSlots(nil, ss), h0)
			if err != nil {
				t.Fatal(err)
			}
			if got := showSlots(back); got != tc.want {
				t.Fatalf("after a round trip: %s", got)
			}
		})
	}
	if _, err := series.Slots([]series.Point{{T: h0, V: "x"}}); err == nil {
		t.Error("a string got a slot summary")
	}
}

func TestSlotsEncoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    [2]float64
		want string
	}{
		{"two values", [2]float64{1.5, 2}, "01" + "02" + "01" + "dca712" + "3ff8000000000000" + "4000000000000000" + "3ff8000000000000" +
			"4000000000000000" + "01" + "400c000000000000"},
		{"one value twice", [2]float64{2, 2}, "11" + "02" + "01" + "dca712" + "4000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := series.Slots([]series.Point{{T: h0 + 300_001, V: tc.v[0]}, {T: h0 + 300_003, V: tc.v[1]}})
			if err != nil {
				t.Fatal(err)
			}
			b := series.AppendSlots(nil, ss)
			if got := hex.EncodeToString(b); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			back, err := series.ParseSlots(b, h0)
			if err != nil || showSlots(back) != showSlots(ss) {
				t.Fatalf("parsed %s (%v), want %s", showSlots(back), err, showSlots(ss))
			}
		})
	}
}

func TestAConstantSlotsSumIsExact(t *testing.T) {
	for _, v := range []float64{0.1, -1e-300, 1e300, 0, 7} {
		var pts []series.Point
		for i := range 999 {
			pts = append(pts, series.Point{T: h0 + int64(i), V: v})
		}
		ss, err := series.Slots(pts)
		if err != nil {
			t.Fatal(err)
		}
		back, err := series.ParseSlots(series.AppendSlots(nil, ss), h0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := back[0].Sum.Float64(), ss[0].Sum.Float64(); got != want {
			t.Errorf("999 × %v: %v, want %v", v, got, want)
		}
	}
}

func TestEncodeKeepsSlotsForLargeChunksOfNumbersOnly(t *testing.T) {
	pts := func(n int) []series.Point {
		var out []series.Point
		for i := range n {
			out = append(out, series.Point{T: h0 + int64(i)*1000, V: float64(i % 7)})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		kind  telemetry.Kind
		pts   []series.Point
		slots int // -1: none
	}{
		{"255 numbers: none", telemetry.KindNumber, pts(255), -1},
		{"an hour at 1 Hz: twelve", telemetry.KindNumber, pts(3600), 12},
		{"booleans too", telemetry.KindBool, func() []series.Point {
			p := pts(1200)
			for i := range p {
				p[i].V = float64(i % 2)
			}
			return p
		}(), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := series.Encode(tc.kind, tc.pts)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 {
				t.Fatalf("%d chunks", len(cs))
			}
			if tc.slots < 0 {
				if cs[0].Slots != nil {
					t.Fatalf("slots for %d values", len(tc.pts))
				}
				return
			}
			ss, err := series.ParseSlots(cs[0].Slots, cs[0].Start)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			var sum chunk.Sum
			for _, s := range ss {
				n += s.Count
				sum.Merge(s.Sum)
			}
			if len(ss) != tc.slots || n != cs[0].Count || sum.Float64() != cs[0].Sum.Float64() ||
				ss[0].Start != cs[0].Start || ss[len(ss)-1].End != cs[0].End {
				t.Fatalf("%d slots of %d values, sum %v; the chunk: %d values, sum %v", len(ss), n, sum.Float64(), cs[0].Count, cs[0].Sum.Float64())
			}
		})
	}
}

func TestParseSlotsRefusesDamage(t *testing.T) {
	ok := "01" + "02" + "01" + "dca712" + "3ff8000000000000" + "4000000000000000" + "3ff8000000000000" + "4000000000000000" + "01" + "400c000000000000"
	for _, tc := range []struct{ name, hex string }{
		{"an index past the hour", "0c" + ok[2:]},
		{"a header with unknown bits", "21" + ok[2:]},
		{"slots out of order", ok + ok},
		{"no values", "0100" + ok[4:]},
		{"one value at two times", "0101" + ok[4:]},
		{"last before first", "0102" + "dea712" + "dca712" + ok[14:]},
		{"a time past the slot", "0102" + "e0a712" + "00" + ok[14:]},
		{"cut in a number", "0102"},
		{"cut in the values", ok[:40]},
		{"cut in the sum", ok[:len(ok)-2]},
		{"a zero partial under another", ok[:len(ok)-18] + "02" + "0000000000000000" + "400c000000000000"},
		{"four equal values not marked as one", "01" + "02" + "01" + "dca712" + strings.Repeat("4000000000000000", 4) + "01" + "4010000000000000"},
		{"a maximum below the first value", "01" + "02" + "01" + "dca712" + "3ff8000000000000" + "4000000000000000" + "3ff8000000000000" +
			"3ff0000000000000" + "01" + "400c000000000000"},
		{"a slot of one value cut short", "11" + "02" + "01" + "dca712" + "4000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := series.ParseSlots(b, h0); !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("got %v, want a corrupt-chunk error", err)
			}
		})
	}
}

func FuzzParseSlots(f *testing.F) {
	ss, _ := series.Slots([]series.Point{{T: h0 + 1, V: 1.0}, {T: h0 + 400_000, V: 2.0}, {T: h0 + 400_001, V: 1e300}})
	f.Add(series.AppendSlots(nil, ss))
	f.Add([]byte{0x0b, 0x01, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := series.ParseSlots(b, h0)
		if err != nil {
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("an error that is not ErrCorrupt: %v", err)
			}
			return
		}
		again, err := series.ParseSlots(series.AppendSlots(nil, ss), h0)
		if err != nil || showSlots(again) != showSlots(ss) {
			t.Fatalf("what parsed does not round-trip: %v", err)
		}
	})
}
