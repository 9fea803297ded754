package credential

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
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
		{"an escaped backslash before a quote", `"a\\\"b\\"`, `a\"b\`},
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

// TestEvidenceMarshalsAsJSONDoes holds the evidence's fast encoding to json (v2)'s, byte for byte,
// for events that take the fast path and events that do not.
func TestEvidenceMarshalsAsJSONDoes(t *testing.T) {
	sig := "0x" + strings.Repeat("ab", 65)
	events := []string{
		`{"name":"speed","value":50}`,
		`a \ backslash, a / slash, <html> & DEL ` + "\x7f",
		"a newline\n and a tab\t and a NUL \x00",
		"Köln ✓ and U+2028 \u2028",
		"",
	}
	for n := range len(events) + 1 {
		ev := &Evidence{Checkpoint: "origin\n5\nroot\n\n— sig\n", Pairings: []LoggedPairing{{Start: LoggedEntry{Index: 3, Entry: []byte{1, 2}, Proof: [][]byte{{9}}}}}}
		for i, e := range events[:n] {
			ev.Records = append(ev.Records, SignedRecord{Event: e, Signature: sig, Pairing: int64(i)})
		}
		want, err := jsonv2.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ev.marshal()
		if err != nil || string(got) != string(want) {
			t.Fatalf("%d records: marshal = %s, %v\nwant %s", n, got, err, want)
		}
	}
	bad := &Evidence{Records: []SignedRecord{{Event: "invalid UTF-8 \xff", Signature: sig}}}
	if _, err := bad.marshal(); err == nil {
		t.Fatal("an event of invalid UTF-8 was encoded")
	}
}

// TestEncodeBase64InHalves holds the two-core encoding to the one-core one at lengths around its
// threshold and its split.
func TestEncodeBase64InHalves(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 256<<10 - 1, 256 << 10, 256<<10 + 1, 256<<10 + 2, 1 << 20} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 7)
		}
		if got, want := encodeBase64(src), base64.RawURLEncoding.EncodeToString(src); got != want {
			t.Fatalf("%d bytes: the halves differ from the whole", n)
		}
	}
}

// TestDecodeBase64InHalves holds the two-core decoding to the one-core one: the same bytes, and the
// same error at the same offset, whichever half holds it.
func TestDecodeBase64InHalves(t *testing.T) {
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(i * 13)
	}
	whole := base64.RawURLEncoding.EncodeToString(src)
	for _, s := range []string{
		whole,
		whole[:256<<10],
		whole[:256<<10+1],
		whole[:256<<10+2],
		whole[:len(whole)/2] + "*" + whole[len(whole)/2+1:],
		"*" + whole[1:],
		whole[:len(whole)-1] + "=",
		whole[:1000] + "\n" + whole[1000:],
	} {
		got, err := decodeBase64(s)
		want, werr := base64.RawURLEncoding.DecodeString(s)
		if fmt.Sprint(err) != fmt.Sprint(werr) || (werr == nil && !bytes.Equal(got, want)) {
			t.Fatalf("%d characters: decodeBase64 = %d bytes, %v; want %d bytes, %v", len(s), len(got), err, len(want), werr)
		}
	}
}
