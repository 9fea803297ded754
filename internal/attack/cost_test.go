package attack

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/glovebox/glovebox/internal/testnode"
)

func aliased(n int, sel string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d: %s", i, sel)
	}
	return b.String()
}

// TestExpensiveQueriesAreRefusedBeforeTheyRun sends, unauthenticated and signed in, the queries whose
// answers grow with their aliases: each is refused with TOO_COMPLEX, small and fast, and the node keeps
// answering.
func TestExpensiveQueriesAreRefusedBeforeTheyRun(t *testing.T) {
	n := testnode.Start(t, testnode.Options{})
	owner := testnode.NewKey(t)
	vid := n.Vehicle(t, owner)
	token := n.SignIn(t, owner)
	for _, tc := range []struct {
		name, token, query string
	}{
		{"a thousand aliased __schema (20 KB), unauthenticated", "", "{" + aliased(1000, "__schema { types { name fields { name } } }") + " }"},
		{"three hundred aliased __type", "", "{" + aliased(300, `__type(name: "SignalCollection") { fields { name description type { name kind } } }`) + " }"},
		{"types aliased inside one __schema", "", "{ __schema {" + aliased(300, "types { name fields { name args { name } } }") + " } }"},
		{"990 aliases over 1,000 buckets", token, fmt.Sprintf(`{ signals(tokenId: %d, interval: "1m", from: "2026-01-01T00:00:00Z", to: "2026-01-01T16:40:00Z") {%s } }`,
			vid, aliased(990, "speed(agg: AVG)"))},
		{"twenty aliased rawRecords pages of 1,000", token, "{" + aliased(20, fmt.Sprintf(`rawRecords(tokenId: %d, from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", first: 1000) { nodes { event signature } }`, vid)) + " }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			a := graphQL(t, n, tc.token, tc.query)
			if a.code() != "TOO_COMPLEX" || a.Data != nil || len(a.Raw) > 1000 {
				t.Errorf("answer (%d bytes) %.300s", len(a.Raw), a.Raw)
			}
			t.Logf("refused in %s", time.Since(start))
		})
	}
	// The standard introspection query still passes, and so do the node's own queries.
	if a := graphQL(t, n, "", `{ __schema { queryType { name } types { name kind fields { name args { name } type { name kind ofType { name kind } } } } } }`); len(a.Errors) != 0 {
		t.Errorf("introspection: %.300s", a.Raw)
	}
	if a := graphQL(t, n, token, fmt.Sprintf(`{ signalsLatest(tokenId: %d) { lastSeen } }`, vid)); len(a.Errors) != 0 {
		t.Errorf("after the attacks: %.300s", a.Raw)
	}
}
