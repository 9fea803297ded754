package auth

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// docExample is the challenge shown in doc.go.
const docExample = `node.example wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

Sign in to Glovebox. This proves you control this account; it grants nothing.

URI: https://node.example
Version: 1
Chain ID: 1
Nonce: 5f0c6a1e9b3d47c2a8e1f6b0d9c3a7e4
Issued At: 2026-03-01T12:00:00Z
Expiration Time: 2026-03-01T12:05:00Z`

// TestDocExampleIsWhatTheIssuerWrites checks the package doc's challenge against a real one (the nonce
// aside) and against the text of doc.go.
func TestDocExampleIsWhatTheIssuerWrites(t *testing.T) {
	iss, err := NewIssuer(Config{Dir: t.TempDir(), Issuer: "https://node.example", Domain: "node.example",
		Now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := iss.Challenge(context.Background(), "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
	if err != nil {
		t.Fatal(err)
	}
	nonce := regexp.MustCompile(`(?m)^Nonce: [0-9a-f]{32}$`)
	if got := nonce.ReplaceAllString(msg, "Nonce: 5f0c6a1e9b3d47c2a8e1f6b0d9c3a7e4"); got != docExample {
		t.Fatalf("the issuer writes\n%s\nthe doc shows\n%s", got, docExample)
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	indented := "//\t" + strings.ReplaceAll(docExample, "\n", "\n//\t")
	indented = strings.ReplaceAll(indented, "//\t\n", "//\n")
	if !strings.Contains(string(doc), indented) {
		t.Fatal("doc.go does not show docExample")
	}
}

func ExampleParseSIWE() {
	m, err := ParseSIWE(docExample)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Domain, m.Address, m.ChainID, m.ExpirationTime.Sub(m.IssuedAt))
	// Output: node.example 0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2 1 5m0s
}
