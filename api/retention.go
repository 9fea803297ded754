package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/glovebox/glovebox/access"
	"github.com/glovebox/glovebox/auth"
	"github.com/glovebox/glovebox/ledger"
	"github.com/glovebox/glovebox/telemetry"
)

// vehicleRetention answers GET /v1/vehicles/{id}/retention (docs/api.md): the vehicle's retention
// window, what it deleted, and the erasures with their progress. The owner sees every erasure; a former
// owner sees the policy and its own erasures.
func (s *Server) vehicleRetention(w http.ResponseWriter, r *http.Request) {
	claims, _ := auth.ClaimsFromContext(r.Context())
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeErr(w, string(ledger.CodeMalformed), "a vehicle id is a positive integer")
		return
	}
	var role access.Role
	var v ledger.Vehicle
	s.seq.Read(func(st *ledger.State) {
		role, err = access.CheckRetention(st, claims.Subject, id, time.Now())
		v, _ = st.Vehicle(id)
	})
	if writeAccessError(w, id, err, "only the vehicle's owner and former owners read its retention") {
		return
	}
	var tallies []telemetry.Tally
	if s.deleter != nil {
		if tallies, err = s.deleter.Tallies(r.Context(), id); err != nil {
			writeErr(w, CodeInternal, "couldn't read what was deleted")
			return
		}
	}
	writeJSON(w, http.StatusOK, telemetry.Report(v, tallies, claims.Subject.Hex(), role == access.RoleOwner))
}
