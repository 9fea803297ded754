package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/webhook"
)

// Webhook API error codes (besides the field codes of package webhook).
const (
	CodeWebhookNotActive = "webhook_not_active"
	CodeWebhookLimit     = "webhook_limit"
)

// webhookErrorCodes documents the codes of the webhook API.
var webhookErrorCodes = []ErrorCode{
	{webhook.CodeInvalidURL, http.StatusBadRequest, "the webhook url is not https:// (plain http:// only when the operator allows it), is longer than 2,048 bytes, is not an absolute URL, or names a loopback, private or link-local address; `field` names it"},
	{webhook.CodeInvalidTrigger, http.StatusBadRequest, "the trigger's kind is missing or unknown, it carries fields its kind does not take, a number is out of range, or an event trigger names no known driving event; `field` names it"},
	{webhook.CodeInvalidCondition, http.StatusBadRequest, "the signal trigger's condition is missing, is not valid CEL over value and previousValue, or is not boolean (field trigger.condition)"},
	{webhook.CodeUnknownSignal, http.StatusBadRequest, "the trigger names a signal that is not in the catalogue (field trigger.signal)"},
	{webhook.CodeNotGranted, http.StatusBadRequest, "a listed vehicle does not exist, or the app's grant on it lacks stream (field vehicles) or the trigger signal's permission (field trigger.signal)"},
	{webhook.CodeInvalidField, http.StatusBadRequest, "the body is not a JSON object of the documented fields, or a field (description, vehicles, status) is malformed; `field` names it"},
	{CodeWebhookNotActive, http.StatusConflict, "the webhook is not active (pending verification, failed it, or disabled), so no test event is sent"},
	{CodeWebhookLimit, http.StatusConflict, "the app already has the most webhooks a node keeps per app (100)"},
}

// maxWebhookBody bounds a webhook POST or PATCH body.
const maxWebhookBody = 16 << 10

// WebhookView is a webhook as the API shows it. Secret is only in the answer that created it.
type WebhookView struct {
	ID          string          `json:"id"`
	App         string          `json:"app"`
	URL         string          `json:"url"`
	Description string          `json:"description"`
	Vehicles    any             `json:"vehicles"` // a list of ids, or "all-granted"
	Trigger     webhook.Trigger `json:"trigger"`
	Status      webhook.Status  `json:"status"`
	Reason      string          `json:"statusReason,omitempty"`
	Secret      string          `json:"secret,omitempty"`
	Pending     *int            `json:"pendingDeliveries,omitempty"`
	Created     time.Time       `json:"createdAt"`
	Updated     time.Time       `json:"updatedAt"`
}

func viewWebhook(w *webhook.Webhook) WebhookView {
	v := WebhookView{ID: w.ID, App: w.App.Hex(), URL: w.URL, Description: w.Description, Vehicles: w.Vehicles,
		Trigger: w.Trigger, Status: w.Status, Reason: w.Reason, Created: w.Created, Updated: w.Updated}
	if w.AllGranted {
		v.Vehicles = webhook.AllGranted
	}
	return v
}

// WebhookKeys is the answer of GET /.well-known/glovebox/webhook-keys: the Ed25519 public keys whose
// "v1a," signatures the node's webhooks carry, in the Standard Webhooks form.
type WebhookKeys struct {
	Keys []WebhookKey `json:"keys"`
}

// WebhookKey is one webhook signing key.
type WebhookKey struct {
	Algorithm string `json:"alg"` // "ed25519"
	PublicKey string `json:"key"` // "whpk_" and base64
}

// WebhookKeysPath is the well-known URL of the node's webhook signing keys.
const WebhookKeysPath = "/.well-known/glovebox/webhook-keys"

