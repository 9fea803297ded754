// Package credential issues and verifies verifiable credentials about a vehicle (SD-JWT VC, RFC 9901 and
// the IETF SD-JWT VC draft): odometer, mileage, movement and VIN, each backed by evidence a verifier checks
// offline with only the log's public key — the device-signed records it follows from, the PairDevice entry
// that made the device speak for the car with its inclusion proof, and a checkpoint signed by the log key.
// See docs/credentials.md.
//
// It imports only ledger, telemetry and tlog: the stores keep issuances through its types, the API and the
// CLI call it; it never imports a store or the API.
package credential
