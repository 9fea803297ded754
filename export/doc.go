// Package export builds and checks a vehicle owner's data export: one zip archive of everything the node
// holds about one vehicle for the caller's ownership period(s), as the EU Data Act asks ("comprehensive,
// structured, commonly used and machine-readable", with the metadata needed to use it). docs/export.md is
// the reader's guide; this comment is the specification.
//
// # Snapshot
//
// An archive is a pure function of its snapshot and request: the log size and its signed checkpoint (the
// ledger as of that size), the snapshot time At (unix ms: records received after it are left out), the
// vehicle, the caller and the range. The same snapshot gives the same bytes, which is what lets a download
// resume by byte range (Plan.ETag names it; Plan.Snapshot is the token that asks for it again). Driving
// events, trips and the access log are read as the node holds them when the archive is built, cut at At;
// only a device's delayed upload of records measured before At changes them between two builds.
//
// # Scope
//
// The caller's ownership periods come from the vehicle's RegisterVehicle and TransferVehicle entries up to
// the snapshot's log size: from the entry that gave the caller the vehicle to the entry that gave it to
// someone else (or At). Everything time-stamped (records by measurement time, values, events, trips,
// grant entries, access-log entries) is kept only inside those periods intersected with [from, to) of the
// request. Nothing of another vehicle is read.
//
// # Layout
//
// The archive is a zip file (deflate), its members in this order, each stamped with the snapshot time:
//
//	README.txt         what each file holds, in words
//	export.json        the manifest: format, vehicle, owner, periods, range, snapshot, log origin and size
//	checkpoint.txt     the signed C2SP checkpoint (the log size of the snapshot) every proof is against
//	ledger.ndjson      the log entries the archive relies on, each with its RFC 6962 inclusion proof: the
//	                   vehicle's registration, transfers, pairings, unpairings and burn, the registration
//	                   of every device paired to it, and its grants, revocations and renouncements in the
//	                   periods
//	catalogue.csv      the signal catalogue: name, VSS path, VSS type, value type, unit, permission
//	records.ndjson     the device-signed records, by measurement time: the exact event bytes (a JSON
//	                   string), the signature, the receive time and the PairDevice entry that admitted it
//	signals.csv        every signal value of those records: time, signal, value, unit
//	signals.ndjson     the same values, one JSON object a line
//	events.ndjson      driving events (device-sent and derived from speed)
//	trips.ndjson       trips (ignition detection, DIMO's segments with default settings)
//	grants.ndjson      the grant history: every Grant, Revoke and Renounce in the periods
//	access-log.ndjson  who other than the owner read what, newest first
//	summary.json       how many lines each file holds
//
// Times are RFC 3339 in UTC with milliseconds. Signal values: numbers as the shortest decimal that reads
// back as the same float64; booleans as 1 and 0 (as the API answers them); strings as they are; string
// lists as a JSON array; locations as {"latitude", "longitude", "hdop"}. In signals.csv a value that needs
// it is quoted as RFC 4180 says.
//
// # Verification
//
// Verify checks an archive offline against the log's public key: the checkpoint's signature, every
// ledger entry's inclusion proof, the ownership periods the manifest states against the entries, every
// record's device signature, subject, uniqueness, pairing (its device paired to the vehicle at its time by
// the entry it names) and period, that signals.csv and signals.ndjson hold exactly the values of the
// records, and the counts of summary.json. A failure is a *Failure naming the check, file and line.
//
// It reads through telemetry.Reader, the ledger and the log's interfaces, and imports only accesslog,
// ledger, telemetry, telemetry/segment and tlog: it must not import a store or the API, which serves it.
package export
