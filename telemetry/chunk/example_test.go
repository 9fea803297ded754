package chunk_test

import (
	"fmt"

	"github.com/glovebox/glovebox/telemetry/chunk"
)

// An hour of speed at 1 Hz: the chunk, its summary (an exact sum, so the mean is the exact mean rounded
// once) and the values decoded again.
func ExampleFloats() {
	var c chunk.Floats
	start := int64(1_793_491_200_000) // 2026-11-01T00:00:00Z in unix ms
	for i, v := range []float64{0.1, 0.2, 0.3, 0.3, 0.3, 0.3} {
		if err := c.Append(start+int64(i)*1000, v); err != nil {
			fmt.Println(err)
			return
		}
	}
	s := c.Summary()
	fmt.Printf("%d values in %d bytes, min %v, max %v, mean %v\n", s.Count, len(c.Bytes()), s.Min, s.Max, s.Sum.Float64()/float64(s.Count))
	naive := 0.0
	for _, v := range []float64{0.1, 0.2, 0.3, 0.3, 0.3, 0.3} {
		naive += v
	}
	fmt.Printf("adding one by one gives the mean %v\n", naive/6)
	times, values, err := chunk.DecodeFloats(c.Bytes(), nil, nil)
	fmt.Println(times[5]-times[0], values, err)
	// Output:
	// 6 values in 30 bytes, min 0.1, max 0.3, mean 0.25
	// adding one by one gives the mean 0.25000000000000006
	// 5000 [0.1 0.2 0.3 0.3 0.3 0.3] <nil>
}
