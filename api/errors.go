package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/connect"
	"github.com/glovebox/glovebox/ledger"
)

// API-level error codes, beside the ledger's rule codes.
const (
	CodeNotFound         = "not_found"
	CodeForbidden        = "forbidden"
	CodeTooLarge         = "too_large"
	CodeTooSlow          = "too_slow"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
	CodeMethodNotAllowed = "method_not_allowed"
)

// ErrorCodes is the one table of every error code the REST API returns: the HTTP status and its meaning.
// docs/errors.md is generated from it (see TestErrorDocs).
var ErrorCodes = func() []ErrorCode {
	status := map[ledger.Code]int{
		ledger.CodeMalformed:         http.StatusBadRequest,
		ledger.CodeBadSignature:      http.StatusBadRequest,
		ledger.CodeMissingSignature:  http.StatusBadRequest,
		ledger.CodeWrongSigner:       http.StatusForbidden,
		ledger.CodeNotOwner:          http.StatusForbidden,
		ledger.CodeNonceUsed:         http.StatusConflict,
		ledger.CodeExpired:           http.StatusUnprocessableEntity,
		ledger.CodeDeadlineTooFar:    http.StatusUnprocessableEntity,
		ledger.CodeInvalidField:      http.StatusUnprocessableEntity,
		ledger.CodeUnknownVehicle:    http.StatusNotFound,
		ledger.CodeUnknownDevice:     http.StatusNotFound,
		ledger.CodeUnknownApp:        http.StatusNotFound,
		ledger.CodeUnknownPermission: http.StatusUnprocessableEntity,
		ledger.CodeVehicleBurned:     http.StatusConflict,
		ledger.CodeAlreadyRegistered: http.StatusConflict,
		ledger.CodeAlreadyPaired:     http.StatusConflict,
		ledger.CodeKindTaken:         http.StatusConflict,
		ledger.CodeNotPaired:         http.StatusConflict,
		ledger.CodeNoGrant:           http.StatusConflict,
		ledger.CodeBadTime:           http.StatusInternalServerError,
		ledger.CodeInvisibleText:     http.StatusUnprocessableEntity,
		ledger.CodeRetentionTooLong:  http.StatusUnprocessableEntity,
		ledger.CodeBeforeInFuture:    http.StatusUnprocessableEntity,
		ledger.CodeNeverOwned:        http.StatusForbidden,
	}
	var out []ErrorCode
	for _, c := range ledger.CodeDescriptions {
		out = append(out, ErrorCode{string(c.Code), status[c.Code], c.Description})
	}
	for _, c := range append(slices.Clone(auth.ErrorCodes), connect.ErrorCodes...) {
		out = append(out, ErrorCode{c.Code, c.Status, c.Description})
	}
	out = append(out, webhookErrorCodes...)
	out = append(out, credentialCodes...)
	out = append(out, attestationCodes...)
	out = append(out, exportCodes...)
	return append(out,
		ErrorCode{CodeRateLimited, http.StatusTooManyRequests, "too many requests from this caller (signed-in account, else address), from its client address, or too many transactions or records submitted from its address; nothing was stored: wait Retry-After seconds and send it again"},
		ErrorCode{CodeTooManyConnections, http.StatusTooManyRequests, "the client address holds too many connections to the node already (--max-conns-per-address); the connection is closed after this answer"},
		ErrorCode{CodeOverCapacity, http.StatusServiceUnavailable, "the node holds as many connections as it serves at once (--max-conns), each of them with a request being handled; the connection is closed after this answer: retry later"},
		ErrorCode{CodeForbidden, http.StatusForbidden, "the caller may not read or change this (only the vehicle's owner reads its access log; only an app or its owner manages the app's webhooks; a credential needs the owner or an app whose grant holds credentials; only an owner of a vehicle exports its data)"},
		ErrorCode{CodeNotFound, http.StatusNotFound, "no such resource (vehicle, device, app, entry, route)"},
		ErrorCode{CodeRangeNotSatisfiable, http.StatusRequestedRangeNotSatisfiable, "a Range starts beyond the end of the export (Content-Range names its length)"},
		ErrorCode{CodeTooLarge, http.StatusRequestEntityTooLarge, "the request body or batch is larger than allowed"},
		ErrorCode{CodeTooSlow, http.StatusRequestTimeout, "a request body over 64 KiB fell behind the node's minimum rate (--min-body-rate, 256 KiB/s by default, after a 10 s grace) or its read timeout; nothing was stored and the connection is closed: send it again, or in smaller batches on a slow link"},
		ErrorCode{CodeMethodNotAllowed, http.StatusMethodNotAllowed, "the route does not take this HTTP method"},
		ErrorCode{CodeUnavailable, http.StatusServiceUnavailable, "the node can't store this now (the disk is full, the database is unreachable, or in a cluster the sequencer is being taken over); nothing was stored or acknowledged: retry later"},
		ErrorCode{CodeInternal, http.StatusInternalServerError, "an unexpected server error; the request changed nothing"},
	)
}()

// ErrorCode documents one stable error code.
type ErrorCode struct {
	Code        string
	Status      int
	Description string
}

func statusOf(code string) int {
	for _, c := range ErrorCodes {
		if c.Code == code {
			return c.Status
		}
	}
	return http.StatusInternalServerError
}

// detail turns any error into a stable code and message.
func detail(err error) ErrorDetail {
	if c := ledger.CodeOf(err); c != "" {
		var le *ledger.Error
		errors.As(err, &le)
		return ErrorDetail{Code: string(c), Message: le.Message}
	}
	if errors.Is(err, ledger.ErrStopped) {
		return ErrorDetail{Code: CodeUnavailable, Message: "the sequencer is stopped"}
	}
	if errors.Is(err, ledger.ErrUnavailable) {
		return ErrorDetail{Code: CodeUnavailable, Message: "the log couldn't store the transactions (disk full or database unreachable); nothing was stored: retry"}
	}
	return ErrorDetail{Code: CodeInternal, Message: "internal error"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"couldn't encode the answer"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, d ErrorDetail) {
	writeJSON(w, statusOf(d.Code), ErrorBody{Error: d})
}

func writeErr(w http.ResponseWriter, code, msg string) {
	writeError(w, ErrorDetail{Code: code, Message: msg})
}
