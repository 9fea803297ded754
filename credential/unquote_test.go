package credential

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// TestUnquoteReadsWhatJSONTextReads holds the fast unquoting of the evidence's events to jsontext's on
// every escape JSON has, and on strings that take the general path.
func TestUnquoteReadsWhatJSONTextReads(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"no escape", `"plain text"`, "plain text"},
		{"empty", `""`, ""},
		{"an event's quotes", `"{\"name\":\"speed\",\"value\":50}"`, `{"name":"speed","value":50}`},
		{"every short escape", `"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t"},
		{"an escape at each end", `"\"a\""`, `"a"`},
		{"a backslash before u", `"\\u0041"`, `\u0041`},
		{"a unicode escape", `"caf\u00e9"`, "café"},
		{"a surrogate pair", `"\ud83d\ude97 car"`, "🚗 car"},
		{"UTF-8 as is", `"Köln ✓"`, "Köln ✓"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := unquote(jsontext.Value(c.in))
			if err != nil || string(got) != c.want {
				t.Fatalf("unquote(%s) = %q, %v; want %q", c.in, got, err, c.want)
			}
			ref, err := jsontext.AppendUnquote(nil, []byte(c.in))
			if err != nil || string(ref) != string(got) {
				t.Fatalf("jsontext reads %s as %q, %v; unquote as %q", c.in, ref, err, got)
			}
		})
	}
	for _, bad := range []string{`"\x"`, `"abc\"`, `"\`, `abc`} {
		if got, err := unquote(jsontext.Value(bad)); err == nil {
			t.Errorf("unquote(%s) = %q, want an error", bad, got)
		}
	}
}
