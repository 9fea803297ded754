package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/ledger"
)

// Limits of a webhook.
const (
	MaxDescription = 256
	MaxVehicles    = 1000
	MaxPerApp      = 100
	// AllGranted is the value of "vehicles" that covers every vehicle the app holds a grant on.
	AllGranted = "all-granted"
)

// Errors of the management calls, for the API to branch on.
var (
	ErrForbidden  = errors.New("only the app itself or its registered owner manages its webhooks")
	ErrUnknownApp = errors.New("no such app")
	ErrNotActive  = errors.New("the webhook is not active")
	ErrTooMany    = fmt.Errorf("an app has at most %d webhooks", MaxPerApp)
)

// Input is a webhook as an app registers or changes it: the JSON body of POST and PATCH. In a PATCH an
// absent field is left as it is.
type Input struct {
	URL         *string         `json:"url"`
	Description *string         `json:"description"`
	Vehicles    json.RawMessage `json:"vehicles"`
	Trigger     *Trigger        `json:"trigger"`
	// Status, in a PATCH only: "active" re-enables a disabled webhook (after a new verification),
	// "disabled" pauses it.
	Status *Status `json:"status"`
}

// ParseInput reads a POST or PATCH body strictly: unknown fields and trailing data are refused.
func ParseInput(body []byte) (*Input, error) {
	var in Input
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		field := "body"
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			field = ute.Field
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = strings.Trim(f, `"`)
		}
		return nil, fieldErr(field, CodeInvalidField, "bad JSON: %v", err)
	}
	if dec.More() {
		return nil, fieldErr("body", CodeInvalidField, "trailing data after the JSON object")
	}
	return &in, nil
}

// parseVehicles reads "vehicles": "all-granted" or a list of 1 to MaxVehicles distinct vehicle ids.
func parseVehicles(raw json.RawMessage) (ids []uint64, all bool, err error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s != AllGranted {
			return nil, false, fieldErr("vehicles", CodeInvalidField, `vehicles is a list of vehicle ids or "all-granted"`)
		}
		return nil, true, nil
	}
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, false, fieldErr("vehicles", CodeInvalidField, `vehicles is a list of vehicle ids or "all-granted"`)
	}
	if len(ids) == 0 || len(ids) > MaxVehicles {
		return nil, false, fieldErr("vehicles", CodeInvalidField, "vehicles lists 1 to %d vehicle ids", MaxVehicles)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(ids) || sorted[0] == 0 {
		return nil, false, fieldErr("vehicles", CodeInvalidField, "vehicle ids are positive and distinct")
	}
	return ids, false, nil
}

// authorize checks that caller may manage app's webhooks.
func authorize(st *ledger.State, caller, app common.Address) error {
	if caller == (common.Address{}) {
		return access.ErrUnauthenticated
	}
	a, ok := st.App(app)
	if !ok {
		return ErrUnknownApp
	}
	if owner, err := ledger.ParseAddress(a.Owner); caller != app && (err != nil || owner != caller) {
		return ErrForbidden
	}
	return nil
}

// Authorize checks that caller (the subject of a bearer token) may manage app's webhooks: it is the app or
// the app's registered owner.
func (e *Engine) Authorize(caller, app common.Address) error {
	var err error
	e.opts.State(func(st *ledger.State) { err = authorize(st, caller, app) })
	return err
}

