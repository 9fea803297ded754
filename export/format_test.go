package export

import "testing"

func TestAppendStampIsStamp(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want string
	}{
		{0, "1970-01-01T00:00:00.000Z"},
		{-1, "1969-12-31T23:59:59.999Z"},
		{951782400000, "2000-02-29T00:00:00.000Z"},
		{1798761599999, "2026-12-31T23:59:59.999Z"},
		{253402300799999, "9999-12-31T23:59:59.999Z"},
		{-62135596800000, "0001-01-01T00:00:00.000Z"},
	} {
		if got := string(appendStamp(nil, tc.ms)); got != tc.want || got != stamp(tc.ms) {
			t.Errorf("appendStamp(%d) = %s, want %s (stamp: %s)", tc.ms, got, tc.want, stamp(tc.ms))
		}
	}
	// Every day from 1900 to 2200 at a varying time of day, against time.Format.
	for ms := int64(-2208988800000); ms < 7258118400000; ms += 86_400_000 + 3_601_001 {
		if got, want := string(appendStamp(nil, ms)), stamp(ms); got != want {
			t.Fatalf("appendStamp(%d) = %s, want %s", ms, got, want)
		}
	}
}
