// Package outbox is the storage contract of webhooks: the webhooks apps register, the deliveries on their
// way to them (the outbox) and the Store that keeps both durably. Package webhook (the engine, above) uses
// a Store; the stores (below) implement it. It imports nothing of the project, so that a store can
// implement it without importing the engine.
//
// It imports no other Glovebox package, so that the stores can implement it without importing the engine.
package outbox

import (
	"context"
	"errors"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Status is a webhook's state.
type Status string

// The webhook states. Only active webhooks receive events.
const (
	StatusPending            Status = "pending_verification" // created; the verification challenge is on its way
	StatusActive             Status = "active"
	StatusVerificationFailed Status = "verification_failed" // the endpoint did not answer the challenge
	StatusDisabled           Status = "disabled"            // 410 Gone, or the last retry failed; PATCH status to active again
)

// The trigger kinds.
const (
	KindSignal       = "signal"
	KindEvent        = "event"
	KindTrip         = "trip"
	KindConnectivity = "connectivity"
	KindGrant        = "grant"
)

// Trigger says which changes a webhook hears about.
type Trigger struct {
	Kind string `json:"kind"`
	// Signal and Condition (CEL over value and previousValue) for kind signal.
	Signal    string `json:"signal,omitempty"`
	Condition string `json:"condition,omitempty"`
	// CooldownSeconds is the least time between two firings for one vehicle (kind signal).
	CooldownSeconds int `json:"cooldownSeconds,omitempty"`
	// Name of the driving event (kind event).
	Name string `json:"name,omitempty"`
	// SilenceSeconds is how long a vehicle sends nothing before it is offline (kind connectivity);
	// zero means DefaultSilence.
	SilenceSeconds int `json:"silenceSeconds,omitempty"`
}

// DefaultSilence is how long a vehicle may stay silent before a connectivity trigger calls it offline.
const DefaultSilence = 5 * time.Minute

// Silence returns the connectivity trigger's silence in seconds.
func (t *Trigger) Silence() int64 {
	if t.SilenceSeconds == 0 {
		return int64(DefaultSilence.Seconds())
	}
	return int64(t.SilenceSeconds)
}

// Webhook is one registered endpoint of an app.
type Webhook struct {
	ID          string         `json:"id"`
	App         common.Address `json:"-"`
	URL         string         `json:"url"`
	Description string         `json:"description"`
	// Vehicles lists the vehicles it covers; AllGranted covers every vehicle the app holds a grant on.
	Vehicles   []uint64 `json:"-"`
	AllGranted bool     `json:"-"`
	Trigger    Trigger  `json:"trigger"`
	// Secret is the HMAC key in the Standard Webhooks form, "whsec_" and base64 of 32 random bytes.
	Secret  string    `json:"-"`
	Status  Status    `json:"status"`
	Reason  string    `json:"statusReason,omitempty"` // why it is disabled or failed verification
	Created time.Time `json:"createdAt"`
	Updated time.Time `json:"updatedAt"`
}

// Covers reports whether the webhook covers vehicle id (for AllGranted: if the app holds a grant, which
// the caller checks).
func (w *Webhook) Covers(id uint64) bool {
	if w.AllGranted {
		return true
	}
	for _, v := range w.Vehicles {
		if v == id {
			return true
		}
	}
	return false
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// The delivery states.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"  // the last retry failed, or the webhook answered 410
	DeliveryDropped   DeliveryStatus = "dropped" // the grant ended, or the webhook was deleted or disabled
)

// Delivery is one event on its way to one webhook. ID is the webhook-id header and the CloudEvent id.
type Delivery struct {
	ID      string         `json:"id"`
	Webhook string         `json:"webhookId"`
	App     common.Address `json:"-"`
	Vehicle uint64         `json:"vehicleId,omitempty"`
	Type    string         `json:"type"`
	// Permissions the body used: each must still be granted (with stream) at every attempt. Empty for
	// events about the grant itself and for tests.
	Permissions []string `json:"permissions"`
	Body        []byte   `json:"-"` // the CloudEvent, fixed at enqueue
	// Measured is the earliest measurement time of the telemetry the body carries (a signal value, a
	// driving event, a trip's start, the last-seen time of a connectivity change); zero when it carries
	// none. Retention and erasure delete the deliveries whose Measured falls in what they delete.
	Measured    time.Time      `json:"-"`
	Status      DeliveryStatus `json:"status"`
	Attempts    int            `json:"attempts"`
	Created     time.Time      `json:"createdAt"`
	NextAttempt time.Time      `json:"nextAttemptAt,omitzero"`
	// LastCode is the HTTP status of the last attempt (0: no answer); LastError says what went wrong.
	LastCode  int       `json:"lastResponseCode,omitempty"`
	LastError string    `json:"lastError,omitempty"`
	Done      time.Time `json:"finishedAt,omitzero"`
}

// Attempt is the outcome of one delivery attempt, as the engine records it.
type Attempt struct {
	Time     time.Time
	Code     int    // HTTP status; 0 when there was no answer
	Error    string // empty on success
	Duration time.Duration
}

// Errors stores return.
var (
	ErrNotFound = errors.New("webhook: not found")
	ErrExists   = errors.New("webhook: a delivery with this id exists")
)

// Store keeps webhooks and the outbox of deliveries. store/sqlite (a single node) and store/postgres (a
// cluster, shared by its processes) implement it; store/storetest.TestWebhooks checks both.
//
// Every method that changes state MUST have made the change durable when it returns without error: a
// delivery enqueued survives a crash of the process (kill -9) right after Enqueue returns.
type Store interface {
	CreateWebhook(ctx context.Context, w *Webhook) error
	// UpdateWebhook replaces the webhook's mutable fields (URL, description, vehicles, trigger, status,
	// reason, updated); ErrNotFound when it does not exist.
	UpdateWebhook(ctx context.Context, w *Webhook) error
	// DeleteWebhook deletes the webhook and drops its pending deliveries; ErrNotFound when it does not exist.
	DeleteWebhook(ctx context.Context, id string) error
	Webhook(ctx context.Context, id string) (*Webhook, error)
	// Webhooks lists the app's webhooks, or every webhook for the zero address, oldest first.
	Webhooks(ctx context.Context, app common.Address) ([]*Webhook, error)

	// Enqueue adds deliveries in one transaction. A delivery whose id is already in the outbox is skipped
	// (ids derived from a log entry make re-enqueueing after a restart harmless).
	Enqueue(ctx context.Context, ds []*Delivery) error
	// Claim leases up to limit pending deliveries whose next attempt is due at now and whose lease ran
	// out, until now+lease: no other Claim returns them before then, in this process or any other that
	// shares the store. It returns none of the webhooks in busy, and of each webhook at most perWebhook
	// less the number of its deliveries whose lease has not run out (a process that died holding a lease
	// holds that slot until the lease ends). A delivery claimed again after its lease ran out keeps its id.
	Claim(ctx context.Context, now time.Time, limit, perWebhook int, busy []string, lease time.Duration) ([]*Delivery, error)
	// Finish records an attempt and the delivery's new status, next attempt and lease (released).
	Finish(ctx context.Context, d *Delivery, a Attempt) error
	// Drop marks the pending deliveries of app on vehicle dropped with reason, and returns them.
	Drop(ctx context.Context, app common.Address, vehicle uint64, reason string, now time.Time) ([]*Delivery, error)
	// Retry makes a finished delivery pending again, due at now.
	Retry(ctx context.Context, id string, now time.Time) (*Delivery, error)
	Delivery(ctx context.Context, id string) (*Delivery, error)
	// Deliveries lists a webhook's deliveries newest first, those created before the delivery named by
	// before ("" for the newest), at most limit.
	Deliveries(ctx context.Context, webhook string, before string, limit int) ([]*Delivery, error)
	// Pending counts a webhook's pending deliveries.
	Pending(ctx context.Context, webhook string) (int, error)

	// Cursor and SetCursor keep a named position (how far the engine has followed the ledger's log).
	Cursor(ctx context.Context, name string) (int64, bool, error)
	SetCursor(ctx context.Context, name string, pos int64) error
}

// LeasingStore is a Store that can lease deliveries to the caller as it enqueues them, so that the caller
// attempts them at once, without a Claim reading them back from the outbox. store/sqlite implements it
// (one process uses its file, and its leases are in memory); a Store without it is claimed from.
type LeasingStore interface {
	Store
	// EnqueueLeased is Enqueue that also leases the deliveries it adds to the caller until until, as Claim
	// would have, and returns them; a delivery whose id is already in the outbox is skipped and not
	// returned. Like Enqueue, it MUST have made the deliveries durable when it returns without error.
	EnqueueLeased(ctx context.Context, ds []*Delivery, until time.Time) ([]*Delivery, error)
	// Release ends the leases of deliveries leased and not attempted, so that the next Claim may return
	// them.
	Release(ids []string)
}
