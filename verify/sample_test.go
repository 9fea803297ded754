package verify

import (
	"slices"
	"testing"
)

func TestSampleIDsSpreadsEvenlyAndDeterministically(t *testing.T) {
	ids := make([]uint64, 100)
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	tests := []struct {
		limit int
		want  []uint64
	}{
		{1, []uint64{1}},
		{2, []uint64{1, 100}},
		{5, []uint64{1, 25, 50, 75, 100}},
		{100, ids},
		{1000, ids},
	}
	for _, tt := range tests {
		if got := sampleIDs(ids, tt.limit); !slices.Equal(got, tt.want) {
			t.Errorf("sampleIDs(1..100, %d) = %v, want %v", tt.limit, got, tt.want)
		}
	}
}
