package auth

import (
	"strings"
	"testing"
	"time"
)

// specExample is the example message of EIP-4361.
const specExample = `service.invalid wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ServiceOrg Terms of Service: https://service.invalid/tos

URI: https://service.invalid/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json`

// everyField has every optional field, a scheme and a fraction of a second.
const everyField = `https://node.example:8443 wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

Sign in.

URI: https://node.example:8443/
Version: 1
Chain ID: 137
Nonce: abcdEFGH1234
Issued At: 2021-09-30T16:25:24.5Z
Expiration Time: 2021-09-30T16:30:24Z
Not Before: 2021-09-30T16:25:00Z
Request ID: some-id:1@x
Resources:
- urn:x:y`

// noStatement has no statement: the address is followed by two empty lines.
const noStatement = `node.example wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2


URI: https://node.example
Version: 1
Chain ID: 1
Nonce: 12345678
Issued At: 2021-09-30T16:25:24Z`

func TestParseSIWEAcceptsCanonicalMessages(t *testing.T) {
	for _, s := range []string{specExample, everyField, noStatement} {
		m, err := ParseSIWE(s)
		if err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
		if m.String() != s {
			t.Fatalf("does not re-format to itself:\n%s\n---\n%s", m.String(), s)
		}
	}
	m, _ := ParseSIWE(everyField)
	if m.Scheme != "https" || m.Domain != "node.example:8443" || m.ChainID != 137 || m.RequestID != "some-id:1@x" ||
		!m.IssuedAt.Equal(time.Date(2021, 9, 30, 16, 25, 24, 5e8, time.UTC)) || len(m.Resources) != 1 || m.NotBefore.IsZero() {
		t.Fatalf("%+v", m)
	}
}

