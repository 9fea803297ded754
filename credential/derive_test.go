package credential

import (
	"errors"
	"testing"
	"time"
)

// TestDeriveMileageChain holds the rule a mileage's chain of odometer readings obeys (docs/credentials.md):
// consecutive readings never decrease, and are at most MaxReadingGap apart unless the odometer stood
// still between them.
func TestDeriveMileageChain(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration, km float64) reading { return reading{Time: ms(t0.Add(d)), Number: km} }
	for _, c := range []struct {
		name     string
		chain    []reading
		to       time.Duration
		want     error
		distance float64
	}{
		{"a reading a day", []reading{at(0, 100), at(24*time.Hour, 150), at(48*time.Hour, 210)}, 48 * time.Hour, nil, 110},
		{"a gap just over a day while moving", []reading{at(0, 100), at(24*time.Hour+time.Millisecond, 150)}, 25 * time.Hour, ErrGap, 0},
		{"a gap of a week standing still", []reading{at(0, 100), at(7*24*time.Hour, 100), at(7*24*time.Hour+time.Hour, 120)}, 8 * 24 * time.Hour, nil, 20},
		{"a chain that decreases", []reading{at(0, 100), at(time.Hour, 90), at(2*time.Hour, 130)}, 3 * time.Hour, ErrRollback, 0},
		{"a decrease after the period is not its business", []reading{at(0, 100), at(time.Hour, 130), at(5*time.Hour, 90)}, 2 * time.Hour, nil, 30},
		{"a gap before from is not its business", []reading{at(-72*time.Hour, 50), at(0, 100), at(time.Hour, 130)}, time.Hour, nil, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := deriveMileage(c.chain, t0, t0.Add(c.to))
			if !errors.Is(err, c.want) || (c.want == nil && f.Distance != c.distance) {
				t.Fatalf("deriveMileage = %+v, %v; want %v km, %v", f, err, c.distance, c.want)
			}
		})
	}
}
