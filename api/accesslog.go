package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/accesslog"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/ledger"
)

// vehicleAccess answers the vehicle's owner with who read what of the vehicle since they own it: GET
// /v1/vehicles/{id}/access?before=SEQ&limit=N (limit ≤ 500, default 100). Reads made under an earlier
// owner are that owner's business, as in GraphQL's accessLog.
func (s *Server) vehicleAccess(w http.ResponseWriter, r *http.Request) {
	claims, _ := auth.ClaimsFromContext(r.Context())
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeErr(w, string(ledger.CodeMalformed), "a vehicle id is a positive integer")
		return
	}
	before, limit := int64(0), 100
	if v := r.URL.Query().Get("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before <= 0 {
			writeErr(w, string(ledger.CodeMalformed), "before is a positive integer cursor")
			return
		}
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 500 {
			writeErr(w, string(ledger.CodeMalformed), "limit is 1 to 500")
			return
		}
	}
	var d access.Decision
	s.seq.Read(func(st *ledger.State) {
		d, err = access.Check(st, claims.Subject, id, ledger.PermSignals, time.Now())
	})
	if writeAccessError(w, id, err, "only the vehicle's owner reads its access log") {
		return
	}
	if d.Role != access.RoleOwner {
		writeErr(w, CodeForbidden, "only the vehicle's owner reads its access log")
		return
	}
	entries, err := s.alog.List(r.Context(), id, before, limit)
	if err != nil {
		writeErr(w, CodeInternal, "couldn't read the access log")
		return
	}
	full := len(entries) == limit
	for i, e := range entries {
		if e.Time.Before(d.Since) { // read under an earlier owner, and so is every older one
			entries, full = entries[:i], false
			break
		}
	}
	page := AccessPage{Entries: entries}
	if page.Entries == nil {
		page.Entries = []accesslog.Entry{}
	}
	if full {
		page.Next = strconv.FormatInt(entries[len(entries)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, page)
}

// writeAccessError answers a request that access refused: an unknown vehicle, no valid sign-in, a refusal
// (forbidden, with the words given, or the refusal's own when they are ""), or a failure to decide. It
// reports whether it answered; with a nil err it does nothing.
func writeAccessError(w http.ResponseWriter, id uint64, err error, forbidden string) bool {
	var denied *access.Denied
	switch {
	case err == nil:
		return false
	case errors.Is(err, access.ErrNotFound):
		writeErr(w, string(ledger.CodeUnknownVehicle), fmt.Sprintf("no vehicle %d", id))
	case errors.Is(err, access.ErrUnauthenticated):
		auth.WriteUnauthenticated(w, err)
	case errors.As(err, &denied):
		if forbidden == "" {
			forbidden = denied.Error()
		}
		writeErr(w, CodeForbidden, forbidden)
	default:
		writeErr(w, CodeInternal, "couldn't decide access")
	}
	return true
}