func TestParseSIWERefusesNonCanonicalMessages(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
	}{
		{"CRLF line breaks are refused", func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }},
		{"a trailing newline is refused", func(s string) string { return s + "\n" }},
		{"a lower-case address is refused", func(s string) string {
			return strings.Replace(s, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", 1)
		}},
		{"a bad EIP-55 checksum is refused", func(s string) string { return strings.Replace(s, "0xC02aaA", "0xc02aaA", 1) }},
		{"a short address is refused", func(s string) string { return strings.Replace(s, "Cc2\n", "Cc\n", 1) }},
		{"a missing empty line after the address is refused", func(s string) string { return strings.Replace(s, "Cc2\n\n", "Cc2\n", 1) }},
		{"an empty statement is refused", func(s string) string { return strings.Replace(s, "\n\nSign in.\n\n", "\n\n\n\n", 1) }},
		{"a statement with a tab is refused", func(s string) string { return strings.Replace(s, "Sign in.", "Sign\tin.", 1) }},
		{"a statement with non-ASCII is refused", func(s string) string { return strings.Replace(s, "Sign in.", "Sïgn in.", 1) }},
		{"a statement with a percent sign is refused", func(s string) string { return strings.Replace(s, "Sign in.", "100%", 1) }},
		{"a domain with a space is refused", func(s string) string { return strings.Replace(s, "node.example:8443 wants", "node .example wants", 1) }},
		{"a domain with a path is refused", func(s string) string { return strings.Replace(s, "node.example:8443 wants", "node.example/a wants", 1) }},
		{"a domain with an empty port is refused", func(s string) string { return strings.Replace(s, "node.example:8443 wants", "node.example: wants", 1) }},
		{"an empty domain is refused", func(s string) string { return strings.Replace(s, "https://node.example:8443 wants", " wants", 1) }},
		{"a bad scheme is refused", func(s string) string { return strings.Replace(s, "https://node", "1ttps://node", 1) }},
		{"a changed header sentence is refused", func(s string) string { return strings.Replace(s, "wants you", "asks you", 1) }},
		{"a relative URI is refused", func(s string) string { return strings.Replace(s, "URI: https://node.example:8443/", "URI: /login", 1) }},
		{"a URI with a space is refused", func(s string) string {
			return strings.Replace(s, "URI: https://node.example:8443/", "URI: https://a b", 1)
		}},
		{"a version other than 1 is refused", func(s string) string { return strings.Replace(s, "Version: 1", "Version: 01", 1) }},
		{"a chain id with a leading zero is refused", func(s string) string { return strings.Replace(s, "Chain ID: 137", "Chain ID: 0137", 1) }},
		{"a chain id with a sign is refused", func(s string) string { return strings.Replace(s, "Chain ID: 137", "Chain ID: +137", 1) }},
		{"a chain id beyond 64 bits is refused", func(s string) string { return strings.Replace(s, "Chain ID: 137", "Chain ID: 18446744073709551616", 1) }},
		{"a nonce of 7 characters is refused", func(s string) string { return strings.Replace(s, "Nonce: abcdEFGH1234", "Nonce: abcdEFG", 1) }},
		{"a nonce with a dash is refused", func(s string) string { return strings.Replace(s, "Nonce: abcdEFGH1234", "Nonce: abcd-EFGH", 1) }},
		{"a date-time with an offset is refused", func(s string) string { return strings.Replace(s, "16:30:24Z", "18:30:24+02:00", 1) }},
		{"a date-time with a trailing zero fraction is refused", func(s string) string { return strings.Replace(s, "24.5Z", "24.50Z", 1) }},
		{"a date-time with a lower-case z is refused", func(s string) string { return strings.Replace(s, "16:30:24Z", "16:30:24z", 1) }},
		{"a date-time with a space is refused", func(s string) string { return strings.Replace(s, "2021-09-30T16:30:24Z", "2021-09-30 16:30:24Z", 1) }},
		{"a date-time on February 30 is refused", func(s string) string { return strings.Replace(s, "2021-09-30T16:30:24Z", "2021-02-30T16:30:24Z", 1) }},
		{"fields out of order are refused", func(s string) string {
			return strings.Replace(s, "Version: 1\nChain ID: 137", "Chain ID: 137\nVersion: 1", 1)
		}},
		{"optional fields out of order are refused", func(s string) string {
			return strings.Replace(s, "Expiration Time: 2021-09-30T16:30:24Z\nNot Before: 2021-09-30T16:25:00Z", "Not Before: 2021-09-30T16:25:00Z\nExpiration Time: 2021-09-30T16:30:24Z", 1)
		}},
		{"a repeated field is refused", func(s string) string { return strings.Replace(s, "Version: 1", "Version: 1\nVersion: 1", 1) }},
		{"an unknown field is refused", func(s string) string { return strings.Replace(s, "Version: 1", "Version: 1\nColour: red", 1) }},
		{"an empty request id is refused", func(s string) string { return strings.Replace(s, "Request ID: some-id:1@x", "Request ID: ", 1) }},
		{"a request id with a slash is refused", func(s string) string { return strings.Replace(s, "Request ID: some-id:1@x", "Request ID: a/b", 1) }},
		{"an empty resource list is refused", func(s string) string { return strings.Replace(s, "\n- urn:x:y", "", 1) }},
		{"a resource without its dash is refused", func(s string) string { return strings.Replace(s, "- urn:x:y", "urn:x:y", 1) }},
		{"a missing issued-at is refused", func(s string) string { return strings.Replace(s, "Issued At: 2021-09-30T16:25:24.5Z\n", "", 1) }},
		{"a field without its space is refused", func(s string) string { return strings.Replace(s, "Nonce: ", "Nonce:", 1) }},
		{"a line with trailing space is refused", func(s string) string { return strings.Replace(s, "Version: 1", "Version: 1 ", 1) }},
		{"a NUL byte is refused", func(s string) string { return strings.Replace(s, "Sign in.", "Sign\x00in.", 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.edit(everyField)
			if s == everyField {
				t.Fatal("the edit changed nothing")
			}
			if m, err := ParseSIWE(s); err == nil {
				t.Fatalf("accepted as %+v", m)
			}
		})
	}
	if _, err := ParseSIWE(strings.Repeat("a", MaxSIWE+1)); err == nil {
		t.Fatal("an oversized message is accepted")
	}
}

func FuzzParseSIWE(f *testing.F) {
	for _, s := range []string{specExample, everyField, noStatement, "", "\n\n\n", docExample} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseSIWE(s)
		if err != nil {
			return
		}
		if got := m.String(); got != s {
			t.Fatalf("accepted a message that re-formats differently:\n%q\n%q", s, got)
		}
	})
}
