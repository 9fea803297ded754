package chunk

import (
	"encoding/binary"
	"fmt"
)

// Location is a position as the stores keep it: latitude, longitude and horizontal dilution of
// precision.
type Location struct{ Lat, Lon, HDOP float64 }

// Locations builds a chunk of locations: three XOR streams with the same times. Its zero value is an
// empty chunk. It is not safe for concurrent use.
type Locations struct {
	lat, lon, hdop XOR
	ends           Ends[Location]
}

// Append adds a value at time t, which must be after the last one (ErrOutOfOrder); ErrFull after
// MaxValues values.
func (c *Locations) Append(t int64, v Location) error {
	if err := check(c.lat.n, c.ends.LastTime, t); err != nil {
		return err
	}
	// check bounds the count far below MaxXORSamples: these cannot fail.
	_ = c.lat.Append(t, v.Lat)
	_ = c.lon.Append(t, v.Lon)
	_ = c.hdop.Append(t, v.HDOP)
	c.ends.add(t, v)
	return nil
}

// Len is the number of values appended.
func (c *Locations) Len() int { return c.lat.n }

// Ends returns the chunk's count and first and last values.
func (c *Locations) Ends() Ends[Location] { return c.ends }

// Bytes returns the encoded chunk.
func (c *Locations) Bytes() []byte {
	lat, lon, hdop := c.lat.Bytes(), c.lon.Bytes(), c.hdop.Bytes()
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(lat)+len(lon)+len(hdop))
	b = binary.AppendUvarint(b, uint64(len(lat)))
	b = append(b, lat...)
	b = binary.AppendUvarint(b, uint64(len(lon)))
	b = append(b, lon...)
	return append(b, hdop...)
}

// DecodeLocations appends the times and values of an encoded chunk of locations to times and values.
func DecodeLocations(b []byte, times []int64, values []Location) ([]int64, []Location, error) {
	lat, err := field(&b, "the latitudes")
	if err != nil {
		return times, values, fmt.Errorf("decoding locations: %w", err)
	}
	lon, err := field(&b, "the longitudes")
	if err != nil {
		return times, values, fmt.Errorf("decoding locations: %w", err)
	}
	its := [3]*XORIterator{NewXORIterator(lat), NewXORIterator(lon), NewXORIterator(b)}
	total := its[0].Len()
	if err := checkCount(total); err != nil {
		return times, values, fmt.Errorf("decoding locations: %w", err)
	}
	if its[1].Len() != total || its[2].Len() != total {
		return times, values, fmt.Errorf("decoding locations: %w: %d latitudes, %d longitudes, %d HDOPs", ErrCorrupt, total, its[1].Len(), its[2].Len())
	}
	names := [3]string{"latitudes", "longitudes", "HDOPs"}
	for i := 0; i <= total; i++ {
		var ts [3]int64
		var vs [3]float64
		for j, it := range its {
			if !it.Next() {
				if err := it.Err(); err != nil {
					return times, values, fmt.Errorf("decoding locations: the %s: %w", names[j], err)
				}
				if i < total { // cannot happen: Next stops early only on an error
					return times, values, fmt.Errorf("decoding locations: %w: the %s end at %d of %d", ErrCorrupt, names[j], i, total)
				}
				continue
			}
			ts[j], vs[j] = it.At()
		}
		if i == total {
			break
		}
		switch {
		case ts[1] != ts[0] || ts[2] != ts[0]:
			return times, values, fmt.Errorf("decoding locations: %w: value %d at times %d, %d and %d", ErrCorrupt, i+1, ts[0], ts[1], ts[2])
		case i > 0 && ts[0] <= times[len(times)-1]:
			return times, values, fmt.Errorf("decoding locations: %w: value %d at %d after one at %d", ErrCorrupt, i+1, ts[0], times[len(times)-1])
		}
		times, values = append(times, ts[0]), append(values, Location{vs[0], vs[1], vs[2]})
	}
	return times, values, nil
}
