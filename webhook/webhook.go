// Package webhook tells apps about changes as they happen: it keeps the webhooks apps register, turns
// accepted telemetry and ledger changes into events (CloudEvents 1.0), and delivers them from a durable
// outbox, signed as Standard Webhooks (https://www.standardwebhooks.com/: webhook-id, webhook-timestamp,
// webhook-signature with "v1," HMAC-SHA256 and "v1a," Ed25519), retried with exponential backoff and jitter
// for at least a day.
//
// Delivery is at least once: a delivery's id (the webhook-id header) is fixed when it is enqueued and is
// the same on every attempt. Before every attempt the app's grant on the vehicle is checked again against
// the ledger's current state: after a revoke, an expiry or a transfer the delivery is dropped and the drop
// recorded. Targets are dialled through a guard that refuses loopback, private, link-local and other
// non-public addresses on the address actually connected to (after resolution), and redirects are not
// followed.
//
// The outbox is a Store (SQLite on a single node, PostgreSQL in a cluster): deliveries are leased to one
// process at a time, so that a process killed mid-delivery leaves its deliveries to another once the lease
// runs out.
//
// It imports ledger, access, accesslog, telemetry and webhook/outbox; never a store (its Store is
// webhook/outbox's) or the API.
package webhook

import "github.com/glovebox/glovebox/webhook/outbox"

// The types of the webhook store live in package outbox, below both this package and the stores that
// implement them; these are their names here, so that the callers of webhook need import only webhook.
type (
	Status         = outbox.Status
	Trigger        = outbox.Trigger
	Webhook        = outbox.Webhook
	DeliveryStatus = outbox.DeliveryStatus
	Delivery       = outbox.Delivery
	Attempt        = outbox.Attempt
	Store          = outbox.Store
)

// The webhook states (outbox.Status). Only active webhooks receive events.
const (
	StatusPending            = outbox.StatusPending
	StatusActive             = outbox.StatusActive
	StatusVerificationFailed = outbox.StatusVerificationFailed
	StatusDisabled           = outbox.StatusDisabled
)

// The trigger kinds (outbox.Trigger.Kind).
const (
	KindSignal       = outbox.KindSignal
	KindEvent        = outbox.KindEvent
	KindTrip         = outbox.KindTrip
	KindConnectivity = outbox.KindConnectivity
	KindGrant        = outbox.KindGrant
)

// The delivery states (outbox.DeliveryStatus).
const (
	DeliveryPending   = outbox.DeliveryPending
	DeliveryDelivered = outbox.DeliveryDelivered
	DeliveryFailed    = outbox.DeliveryFailed
	DeliveryDropped   = outbox.DeliveryDropped
)

// Errors stores return (outbox's).
var (
	ErrNotFound = outbox.ErrNotFound
	ErrExists   = outbox.ErrExists
)

// DefaultSilence is how long a vehicle may stay silent before a connectivity trigger calls it offline.
const DefaultSilence = outbox.DefaultSilence

// LeasingStore is a Store that leases deliveries to the engine as it enqueues them (outbox's).
type LeasingStore = outbox.LeasingStore