// check validates w (complete) against the policy, the catalogue and the app's grants now.
func (e *Engine) check(w *Webhook) error {
	if err := e.opts.Policy.CheckURL(w.URL); err != nil {
		return fieldErr("url", CodeInvalidURL, "%v", err)
	}
	if len(w.Description) > MaxDescription || !utf8.ValidString(w.Description) {
		return fieldErr("description", CodeInvalidField, "the description is UTF-8 of at most %d bytes", MaxDescription)
	}
	if _, err := CheckTrigger(&w.Trigger, e.opts.Catalog); err != nil {
		return err
	}
	perms := TriggerPermissions(&w.Trigger, e.opts.Catalog)
	now := e.opts.Now()
	var err error
	e.opts.State(func(st *ledger.State) {
		for _, v := range w.Vehicles {
			if _, ok := st.Vehicle(v); !ok {
				err = fieldErr("vehicles", CodeNotGranted, "no vehicle %d", v)
				return
			}
			if w.Trigger.Kind == KindGrant {
				continue
			}
			if aerr := Allowed(st, w.App, v, perms, now); aerr != nil {
				field := "vehicles"
				var d *access.Denied
				if errors.As(aerr, &d) && d.Permission != ledger.PermStream {
					field = "trigger.kind"
					if w.Trigger.Kind == KindSignal {
						field = "trigger.signal"
					}
				}
				err = fieldErr(field, CodeNotGranted, "vehicle %d: %v", v, aerr)
				return
			}
		}
	})
	return err
}

// Create registers a webhook of app for caller and starts its verification. Bad input is a *FieldError
// and creates nothing.
func (e *Engine) Create(ctx context.Context, caller, app common.Address, in *Input) (*Webhook, error) {
	if err := e.Authorize(caller, app); err != nil {
		return nil, err
	}
	if in.Status != nil {
		return nil, fieldErr("status", CodeInvalidField, "a new webhook starts pending verification; status is set by PATCH")
	}
	if in.URL == nil {
		return nil, fieldErr("url", CodeInvalidURL, "a webhook needs a url")
	}
	if in.Trigger == nil {
		return nil, fieldErr("trigger", CodeInvalidTrigger, "a webhook needs a trigger")
	}
	if in.Vehicles == nil {
		return nil, fieldErr("vehicles", CodeInvalidField, `a webhook needs vehicles: a list of vehicle ids or "all-granted"`)
	}
	now := e.opts.Now().UTC()
	w := &Webhook{ID: newID("wh_"), App: app, URL: *in.URL, Trigger: *in.Trigger, Secret: NewSecret(), Status: StatusPending,
		Created: now, Updated: now}
	if in.Description != nil {
		w.Description = *in.Description
	}
	var err error
	if w.Vehicles, w.AllGranted, err = parseVehicles(in.Vehicles); err != nil {
		return nil, err
	}
	if err := e.check(w); err != nil {
		return nil, err
	}
	existing, err := e.store.Webhooks(ctx, app)
	if err != nil {
		return nil, err
	}
	if len(existing) >= MaxPerApp {
		return nil, ErrTooMany
	}
	if err := e.store.CreateWebhook(ctx, w); err != nil {
		return nil, fmt.Errorf("couldn't store the webhook: %w", err)
	}
	if err := e.refresh(ctx, w.ID); err != nil {
		return nil, err
	}
	e.requestVerify(w.ID)
	return w, nil
}

func (e *Engine) requestVerify(id string) {
	select {
	case e.verifyQ <- id:
	default:
		// The queue is full; the webhook stays pending and is verified at the next start.
		e.logger.Warn("the verification queue is full", "webhook", id)
	}
}

// Get returns app's webhook id for caller.
func (e *Engine) Get(ctx context.Context, caller, app common.Address, id string) (*Webhook, error) {
	if err := e.Authorize(caller, app); err != nil {
		return nil, err
	}
	w, err := e.store.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	if w.App != app {
		return nil, ErrNotFound
	}
	return w, nil
}

// List returns app's webhooks for caller.
func (e *Engine) List(ctx context.Context, caller, app common.Address) ([]*Webhook, error) {
	if err := e.Authorize(caller, app); err != nil {
		return nil, err
	}
	return e.store.Webhooks(ctx, app)
}

