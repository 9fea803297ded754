// Package graphql serves the telemetry GraphQL API at /graphql, schema-first with gqlgen and
// field-compatible with DIMO's telemetry API (signalsLatest, availableSignals, signalsSnapshot).
//
// The schema is the authorization reference: schema/signals.graphqls is generated from the signal
// catalogue and every signal field carries @requires(permission: "…"); the directive asks package access
// for the query's vehicle, so a field the caller may not read is null with a FORBIDDEN error naming the
// permission while the other fields resolve. Fields that list signals (@perSignal) leave out the signals
// the caller may not read. A test fails if any data field has neither directive.
//
// Errors carry a stable extensions.code (see ErrorCodes). Requests are limited in size, depth and
// complexity (MaxBodyBytes, MaxDepth, MaxComplexity).
package graphql

//go:generate go run ./internal/gen
//go:generate go tool gqlgen generate --config gqlgen.yml
