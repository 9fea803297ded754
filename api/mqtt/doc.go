// Package mqtt is the node's MQTT transport for device telemetry: an embedded MQTT 3.1.1 and 5 broker
// (mochi-mqtt) that takes the same signed records as POST /v1/events, and a small client (Publisher) for
// devices, the simulator and benchmarks.
//
// # Topics
//
// A device publishes to glovebox/v1/devices/<address>/events, where <address> is its own 0x address
// (lower-case hex recommended; upper-case and EIP-55 are accepted too). The payload is exactly the body of
// POST /v1/events: one envelope {"event": "<the CloudEvents bytes as a JSON string>", "signature":
// "0x…"} or an array of up to 1,000 (MaxBatch), at most 16 MiB (MaxPayload).
//
// A device may subscribe to glovebox/v1/devices/<address>/results, its own results topic, and to nothing
// else: no wildcards, no other device's topics, no $SYS, no shared subscriptions. After each publish,
// the connection that published receives, if it subscribed, one message on that topic (QoS 0, written
// before the PUBACK) holding exactly what POST /v1/events would have answered: one result
// {"id","source","status","message"} for a single envelope, an array of them (in order) for an array, or
// {"error":{"code","message"}} when the payload as a whole is not an envelope or an array of at most
// 1,000. On MQTT 5 the results message carries the publish's correlation data and content type
// application/json.
//
// # Acknowledged means durable
//
// The broker verifies and stores a message's records (telemetry.Ingester.Ingest) before it sends the
// PUBACK (QoS 1) or PUBREC (QoS 2): when the device has its acknowledgement, every record that verified
// is on disk. Records that fail verification are still acknowledged (QoS 1 acknowledges receipt; the
// results say why each was refused), but on MQTT 5 a PUBACK for a message whose every record was refused
// carries a reason code: 0x99 (payload format invalid) when a record or the payload is malformed, has an
// unknown signal or a bad value; else 0x87 (not authorized) when a record has a bad signature or its
// device was not paired; else 0x83 (implementation specific error, e.g. conflicts or future times). When
// the node could not store the records (disk error, shutting down) there is no acknowledgement: the
// connection is closed and the device publishes again. QoS 0 messages are ingested the same way, without
// acknowledgement.
//
// A connection's messages are handled one at a time, in order (the broker reads the next one after the
// previous one is acknowledged); many devices' messages share each disk sync. For throughput, batch
// records into arrays or open several connections.
//
// Refused outright: retained publishes (the connection is closed; MQTT 5: DISCONNECT 0x9A first);
// publishes to any other topic (QoS 1/2 on MQTT 5: PUBACK 0x87; on MQTT 3.1.1 the connection is closed;
// QoS 0 is dropped); wildcard, shared or foreign subscriptions (SUBACK 0x87 on MQTT 5, 0x80 on 3.1.1);
// wills (CONNACK not authorized) and topic aliases. The CONNACK of MQTT 5 says so (retain, wildcard and
// shared subscriptions unavailable, no topic aliases). Client ids are scoped to the device, so a device
// can't take over another's session. A connection lives as long as its login token: the first publish
// after the token expired closes it (MQTT 5: DISCONNECT 0xA0) and the device logs in again with a fresh
// token.
//
// # Connections
//
// A connection must send its CONNECT, of at most MaxConnectPacket bytes, within Config.ConnectTimeout
// (DefaultConnectTimeout) of being accepted, or it is closed; a first packet whose fixed header
// announces more is closed at once, before the broker allocates for it. One client address (an IPv4
// address, an IPv6 /64) holds at most Config.MaxConnsPerAddress connections at once (`glovebox serve
// --max-conns-per-address`, 256 by default, counted apart from the HTTP API's) and all clients at most
// Config.MaxConns (`--mqtt-max-conns`); one over either is closed before anything is read. A packet
// larger than SmallPacket takes twice its length from PacketMemory
// (PacketMemoryPerAddress for one address) before the broker sees its header, and waits, unread, while
// that does not fit; the share goes back when the connection asks for its next packet, and the packet
// must keep arriving at MinPacketRate once its share is taken (after a grace of the connect timeout). The payloads being worked on (parsed,
// verified, waiting to be durable) are bounded by MessageBytesInFlight, as HTTP bodies are. See docs/api.md, "Limits of a public
// node".
//
// # Login
//
// A device logs in with user name = its 0x address and password = a login token
//
//	<expires>.<signature>
//
// where <expires> is the token's expiry in unix seconds (decimal, in the future and at most 24 h ahead of
// the node's clock; 5 minutes of clock skew are tolerated) and <signature> is the 65-byte EIP-191
// personal_sign signature r‖s‖v (0x and 130 hex digits; the 0x may be left out, v may be 27/28 or 0/1, s
// must be in the lower half of the curve order, as wallets make it) by the device key over the message
//
//	glovebox mqtt login
//	origin: <the log's origin line, as in GET /v1/node>
//	device: <the device address, lower-case 0x hex>
//	expires: <expires>
//
// (lines joined by "\n", no trailing line break). Any Ethereum library produces it, e.g. ethers'
// wallet.signMessage(message), viem's signMessage or go-ethereum's crypto.Sign(accounts.TextHash(message),
// key). The node checks that the user name (any case; EIP-55 checked when mixed) is the address of a
// device registered in the ledger, that the signature recovers to it, that the origin is its own and that
// the token has not expired; otherwise the CONNACK says bad user name or password (0x86 on MQTT 5; mochi
// maps it to return code 5, not authorized, on 3.1.1). LoginToken makes a token; `glovebox device
// mqtt-password` prints one.
//
// It imports only ledger, telemetry and internal/connlimit: the node hands it an Ingester; it never imports a
// store or the API.
package mqtt
