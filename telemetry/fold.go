package telemetry

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/glovebox/glovebox/telemetry/chunk"
)

// FoldHistory computes a's aggregations from the values of the signal, handed to it by scan in time
// order (times in [a.Lo, a.Hi)), and puts each bucket's results as History.Aggregate does. It is the
// reference for every store's History and the whole implementation for a store without roll-ups.
func FoldHistory(a Aggregation, scan func(yield func(t int64, v any) error) error, put func(b int64, agg string, v any)) error {
	numeric := a.Kind == KindNumber || a.Kind == KindBool
	for _, agg := range a.Aggs {
		ok := false
		switch agg {
		case AggAvg, AggMin, AggMax, AggMedian, AggCount:
			ok = numeric
		case AggTop, AggUnique:
			ok = a.Kind == KindString || a.Kind == KindStrings
		case AggMean:
			ok = a.Kind == KindLocation
		case AggFirst, AggLast, AggRand:
			ok = true
		default:
			return fmt.Errorf("no aggregation %q", agg)
		}
		if !ok {
			return fmt.Errorf("%s does not apply to %s", agg, a.Signal)
		}
	}
	if a.Step <= 0 || a.Lo >= a.Hi {
		return nil
	}
	var cur int64 = -1
	var vals []any
	flush := func() error {
		if len(vals) == 0 {
			return nil
		}
		defer func() { vals = vals[:0] }()
		for _, agg := range a.Aggs {
			var v any
			switch agg {
			case AggCount:
				v = float64(len(vals))
			case AggFirst:
				v = vals[0]
			case AggLast:
				v = vals[len(vals)-1]
			case AggRand:
				v = vals[RandIndex(a.Vehicle, a.Signal, a.From+cur*a.Step, len(vals))]
			case AggAvg, AggMin, AggMax, AggMedian:
				fs := make([]float64, len(vals))
				for i, x := range vals {
					f, err := AsFloat(x)
					if err != nil {
						return err
					}
					fs[i] = f
				}
				switch agg {
				case AggAvg:
					// The exact sum rounded once: the same at every bucket width and in every store,
					// however the values were grouped into chunks and roll-ups (docs/columnar.md).
					var sum chunk.Sum
					for _, f := range fs {
						sum.Add(f)
					}
					v = sum.Float64() / float64(len(fs))
				case AggMin:
					m := fs[0]
					for _, f := range fs[1:] {
						m = min(m, f)
					}
					v = m
				case AggMax:
					m := fs[0]
					for _, f := range fs[1:] {
						m = max(m, f)
					}
					v = m
				default:
					v = Median(fs)
				}
			case AggTop, AggUnique:
				counts := map[string]int{}
				for _, x := range vals {
					s, err := AsString(x)
					if err != nil {
						return err
					}
					counts[s]++
				}
				distinct := make([]string, 0, len(counts))
				for s := range counts {
					distinct = append(distinct, s)
				}
				sort.Strings(distinct)
				if agg == AggUnique {
					j, _ := json.Marshal(distinct)
					v = string(j)
				} else {
					top := distinct[0]
					for _, s := range distinct[1:] {
						if counts[s] > counts[top] {
							top = s
						}
					}
					v = top
				}
			case AggMean:
				m, err := MeanLocation(vals)
				if err != nil {
					return err
				}
				v = m
			}
			if numeric {
				if i, ok := v.(int64); ok {
					v = float64(i)
				}
			}
			put(cur, agg, v)
		}
		return nil
	}
	err := scan(func(t int64, v any) error {
		if t < a.Lo || t >= a.Hi {
			return nil
		}
		if a.Keep != nil {
			if i, ok := v.(int64); ok && numeric {
				v = float64(i)
			}
			if !a.Keep(v) {
				return nil
			}
		}
		b := (t - a.From) / a.Step
		if b != cur {
			if err := flush(); err != nil {
				return err
			}
			cur = b
		}
		vals = append(vals, v)
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// RandIndex picks one of n values of a bucket by a hash of the vehicle, the signal and the bucket's start
// (unix ms), so that the same data gives the same answer.
func RandIndex(vehicle uint64, signal string, start int64, n int) int {
	h := fnv.New64a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], vehicle)
	binary.BigEndian.PutUint64(b[8:], uint64(start))
	h.Write(b[:])
	h.Write([]byte(signal))
	return int(h.Sum64() % uint64(n))
}

// Median returns the middle value of fs (the mean of the two middle ones for an even count); it sorts fs.
func Median(fs []float64) float64 {
	sort.Float64s(fs)
	m := len(fs) / 2
	if len(fs)%2 == 1 {
		return fs[m]
	}
	return (fs[m-1] + fs[m]) / 2
}

// MeanLocation is the mean of the latitudes, longitudes and hdops of encoded locations, encoded.
func MeanLocation(vals []any) ([]byte, error) {
	var lat, lon, hdop float64
	for _, v := range vals {
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("a stored location is a %T", v)
		}
		la, lo, hd, err := DecodeLocation(b)
		if err != nil {
			return nil, err
		}
		lat, lon, hdop = lat+la, lon+lo, hdop+hd
	}
	n := float64(len(vals))
	return EncodeLocation(lat/n, lon/n, hdop/n), nil
}

// AsFloat is a stored number (float64, or int64 where SQLite kept a whole number as an integer).
func AsFloat(raw any) (float64, error) {
	switch x := raw.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("a stored number is a %T", raw)
}

// AsString is a stored string (string or []byte).
func AsString(raw any) (string, error) {
	switch x := raw.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", fmt.Errorf("a stored string is a %T", raw)
}
