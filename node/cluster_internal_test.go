package node

import (
	"slices"
	"testing"
)

func TestParseRoles(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "sequencer", want: []string{"sequencer"}},
		{in: "api,ingest", want: []string{"api", "ingest"}},
		{in: " api , api ,sequencer", want: []string{"api", "sequencer"}},
		{in: "api,writer", bad: true},
		{in: "", bad: true},
		{in: "api,", bad: true},
	} {
		got, err := ParseRoles(tc.in)
		if tc.bad != (err != nil) || (!tc.bad && !slices.Equal(got, tc.want)) {
			t.Errorf("ParseRoles(%q) = %v, %v; want %v (error: %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