// Update changes app's webhook id for caller; a new URL or status active starts a new verification. Bad
// input is a *FieldError and changes nothing.
func (e *Engine) Update(ctx context.Context, caller, app common.Address, id string, in *Input) (*Webhook, error) {
	w, err := e.Get(ctx, caller, app, id)
	if err != nil {
		return nil, err
	}
	reverify := false
	if in.URL != nil && *in.URL != w.URL {
		w.URL, reverify = *in.URL, true
	}
	if in.Description != nil {
		w.Description = *in.Description
	}
	if in.Trigger != nil {
		w.Trigger = *in.Trigger
	}
	if in.Vehicles != nil {
		if w.Vehicles, w.AllGranted, err = parseVehicles(in.Vehicles); err != nil {
			return nil, err
		}
	}
	if in.Status != nil {
		switch *in.Status {
		case StatusActive:
			if w.Status != StatusActive {
				reverify = true
			}
		case StatusDisabled:
			w.Status, w.Reason = StatusDisabled, "disabled by the app"
		default:
			return nil, fieldErr("status", CodeInvalidField, "status is set to active or disabled")
		}
	}
	if err := e.check(w); err != nil {
		return nil, err
	}
	if reverify && (in.Status == nil || *in.Status != StatusDisabled) {
		w.Status, w.Reason = StatusPending, ""
	}
	w.Updated = e.opts.Now().UTC()
	if err := e.store.UpdateWebhook(ctx, w); err != nil {
		return nil, fmt.Errorf("couldn't store the webhook: %w", err)
	}
	if err := e.refresh(ctx, w.ID); err != nil {
		return nil, err
	}
	if w.Status == StatusPending {
		e.requestVerify(w.ID)
	}
	return w, nil
}

// Delete deletes app's webhook id for caller, dropping its pending deliveries.
func (e *Engine) Delete(ctx context.Context, caller, app common.Address, id string) error {
	if _, err := e.Get(ctx, caller, app, id); err != nil {
		return err
	}
	if err := e.store.DeleteWebhook(ctx, id); err != nil {
		return err
	}
	return e.refresh(ctx, id)
}

// Deliveries lists a webhook's deliveries for caller, newest first.
func (e *Engine) Deliveries(ctx context.Context, caller, app common.Address, id, before string, limit int) ([]*Delivery, error) {
	if _, err := e.Get(ctx, caller, app, id); err != nil {
		return nil, err
	}
	return e.store.Deliveries(ctx, id, before, limit)
}

// Retry makes a finished delivery of the webhook pending again, due now.
func (e *Engine) Retry(ctx context.Context, caller, app common.Address, id, delivery string) (*Delivery, error) {
	if _, err := e.Get(ctx, caller, app, id); err != nil {
		return nil, err
	}
	d, err := e.store.Delivery(ctx, delivery)
	if err != nil {
		return nil, err
	}
	if d.Webhook != id {
		return nil, ErrNotFound
	}
	if d, err = e.store.Retry(ctx, delivery, e.opts.Now()); err != nil {
		return nil, err
	}
	e.poke()
	return d, nil
}

// TestData is the data of a glovebox.webhook.test event.
type TestData struct {
	WebhookID string `json:"webhookId"`
	Message   string `json:"message"`
}

// Test enqueues a glovebox.webhook.test event to an active webhook.
func (e *Engine) Test(ctx context.Context, caller, app common.Address, id string) (*Delivery, error) {
	w, err := e.Get(ctx, caller, app, id)
	if err != nil {
		return nil, err
	}
	if w.Status != StatusActive {
		return nil, ErrNotActive
	}
	d, err := e.newDelivery(newID("msg_"), w, 0, TypeTest, nil, e.opts.Now(), TestData{WebhookID: w.ID, Message: "a test event sent on request"})
	if err != nil {
		return nil, err
	}
	// The dispatcher may attempt d (and change it) as soon as it is enqueued, while the caller shows it:
	// the caller gets a copy, as enqueued.
	shown := *d
	if err := e.enqueue(ctx, []*Delivery{d}); err != nil {
		return nil, err
	}
	return &shown, nil
}
