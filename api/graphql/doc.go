// Package graphql serves the telemetry GraphQL API at /graphql, schema-first with gqlgen and
// field-compatible with DIMO's telemetry API (signalsLatest, availableSignals, signalsSnapshot, signals,
// dataSummary), plus the identity of vehicles (vehicle, vehicles), their owner's accessLog and the
// verifiable rawRecords.
//
// The schema is the authorization reference: schema/signals.graphqls is generated from the signal
// catalogue and every signal field carries @requires(permission: "…"); the directive asks package access
// for the query's vehicle, so a field the caller may not read is null with a FORBIDDEN error naming the
// permission while the other fields resolve. Fields that list signals (@perSignal) leave out the signals
// the caller may not read. vehicle and vehicles carry @vehicleReader (the owner, or an app holding a grant
// in force, whatever its permissions) and accessLog carries @owner. A test fails if any data field has none
// of these directives.
//
// Every read of telemetry goes through Config.Telemetry, a telemetry.Reader (store/sqlite or
// store/postgres): this package holds no SQL and imports no store. signals (history) asks the Reader for
// each signal field asked for (read with graphql.CollectFieldsCtx, by alias), one call per signal with all
// its aggregations; latest values, dataSummary and rawRecords likewise, each confined to the current
// owner's period by the cut-off access.Check returned. The rows of signals carry the grants the query
// decided, so that @requires on each of up to 10,000 rows does not ask the ledger again.
//
// rawRecords (@requires raw) pages through the vehicle's records by (time, seq), with opaque cursors, and
// gives each record its device-signed bytes and signature and the log entry of the pairing in force with
// an inclusion proof (Config.Log), every proof of a page against the one latest checkpoint and each
// pairing proved once per page.
//
// Errors carry a stable extensions.code (see ErrorCodes). Requests are limited in size, depth and
// complexity (MaxBodyBytes, MaxDepth, MaxComplexity).
//
// It reads telemetry only through telemetry.Reader and must not import a store, database/sql or the api
// package above it.
package graphql

//go:generate go run ./internal/gen
//go:generate go tool gqlgen generate --config gqlgen.yml
