// Package ledger implements Glovebox's shared state as a function of a signed log: the transactions that
// register vehicles, devices and apps, pair devices and grant permissions; the encoding of the log's
// entries; the rules every entry must pass; and the replay that rebuilds the state from the log.
//
// It owns the rules and nothing around them. It imports nothing of the project: the Merkle log that holds
// the entries (package tlog, store/postgres), the stores that cache the state (store/sqlite,
// store/postgres), the access decisions drawn from it (package access) and the API all sit above it and
// reach it through the small interfaces Log and Store.
//
// # Transactions
//
// A transaction (Tx) is an EIP-712 typed message (https://eips.ethereum.org/EIPS/eip-712) in the domain
// named "Glovebox", version "1", whose salt is the keccak256 hash of the log's origin line and which has no
// chainId (NewDomain): a signature is bound to one log and any wallet can make it. Every message carries a
// nonce, any uint256 its signer did not use in a transaction whose deadline still holds (nonces are
// unordered, so that a wallet may sign several messages at once), and a deadline, a unix time at most
// MaxDeadlineAhead after the sequencer's clock. Once the log's time passes a transaction's deadline, the
// transaction can never be accepted again (it is expired), so the state forgets its nonce: the used
// nonces it holds are those of the last MaxDeadlineAhead at most, however long the log. The
// message types and their fields are the schemas of eip712.go, served by the node at GET /v1/eip712:
//
//	type                signed by
//	RegisterVehicle     the owner
//	RegisterDevice      the device (proof of possession), and the maker when one is named
//	PairDevice          the vehicle's owner and the device
//	UnpairDevice        the vehicle's owner or the device
//	TransferVehicle     the vehicle's owner; every grant on the vehicle ends
//	BurnVehicle         the vehicle's owner; its devices are unpaired, it accepts nothing more
//	RegisterApp         the app's owner and the app (one signature when they are the same key)
//	UpdateApp           the app's owner
//	Grant, Revoke       the vehicle's owner
//	Renounce            the app
//
// # Entries
//
// An entry (Entry) is an accepted transaction with its signatures and the sequencer's accept time in unix
// milliseconds. Its encoding, version EntryVersion, is canonical and documented on Entry: a version byte,
// the accept time, the type, the message's members in EIP-712 declaration order, and one to three 65-byte
// signatures. UnmarshalEntry refuses every input that would not re-encode to the same bytes, so that an
// entry has exactly one encoding and the Merkle tree's leaf hashes say exactly what was accepted. The log
// (C2SP tlog-tiles, package tlog) stores these bytes as its entries; nothing else goes into it.
//
// # Rules
//
// State.Apply is the whole rulebook: it validates one entry against the current state and, if every rule
// holds, applies it; a refused entry changes nothing and returns an *Error whose Code is stable (the API
// hands it on). The checks:
//
//   - the entry's index is the state's size, and its accept time is not before the previous entry's;
//   - the type is known and the entry carries signatures, whose signers the caller recovered
//     (Domain.Signers; Recover accepts only canonical signatures: v 27 or 28, low s);
//   - the deadline is not before the accept time (in whole seconds, AcceptSeconds) and not more than
//     MaxDeadlineAhead after it;
//   - no signer used the nonce in a transaction whose deadline is not before the accept second;
//   - the type's own rules: fields well formed, the right signers, the vehicle, device or app exists and
//     is in the right state (not burned, not already paired, one device of each kind per vehicle, …).
//
// Time is the accept time recorded in the entry, never a clock: deadlines and grant expiries (Grant.ActiveAt,
// to the second) are judged against it, so that every replay reaches the same decision the sequencer did.
//
// # Replay
//
// The state is a function of the log. Replay applies entries [st.Size(), to) of a log to a state, checking
// every signature and every rule exactly as the sequencer did; the first entry that fails stops it with an
// *EntryError naming its index. A log entry that does not replay is proof that the log's operator accepted
// something the rules refuse. After each accepted entry the state forgets the nonces whose deadline is
// before that entry's accept second — the log's own time, never a clock — so every replay forgets the same
// ones at the same entry. State.Digest hashes a canonical listing of the whole state (DigestVersion), so
// two parties that replayed the same log compare one value; Snapshot and the Changes it returns let a store cache the
// state (Store) and a restarted node resume from the cache instead of from entry zero, which Replay then
// catches up.
//
// The Sequencer is the one writer: it validates submissions against the state, appends batches to the Log
// with one durable write each (group commit), and only then makes them visible: it applies a batch once and
// seals it, and readers of the state, who do not wait for the disk meanwhile, see the state before it (the
// undo journal's pre-images, undo.go). A failed append fails its batch, which the state takes back before
// anyone saw it.
package ledger
