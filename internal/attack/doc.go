// Package attack is Glovebox's adversarial test suite: each test attacks a real node (its API served over
// loopback HTTP, real SQLite stores, real signatures) the way an outsider would, and checks that the node
// refuses with a stable code, stores nothing it should not and keeps answering others.
//
// The tests are grouped by class, one file each:
//
//   - cost_test.go: requests whose answer costs far more than their bytes (aliases, introspection,
//     buckets, pages).
//   - slowclient_test.go: clients that hold connections open (trickled bodies, many connections from one
//     address).
//   - signedbytes_test.go: every filter that inspects signed bytes must read them as a standard JSON
//     parser would (escapes, duplicate keys, what is not RFC 8259 JSON).
//   - writes_test.go: requests that make the node write per requested field or per request (access log,
//     transactions, events).
//   - budget_test.go: per-caller limits that fresh accounts must not multiply.
//   - time_test.go: records and transactions timed around an ownership or a pairing change.
//   - text_test.go: text that reorders or hides what a person reads, and headers that protect pages.
//   - oauth_test.go: the OAuth endpoints' promises (client authentication, token growth).
//   - promises_test.go: refusals the documentation promises (codes a stranger or a lone device gets).
//
// The package has no non-test code besides this comment; its tests import internal/testnode and attack a
// whole node from outside, and nothing imports it.
package attack
