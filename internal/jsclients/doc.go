// Package jsclients holds the interoperability tests that run stock JavaScript clients in Node against a
// real node: the graphql-ws client for GraphQL subscriptions and the standardwebhooks library as a webhook
// receiver. package.json pins them; the tests install them with npm ci into the user's cache directory, so
// go test writes nothing into the checkout. It has no code of its own, so it imports nothing and nothing
// imports it.
package jsclients