func (s *Server) routeWebhooks() {
	e := s.hooks
	s.mux.HandleFunc("GET "+WebhookKeysPath, func(w http.ResponseWriter, r *http.Request) {
		keys := WebhookKeys{Keys: []WebhookKey{}}
		if pub := e.PublicKey(); pub != nil {
			keys.Keys = append(keys.Keys, WebhookKey{Algorithm: "ed25519", PublicKey: webhook.EncodePublicKey(pub)})
		}
		writeJSON(w, http.StatusOK, keys)
	})
	authed := func(h func(w http.ResponseWriter, r *http.Request, caller, app common.Address)) http.Handler {
		return s.auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims, _ := auth.ClaimsFromContext(r.Context())
			app, err := ledger.ParseAddress(r.PathValue("app"))
			if err != nil {
				writeErr(w, string(ledger.CodeMalformed), "the app is an address: "+err.Error())
				return
			}
			h(w, r, claims.Subject, app)
		}))
	}
	base := "/v1/apps/{app}/webhooks"
	s.mux.Handle("POST "+base, authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		in, ok := readWebhookInput(w, r)
		if !ok {
			return
		}
		hook, err := e.Create(r.Context(), caller, app, in)
		if err != nil {
			writeWebhookErr(w, err)
			return
		}
		v := viewWebhook(hook)
		v.Secret = hook.Secret
		writeJSON(w, http.StatusCreated, v)
	}))
	s.mux.Handle("GET "+base, authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		hooks, err := e.List(r.Context(), caller, app)
		if err != nil {
			writeWebhookErr(w, err)
			return
		}
		out := make([]WebhookView, len(hooks))
		for i, h := range hooks {
			out[i] = viewWebhook(h)
		}
		writeJSON(w, http.StatusOK, struct {
			Webhooks []WebhookView `json:"webhooks"`
		}{out})
	}))
	s.mux.Handle("GET "+base+"/{id}", authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		hook, err := e.Get(r.Context(), caller, app, r.PathValue("id"))
		if err != nil {
			writeWebhookErr(w, err)
			return
		}
		v := viewWebhook(hook)
		if n, err := e.Store().Pending(r.Context(), hook.ID); err == nil {
			v.Pending = &n
		}
		writeJSON(w, http.StatusOK, v)
	}))
	s.mux.Handle("PATCH "+base+"/{id}", authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		in, ok := readWebhookInput(w, r)
		if !ok {
			return
		}
		hook, err := e.Update(r.Context(), caller, app, r.PathValue("id"), in)
		if err != nil {
			writeWebhookErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, viewWebhook(hook))
	}))
	s.mux.Handle("DELETE "+base+"/{id}", authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		if err := e.Delete(r.Context(), caller, app, r.PathValue("id")); err != nil {
			writeWebhookErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	s.mux.Handle("GET "+base+"/{id}/deliveries", authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			var err error
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 500 {
				writeErr(w, string(ledger.CodeMalformed), "limit is 1 to 500")
				return
			}
		}
		ds, err := e.Deliveries(r.Context(), caller, app, r.PathValue("id"), r.URL.Query().Get("before"), limit)
		if err != nil {
			writeWebhookErr(w, err)
			return
		}
		page := struct {
			Deliveries []*webhook.Delivery `json:"deliveries"`
			Next       string              `json:"next,omitempty"`
		}{Deliveries: ds}
		if len(ds) == limit {
			page.Next = ds[len(ds)-1].ID
		}
		writeJSON(w, http.StatusOK, page)
	}))
	s.mux.Handle("POST "+base+"/{id}/deliveries/{delivery}/retry", authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		d, err := e.Retry(r.Context(), caller, app, r.PathValue("id"), r.PathValue("delivery"))
		if err != nil {
			writeWebhookErr(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, d)
	}))
	s.mux.Handle("POST "+base+"/{id}/test", authed(func(w http.ResponseWriter, r *http.Request, caller, app common.Address) {
		d, err := e.Test(r.Context(), caller, app, r.PathValue("id"))
		if err != nil {
			writeWebhookErr(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, d)
	}))
	for _, p := range []string{base, base + "/{id}", base + "/{id}/deliveries", base + "/{id}/deliveries/{delivery}/retry", base + "/{id}/test", WebhookKeysPath} {
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeErr(w, CodeMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
		})
	}
}

func readWebhookInput(w http.ResponseWriter, r *http.Request) (*webhook.Input, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeErr(w, CodeTooLarge, "the body is larger than 16 KiB")
			return nil, false
		}
		writeErr(w, webhook.CodeInvalidField, "couldn't read the body")
		return nil, false
	}
	in, err := webhook.ParseInput(body)
	if err != nil {
		writeWebhookErr(w, err)
		return nil, false
	}
	return in, true
}

// WebhookErrorDetail is an error answer of the webhook API: ErrorDetail plus the field at fault.
type WebhookErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeWebhookErr(w http.ResponseWriter, err error) {
	var fe *webhook.FieldError
	var denied *access.Denied
	switch {
	case errors.As(err, &fe):
		writeJSON(w, statusOf(fe.Code), struct {
			Error WebhookErrorDetail `json:"error"`
		}{WebhookErrorDetail{fe.Code, fe.Message, fe.Field}})
	case errors.Is(err, access.ErrUnauthenticated):
		auth.WriteUnauthenticated(w, err)
	case errors.Is(err, webhook.ErrUnknownApp):
		writeErr(w, string(ledger.CodeUnknownApp), "no such app")
	case errors.Is(err, webhook.ErrForbidden), errors.As(err, &denied):
		writeErr(w, CodeForbidden, webhook.ErrForbidden.Error())
	case errors.Is(err, webhook.ErrNotFound):
		writeErr(w, CodeNotFound, "no such webhook or delivery")
	case errors.Is(err, webhook.ErrNotActive):
		writeErr(w, CodeWebhookNotActive, "the webhook is not active")
	case errors.Is(err, webhook.ErrTooMany):
		writeErr(w, CodeWebhookLimit, err.Error())
	default:
		writeErr(w, CodeInternal, "couldn't manage the webhook")
	}
}
