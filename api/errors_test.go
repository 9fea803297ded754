package api

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/glovebox/glovebox/ledger"
)

var update = flag.Bool("update", false, "rewrite golden files and generated docs")

// errorTable renders ErrorCodes as the Markdown table in docs/errors.md.
func errorTable() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from api.ErrorCodes by `go test ./api -run TestErrorDocs -update`; do not edit. -->\n")
	b.WriteString("| code | HTTP | meaning |\n|---|---|---|\n")
	for _, c := range ErrorCodes {
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", c.Code, c.Status, c.Description)
	}
	return b.Bytes()
}

func TestErrorDocsAreCurrent(t *testing.T) {
	const path = "../docs/errors.md"
	want := errorTable()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/errors.md is stale; run go test ./api -run TestErrorDocs -update")
	}
}

func TestEveryRuleCodeHasAStatus(t *testing.T) {
	for _, c := range ledger.CodeDescriptions {
		if s := statusOf(string(c.Code)); s < 400 || s > 599 {
			t.Errorf("code %s has HTTP status %d", c.Code, s)
		}
	}
	seen := map[string]bool{}
	for _, c := range ErrorCodes {
		if seen[c.Code] {
			t.Errorf("code %s is listed twice", c.Code)
		}
		seen[c.Code] = true
	}
}
