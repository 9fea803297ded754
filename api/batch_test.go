package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestSplitBatch(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string // nil: refused
	}{
		{`[]`, []string{}},
		{` [ ] `, []string{}},
		{`[{"type":"Grant"}, 1 ,"x",null,[1,2]]`, []string{`{"type":"Grant"}`, `1`, `"x"`, `null`, `[1,2]`}},
		{"[\n {\"a\":1,\"a\":2}\n]\n", []string{`{"a":1,"a":2}`}},
		{"[\"\xff\"]", []string{"\"\xff\""}},
		{`[{"a":1},]`, nil},
		{`[{"a":1}`, nil},
		{`[{"a":1}] x`, nil},
		{`[{"a":1}][]`, nil},
		{`[01]`, nil},
		{`{"a":1}`, nil},
	} {
		got, err := splitBatch([]byte(tc.body))
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: %q, want an error", tc.body, got)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.body, got, err, tc.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tc.want[i] {
				t.Errorf("%q: element %d is %q, want %q", tc.body, i, got[i], tc.want[i])
			}
		}
	}
}

// FuzzSplitBatch: splitBatch accepts and splits a batch exactly as encoding/json does into raw elements.
func FuzzSplitBatch(f *testing.F) {
	for _, s := range []string{`[]`, `[{"type":"Grant","message":{},"signatures":["0x"]}]`, `[1,"a",null,true,[{}]]`,
		"[\"\xff\"]", `[{"a":1,"a":2}]`, `[1,]`, `[1] 2`, `["\u00e9\ud800"]`, `[1e400]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 || body[0] != '[' {
			return // the handler sends only bodies that start with '[' here
		}
		var want []json.RawMessage
		werr := json.Unmarshal(body, &want)
		got, err := splitBatch(body)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: %v, encoding/json %v", body, err, werr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json %d", body, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: element %d is %q, encoding/json %q", body, i, got[i], want[i])
			}
		}
	})
}
