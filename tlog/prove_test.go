package tlog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// storedHashes returns the stored hashes of a tree of n records, record i being "record i".
func storedHashes(t testing.TB, n int64) hashSlice {
	t.Helper()
	var stored hashSlice
	for i := range n {
		hs, err := tlog.StoredHashes(i, fmt.Appendf(nil, "record %d", i), stored)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	return stored
}

// TestProveRecordsGivesProveRecordsProofs holds ProveRecords to the library's ProveRecord: for every record
// of every tree up to 70 records, and for runs of consecutive and scattered records in larger trees, the
// same proofs, each of which the library's CheckRecord accepts.
func TestProveRecordsGivesProveRecordsProofs(t *testing.T) {
	stored := storedHashes(t, 5000)
	check := func(t *testing.T, size int64, indexes []int64) {
		t.Helper()
		got, err := ProveRecords(size, indexes, stored)
		if err != nil {
			t.Fatal(err)
		}
		root, err := tlog.TreeHash(size, stored)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range indexes {
			want, err := tlog.ProveRecord(size, n, stored)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got[i], want) {
				t.Fatalf("record %d in size %d: %d hashes, want ProveRecord's %d", n, size, len(got[i]), len(want))
			}
			if err := tlog.CheckRecord(got[i], size, root, n, tlog.RecordHash(fmt.Appendf(nil, "record %d", n))); err != nil {
				t.Fatalf("record %d in size %d: %v", n, size, err)
			}
		}
	}
	for size := int64(1); size <= 70; size++ {
		var all []int64
		for n := range size {
			all = append(all, n)
		}
		check(t, size, all)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int64{1023, 1024, 1025, 4097, 5000} {
		first := rng.Int64N(size - 1000)
		var run, scattered []int64
		for n := first; n < first+1000; n++ {
			run = append(run, n)
		}
		for range 200 {
			scattered = append(scattered, rng.Int64N(size))
		}
		check(t, size, run)
		check(t, size, scattered)
	}
}

func TestProveRecordsRefusesARecordOutsideTheTree(t *testing.T) {
	stored := storedHashes(t, 10)
	for _, tc := range []struct {
		size    int64
		indexes []int64
	}{
		{10, []int64{10}},
		{10, []int64{3, -1}},
		{0, []int64{0}},
	} {
		if _, err := ProveRecords(tc.size, tc.indexes, stored); err == nil {
			t.Errorf("ProveRecords(%d, %v) gave no error", tc.size, tc.indexes)
		}
	}
}

// BenchmarkInclusionProofs proves the 1,000 records of a batch in a tree of 150,000, one by one as
// ProveRecord does and together.
func BenchmarkInclusionProofs(b *testing.B) {
	const size = 150000
	stored := storedHashes(b, size)
	var batch []int64
	for n := int64(size - 1000); n < size; n++ {
		batch = append(batch, n)
	}
	b.Run("one by one", func(b *testing.B) {
		for b.Loop() {
			for _, n := range batch {
				if _, err := tlog.ProveRecord(size, n, stored); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("together", func(b *testing.B) {
		for b.Loop() {
			if _, err := ProveRecords(size, batch, stored); err != nil {
				b.Fatal(err)
			}
		}
	})
}
