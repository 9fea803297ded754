package stream

import (
	"testing"

	"github.com/glovebox/glovebox/telemetry"
)

// FuzzDecode: whatever arrives on the stream, the writer's decoder returns a record or an error.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"event":"{}","signature":"0x00","received":1,"pairing":0}`))
	f.Add([]byte(`not json`))
	w := &Writer{cat: telemetry.DefaultCatalog}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := w.decode(data)
		if (r == nil) == (err == nil) {
			t.Fatalf("decode gave %v and %v", r, err)
		}
	})
}
