package graphql

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"

	"github.com/glovebox/glovebox/api/graphql/internal/exec"
)

// standardIntrospection is the query GraphiQL and graphql-js's getIntrospectionQuery send.
const standardIntrospection = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }`

func TestComplexityCountsIntrospectionBucketsAndPages(t *testing.T) {
	es := exec.NewExecutableSchema(exec.Config{Resolvers: &resolver{}, Complexity: complexityRoot()})
	aliases := func(n int, sel string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, " a%d: %s", i, sel)
		}
		return b.String() + " }"
	}
	for _, tc := range []struct {
		name  string
		query string
		pass  bool
	}{
		{"the standard introspection query", standardIntrospection, true},
		{"two of them in one operation", strings.Replace(standardIntrospection, "__schema {", "a: __schema { queryType { name } } b: __schema {", 1), true},
		{"a thousand aliased __schema", aliases(1000, "__schema { types { name } }"), false},
		{"a hundred aliased __schema listing every field", aliases(100, "__schema { types { name fields { name } } }"), false},
		{"__type aliased two hundred times", aliases(200, `__type(name: "SignalCollection") { fields { name type { name } } }`), false},
		{"types aliased inside one __schema", "{ __schema { " + aliases(200, "types { name fields { name } }")[1:] + " }", false},
		{"a chart: 8,640 buckets of seven fields", `{ signals(tokenId: 1, interval: "5m", from: "2026-01-01T00:00:00Z", to: "2026-01-31T00:00:00Z") { timestamp a: speed(agg: AVG) b: speed(agg: MAX) c: speed(agg: MIN) d: powertrainTransmissionTravelledDistance(agg: FIRST) e: powertrainTransmissionTravelledDistance(agg: LAST) f: powertrainTransmissionTravelledDistance(agg: MAX) } }`, true},
		{"990 aliases over 1,000 buckets", "{ signals(tokenId: 1, interval: \"1m\", from: \"2026-01-01T00:00:00Z\", to: \"2026-01-01T16:40:00Z\") {" + aliases(990, "speed(agg: AVG)")[1:] + " }", false},
		{"rawRecords pages of 1,000 aliased 20 times", aliases(20, `rawRecords(tokenId: 1, from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", first: 1000) { nodes { event signature pairing { entry inclusionProof } } }`), false},
		{"one rawRecords page of 1,000", `{ rawRecords(tokenId: 1, from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", first: 1000) { nodes { event signature pairing { entry inclusionProof } } } }`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, errs := gqlparser.LoadQuery(es.Schema(), tc.query)
			if errs != nil {
				t.Fatal(errs)
			}
			n := operationComplexity(context.Background(), es, doc.Operations[0], nil)
			if pass := n <= MaxComplexity; pass != tc.pass {
				t.Errorf("complexity %d; passes %v, want %v", n, pass, tc.pass)
			}
			t.Logf("complexity %d", n)
		})
	}
}
