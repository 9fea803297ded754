package bench

import (
	"bytes"
	"image/png"
	"testing"
	"time"
)

func TestTrend(t *testing.T) {
	flat := func(s SoakSample) float64 { return float64(s.Goroutines) }
	for _, tc := range []struct {
		name    string
		values  []int
		perHour float64
		first   float64
		last    float64
	}{
		{"too few samples", []int{1, 2, 3}, 0, 0, 0},
		{"flat after the warm-up", []int{500, 40, 40, 40, 40, 40, 40, 40, 40, 40}, 0, 40, 40},
		{"a goroutine a minute", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 60, 1, 9},
	} {
		var samples []SoakSample
		for i, v := range tc.values {
			samples = append(samples, SoakSample{At: time.Duration(i) * time.Minute, Goroutines: v})
		}
		got := trend(samples, flat)
		if got.PerHour < tc.perHour-1e-9 || got.PerHour > tc.perHour+1e-9 || got.First != tc.first || got.Last != tc.last {
			t.Errorf("%s: trend = %+v, want per hour %v, first %v, last %v", tc.name, got, tc.perHour, tc.first, tc.last)
		}
	}
}

func TestSoakPNG(t *testing.T) {
	rep := &SoakReport{Cores: 2, Vehicles: 10, Duration: 30 * time.Minute}
	for i := range 181 {
		rep.Samples = append(rep.Samples, SoakSample{At: time.Duration(i) * 10 * time.Second, RSSBytes: 200e6, Goroutines: 60 + i%3, FDs: 40})
	}
	var b bytes.Buffer
	if err := rep.PNG(&b); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("the plot is not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got.X != 960 || got.Y != 700 {
		t.Errorf("plot size = %v, want 960×700", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSoakCSV(t *testing.T) {
	rep := &SoakReport{Samples: []SoakSample{
		{At: 10 * time.Second, RSSBytes: 300e6, Goroutines: 30, FDs: 45, GoHeapBytes: 25e6, GoSysBytes: 78e6, SQLiteBytes: 150e6, SQLiteAllocs: 9000},
		{At: 20 * time.Second, RSSBytes: 310e6, Goroutines: 31, FDs: 46, Errors: 1},
	}}
	var b bytes.Buffer
	if err := rep.CSV(&b); err != nil {
		t.Fatal(err)
	}
	want := "seconds,rss_bytes,goroutines,fds,errors,go_heap_bytes,go_sys_bytes,sqlite_bytes,sqlite_allocs\n" +
		"10,300000000,30,45,0,25000000,78000000,150000000,9000\n" +
		"20,310000000,31,46,1,0,0,0,0\n"
	if got := b.String(); got != want {
		t.Errorf("CSV =\n%s\nwant\n%s", got, want)
	}
}
